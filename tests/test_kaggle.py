"""Kaggle CSV: write/read round trip, line-numbered errors, scoring."""

from __future__ import annotations

import pytest
import torch

from luatorch_port.util.errors import A2Error
from luatorch_port.data.kaggle import read_predictions, write_predictions
from luatorch_port.train.confusion import score


def test_write_format_is_id_then_one_based_label(tmp_path):
    path = tmp_path / "p.csv"
    write_predictions(path, torch.tensor([0, 9, 3]))
    assert path.read_text() == "Id,Prediction\n1,1\n2,10\n3,4\n"


def test_round_trip_and_any_row_order(tmp_path):
    labels = torch.randint(0, 10, (50,), generator=torch.Generator().manual_seed(3))
    path = tmp_path / "p.csv"
    write_predictions(path, labels)
    assert torch.equal(read_predictions(path, n_expected=50), labels)
    lines = path.read_text().splitlines()
    path.write_text("\r\n".join([lines[0]] + lines[1:][::-1]) + "\r\n")
    assert torch.equal(read_predictions(path), labels)


@pytest.mark.parametrize("text, n, message", [
    ("id,pred\n1,1\n", None, r":1: header must be 'Id,Prediction'"),
    ("", None, r":1: header"),
    ("Id,Prediction\n1,1\n2,11\n", None, r":3: Prediction 11 outside 1..10"),
    ("Id,Prediction\n1,0\n", None, r":2: Prediction 0 outside 1..10"),
    ("Id,Prediction\n1,1\n1,2\n", None, r":3: Id 1 appears twice"),
    ("Id,Prediction\n1,1\n3,2\n", None, r":3: Id 3 outside 1..2"),
    ("Id,Prediction\n1,1\n2,2\n", 4, r"2 of Ids 1..4 missing \(3, 4\)"),
    ("Id,Prediction\n1,cat\n", None, r":2: Id and Prediction must be integers"),
    ("Id,Prediction\n1,2,3\n", None, r":2: expected 2 fields"),
])
def test_malformed_csv_names_the_line(tmp_path, text, n, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(A2Error, match=message):
        read_predictions(path, n_expected=n)


def test_write_rejects_labels_outside_range(tmp_path):
    with pytest.raises(A2Error, match="prediction 1 is class 10"):
        write_predictions(tmp_path / "p.csv", [0, 10])
    assert not (tmp_path / "p.csv").exists()


def test_score_accuracy_and_confusion():
    truth = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])
    result = score(pred, truth, n_classes=3)
    assert result.n_correct == 4 and result.n == 6
    assert result.accuracy == pytest.approx(4 / 6)
    assert result.confusion.mat.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_score_length_mismatch():
    with pytest.raises(A2Error, match="3 predictions for 2 test images"):
        score([0, 1, 2], [0, 1])
