"""Selection rules and alpha(t) of the pseudo-label methods, on hand-written numbers."""

import pytest
import torch

from luatorch_port.util.errors import A2Error
from luatorch_port.pseudolabel import alpha_schedule, select_pseudo_labels

# Rows: confidence / predicted class written out by hand.
SCORES = torch.tensor([
    [0.90, 0.05, 0.05],  # 0 -> class 0, 0.90
    [0.60, 0.30, 0.10],  # 1 -> class 0, 0.60
    [0.20, 0.70, 0.10],  # 2 -> class 1, 0.70
    [0.10, 0.85, 0.05],  # 3 -> class 1, 0.85
    [0.10, 0.15, 0.75],  # 4 -> class 2, 0.75
    [0.95, 0.03, 0.02],  # 5 -> class 0, 0.95
    [0.40, 0.35, 0.25],  # 6 -> class 0, 0.40
])


@pytest.mark.parametrize("kwargs, indices, labels", [
    ({}, [0, 1, 2, 3, 4, 5, 6], [0, 0, 1, 1, 2, 0, 0]),
    ({"threshold": 0.7}, [0, 2, 3, 4, 5], [0, 1, 1, 2, 0]),
    ({"threshold": 0.75}, [0, 3, 4, 5], [0, 1, 2, 0]),            # >= keeps 0.75
    ({"top_k": 1}, [3, 4, 5], [1, 2, 0]),
    ({"top_k": 2}, [0, 2, 3, 4, 5], [0, 1, 1, 2, 0]),
    ({"balanced": True}, [3, 4, 5], [1, 2, 0]),                   # smallest class has 1
    ({"threshold": 0.8, "balanced": True}, [3, 5], [1, 0]),      # class 2 empty: ignored
    ({"top_k": 3, "threshold": 0.5}, [0, 1, 2, 3, 4, 5], [0, 0, 1, 1, 2, 0]),
    ({"threshold": 0.99}, [], []),
    ({"top_k": 0}, [], []),
])
def test_selection_rules(kwargs, indices, labels):
    idx, lab = select_pseudo_labels(SCORES, **kwargs)
    assert idx.tolist() == indices
    assert lab.tolist() == labels


def test_exclude_skips_rows_already_added():
    exclude = torch.zeros(7, dtype=torch.bool)
    exclude[[5, 3]] = True
    idx, lab = select_pseudo_labels(SCORES, top_k=1, exclude=exclude)
    assert idx.tolist() == [0, 2, 4]
    assert lab.tolist() == [0, 1, 2]


def test_bad_scores_shape_is_an_error():
    with pytest.raises(A2Error, match="N x C"):
        select_pseudo_labels(torch.zeros(3))


@pytest.mark.parametrize("t, expected", [
    (0, 0.0), (9.999, 0.0), (10, 0.0), (15, 1.5), (20, 3.0), (25, 3.0), (1000, 3.0),
])
def test_alpha_breakpoints(t, expected):
    assert alpha_schedule(t, t1=10, t2=20, alpha_final=3.0) == pytest.approx(expected)


def test_alpha_step_when_t1_equals_t2():
    assert alpha_schedule(4.9, 5, 5, 2.0) == 0.0
    assert alpha_schedule(5, 5, 5, 2.0) == 2.0


def test_alpha_rejects_t2_before_t1():
    with pytest.raises(A2Error, match="t2=1 should be >= t1=2"):
        alpha_schedule(0, 2, 1)
