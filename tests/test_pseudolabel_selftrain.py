"""Self-training of the L2-SVM on features (part 2.4), on small hand-made feature sets."""

from __future__ import annotations

import math

import pytest
import torch

from luatorch_port.util.errors import A2Error
from luatorch_port.pseudolabel.selftrain import SelfTrainConfig, self_train
from luatorch_port.kmeans.svm import L2SVM, Standardizer


def _blobs(n_per_class, seed, centres=((0.0, 0.0), (4.0, 0.0), (0.0, 4.0)), spread=1.2):
    gen = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for c, centre in enumerate(centres):
        xs.append(torch.tensor(centre) + spread * torch.randn(n_per_class, 2, generator=gen))
        ys.append(torch.full((n_per_class,), c))
    return torch.cat(xs), torch.cat(ys)


@pytest.fixture(scope="module")
def data():
    train = _blobs(4, 1)
    unlabelled = _blobs(60, 2)
    val = _blobs(50, 3)
    return train, unlabelled, val


def test_round_zero_is_the_plain_supervised_svm(data):
    (tx, ty), (ux, uy), (vx, vy) = data
    result = self_train(tx, ty, ux, SelfTrainConfig(rounds=0, C=100.0), n_classes=3, val=(vx, vy),
                        unlabelled_y=uy)
    assert result.C == 100.0 and result.c_source == "fixed" and result.c_curve == []
    std = Standardizer().fit(tx)
    plain = L2SVM().fit(std.transform(tx), ty, 3)
    want = 100 * float((plain.predict(std.transform(vx)) == vy).float().mean())
    assert len(result.rounds) == 1
    assert result.rounds[0].val_accuracy == pytest.approx(want)
    assert result.rounds[0].added == 0 and math.isnan(result.rounds[0].pseudo_accuracy)


def test_rounds_add_balanced_top_k_without_repeats(data):
    (tx, ty), (ux, uy), (vx, vy) = data
    result = self_train(tx, ty, ux, SelfTrainConfig(rounds=3, per_class=5), n_classes=3,
                        val=(vx, vy), unlabelled_y=uy)
    assert [r.added for r in result.rounds] == [0, 15, 15, 15]
    assert [r.total_added for r in result.rounds] == [0, 15, 30, 45]
    assert [r.train_size for r in result.rounds] == [12, 27, 42, 57]
    idx, lab = result.added_indices, result.added_labels
    assert idx.unique().numel() == idx.numel() == 45
    assert all(int((lab[15 * r:15 * (r + 1)] == c).sum()) == 5 for r in range(3) for c in range(3))
    right = (lab == uy[idx]).float()
    assert result.rounds[1].added_accuracy == pytest.approx(100 * float(right[:15].mean()))
    assert result.rounds[3].pseudo_accuracy == pytest.approx(100 * float(right.mean()))
    # the most confident rows of well-separated blobs are right
    assert result.rounds[1].added_accuracy >= 90


def test_add_fraction_sets_the_per_class_count(data):
    (tx, ty), (ux, _), _ = data
    # 180 unlabelled rows * 0.05 / 3 classes = 3 per class
    result = self_train(tx, ty, ux, SelfTrainConfig(rounds=1, add_fraction=0.05), n_classes=3)
    assert result.rounds[1].added == 9
    assert math.isnan(result.rounds[1].val_accuracy) and math.isnan(result.rounds[1].added_accuracy)


def test_stops_when_no_row_passes_the_threshold(data):
    (tx, ty), (ux, _), _ = data
    result = self_train(tx, ty, ux, SelfTrainConfig(rounds=4, threshold=1e6), n_classes=3)
    assert [r.added for r in result.rounds] == [0, 0]


def test_refit_uses_the_pseudo_labelled_rows():
    calls = []

    class Recorder(L2SVM):
        def fit(self, features, labels, n_classes=None):
            calls.append(labels.clone())
            return super().fit(features, labels, n_classes)

    (tx, ty), (ux, _) = _blobs(3, 4), _blobs(10, 5)
    self_train(tx, ty, ux, SelfTrainConfig(rounds=2, per_class=2), n_classes=3, svm_factory=Recorder)
    assert [len(c) for c in calls] == [9, 15, 21]
    assert torch.equal(calls[1][:9], ty) and torch.equal(calls[2][:15], calls[1])


@pytest.mark.parametrize("refit", [True, False])
def test_final_refit_adds_val_to_train_and_pseudo_labels(data, refit):
    calls = []

    class Recorder(L2SVM):
        def fit(self, features, labels, n_classes=None):
            calls.append((features.clone(), labels.clone()))
            return super().fit(features, labels, n_classes)

    (tx, ty), (ux, uy), (vx, vy) = data
    result = self_train(tx, ty, ux, SelfTrainConfig(rounds=2, per_class=5, refit=refit),
                        n_classes=3, val=(vx, vy), svm_factory=Recorder)
    rounds_rows = [12, 27, 42]
    if not refit:
        assert [len(y) for _, y in calls[-3:]] == rounds_rows and result.refit is False
        return
    # select_C's grid fits come first (train only); then the rounds; then the refit
    calls = calls[-4:]
    assert [len(y) for _, y in calls] == rounds_rows + [42 + 150] and result.refit is True
    x, y = calls[-1]
    assert torch.equal(y, torch.cat([ty, vy, result.added_labels]))
    raw = torch.cat([tx, vx, ux[result.added_indices]])
    assert torch.allclose(x, result.standardizer.transform(raw))   # standardised on all of them
    assert torch.allclose(result.standardizer.mean_, raw.mean(0))


def test_no_refit_without_val_or_with_a_given_C(data):
    (tx, ty), (ux, _), (vx, vy) = data
    assert self_train(tx, ty, ux, SelfTrainConfig(rounds=1, per_class=5), n_classes=3).refit is False
    assert self_train(tx, ty, ux, SelfTrainConfig(rounds=1, per_class=5, C=10.0), n_classes=3,
                      val=(vx, vy)).refit is False


@pytest.mark.parametrize("kw, message", [({"rounds": -1}, "rounds"), ({"per_class": 0}, "per_class"),
                                         ({"add_fraction": 0}, "add_fraction"), ({"C": 0}, "C=0")])
def test_bad_config(kw, message):
    with pytest.raises(A2Error, match=message):
        SelfTrainConfig(**kw).validate()


def test_mismatched_features_are_an_error():
    with pytest.raises(A2Error, match="features should be"):
        self_train(torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64), torch.zeros(5, 3),
                   SelfTrainConfig(), n_classes=2)


def test_auto_C_is_chosen_on_val_once_and_kept(data):
    from luatorch_port.kmeans.svm import select_C
    (tx, ty), (ux, uy), (vx, vy) = data
    result = self_train(tx, ty, ux, SelfTrainConfig(rounds=2, per_class=5), n_classes=3, val=(vx, vy))
    want, curve, _ = select_C(tx, ty, vx, vy, n_classes=3)
    assert result.c_source == "val" and result.C == want and len(result.c_curve) == len(curve)
    assert result.svm.C == want  # the last round's SVM uses the same C


def test_auto_C_without_val_falls_back_to_coates(data):
    (tx, ty), (ux, _), _ = data
    result = self_train(tx, ty, ux, SelfTrainConfig(rounds=0), n_classes=3)
    assert result.C == 100.0 and result.c_source == "fixed"


def test_C_must_be_auto_or_positive():
    with pytest.raises(A2Error):
        SelfTrainConfig(C="sometimes").validate()
    with pytest.raises(A2Error):
        SelfTrainConfig(C=0.0).validate()
