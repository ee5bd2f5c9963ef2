"""Lee (2013) pseudo-label batches and loss, on hand-made numbers."""

import pytest
import torch
import torch.nn.functional as F

from luatorch_port.util.errors import A2Error
from luatorch_port.pseudolabel.lee import (UNLABELLED, MixedBatches, PseudoLabelConfig,
                                           PseudoLabelLoss)
from luatorch_port.train import StepInfo


def _batches(**kw):
    x = torch.arange(10 * 3 * 2 * 2, dtype=torch.float32).view(10, 3, 2, 2)
    t = torch.arange(10) % 3
    u = -torch.arange(1, 31 * 12 + 1, dtype=torch.float32).view(31, 3, 2, 2)
    opts = dict(per_batch=4, seed=7, flip=False)
    opts.update(kw)
    return MixedBatches(x, t, u, **opts)


def test_mixed_batch_layout():
    data = _batches()
    x, t = data.get_batch(torch.tensor([3, 1, 4]))
    assert x.shape == (7, 3, 2, 2)
    assert t.tolist()[:3] == [0, 1, 1] and t.tolist()[3:] == [UNLABELLED] * 4
    assert torch.equal(x[:3], data.inputs[[3, 1, 4]])
    assert (x[3:] < 0).all()  # drawn from the unlabelled set


def test_same_indices_same_rows_other_indices_other_rows():
    a, b = _batches(), _batches()
    xa, _ = a.get_batch(torch.tensor([3, 1, 4]))
    xb, _ = b.get_batch(torch.tensor([3, 1, 4]))
    xc, _ = b.get_batch(torch.tensor([3, 1, 5]))
    assert torch.equal(xa, xb)
    assert not torch.equal(xa[3:], xc[3:])


def test_warmup_means_no_unlabelled_rows():
    data = _batches(warmup=2)
    data.set_epoch(2)
    _, t = data.get_batch(torch.tensor([0, 1]))
    assert (t != UNLABELLED).all()
    data.set_epoch(3)
    _, t = data.get_batch(torch.tensor([0, 1]))
    assert (t == UNLABELLED).sum() == 4


def test_flip_flips_half_of_the_mixed_batch():
    data = _batches(flip=True)
    x, _ = data.get_batch(torch.tensor([0, 1, 2, 3]))
    plain = _batches().get_batch(torch.tensor([0, 1, 2, 3]))[0]
    flipped = [not torch.equal(x[i], plain[i]) for i in range(8)]
    assert sum(flipped) == 4


OUT = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [3.0, -2.0, 0.0], [-1.0, 1.0, 0.5]])
TGT = torch.tensor([0, 2, UNLABELLED, UNLABELLED])


@pytest.mark.parametrize("epoch, batch, alpha", [(1, 0, 0.0), (11, 0, 0.0), (36, 0, 1.5),
                                                 (61, 0, 3.0), (100, 0, 3.0)])
def test_loss_is_labelled_ce_plus_alpha_pseudo_ce(epoch, batch, alpha):
    loss_fn = PseudoLabelLoss(PseudoLabelConfig(t1=10, t2=60, alpha_final=3.0), 5)
    got = loss_fn(OUT, TGT, StepInfo(epoch, batch, 0))
    want = F.cross_entropy(OUT[:2], TGT[:2]) + alpha * F.cross_entropy(OUT[2:], torch.tensor([0, 1]))
    assert loss_fn.last_alpha == pytest.approx(alpha)
    assert float(got) == pytest.approx(float(want), rel=1e-6)


def test_threshold_zeroes_unconfident_rows_but_keeps_lee_denominator():
    loss_fn = PseudoLabelLoss(PseudoLabelConfig(t1=0, t2=0, alpha_final=1.0, threshold=0.8), 5)
    got = loss_fn(OUT, TGT, StepInfo(1, 0, 0))
    # row 2: softmax max ~0.94 kept; row 3: max ~0.51 dropped
    ce_row2 = F.cross_entropy(OUT[2:3], torch.tensor([0]))
    want = F.cross_entropy(OUT[:2], TGT[:2]) + ce_row2 / 2
    assert float(got) == pytest.approx(float(want), rel=1e-6)


def test_no_gradient_through_the_pseudo_target():
    out = OUT.clone().requires_grad_(True)
    loss_fn = PseudoLabelLoss(PseudoLabelConfig(t1=0, t2=0, alpha_final=1.0), 5)
    loss_fn(out, TGT, StepInfo(1, 0, 0)).backward()
    fixed = OUT.clone().requires_grad_(True)
    (F.cross_entropy(fixed[:2], TGT[:2]) + F.cross_entropy(fixed[2:], torch.tensor([0, 1]))).backward()
    assert torch.allclose(out.grad, fixed.grad)


def test_steps_unit_uses_the_global_step():
    loss_fn = PseudoLabelLoss(PseudoLabelConfig(t1=100, t2=200, unit="steps"), 5)
    loss_fn(OUT, TGT, StepInfo(1, 0, 150))
    assert loss_fn.last_alpha == pytest.approx(1.5)


@pytest.mark.parametrize("kw, msg", [({"unit": "hours"}, "unit"), ({"threshold": 2.0}, "threshold"),
                                     ({"t1": 5, "t2": 1}, "t2=1"), ({"warmup": -1}, "warmup")])
def test_bad_config(kw, msg):
    with pytest.raises(A2Error, match=msg):
        PseudoLabelConfig(**kw).validate()


def test_transform_is_applied_to_the_drawn_unlabelled_rows_only():
    x = torch.zeros(6, 3, 2, 2)
    t = torch.arange(6) % 3
    u = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 3, 2, 2).contiguous()
    calls = []

    def transform(rows):
        calls.append(rows.shape[0])
        assert rows.dtype == torch.uint8
        return rows.float() * 10 + 1000

    data = MixedBatches(x, t, u, per_batch=5, seed=3, flip=False, transform=transform)
    out, tgt = data.get_batch(torch.tensor([0, 2]))
    assert calls == [5]
    assert out.dtype == torch.float32 and out.shape == (7, 3, 2, 2)
    assert torch.equal(out[:2], x[:2])
    drawn = (out[2:, 0, 0, 0] - 1000) / 10
    assert ((drawn >= 0) & (drawn < 20)).all() and torch.equal(drawn, drawn.round())
