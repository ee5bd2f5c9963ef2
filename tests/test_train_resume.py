"""Checkpoint/resume: a run killed mid-epoch and resumed ends bitwise equal to an uninterrupted one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from luatorch_port.util.errors import A2Error
from luatorch_port.train import TrainConfig, fit, read_log

from helpers import tiny_data as _data, tiny_model


def _model():
    # Dropout draws from torch's global RNG: resume must restore it too.
    return tiny_model(dropout=0.5)


CONFIG = dict(batch_size=8, learning_rate=0.05, max_epoch=4, epoch_step=2, n_classes=3,
              save_every=100)


class Killed(Exception):
    pass


def _killing_loss(epoch, batch):
    def loss_fn(outputs, targets, info):
        if (info.epoch, info.batch) == (epoch, batch):
            raise Killed
        return nn.functional.cross_entropy(outputs, targets)
    return loss_fn


def _run(out_dir, *, resume=False, loss_fn=None, seed=7, max_epoch=4):
    kwargs = {} if loss_fn is None else {"loss_fn": loss_fn}
    return fit(_model(), _data(40, 1), _data(12, 2), TrainConfig(**{**CONFIG, "max_epoch": max_epoch}),
               generator=torch.Generator().manual_seed(seed), out_dir=out_dir,
               save_model_fn=None, resume=resume, **kwargs)


def test_killed_then_resumed_equals_uninterrupted(tmp_path):
    whole = _run(tmp_path / "whole")
    with pytest.raises(Killed):
        _run(tmp_path / "cut", loss_fn=_killing_loss(epoch=3, batch=2))
    torch.manual_seed(12345)  # the resumed process starts from other RNG states
    resumed = _run(tmp_path / "cut", resume=True, seed=999)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (tmp_path / "whole" / "val.log").read_text() == (tmp_path / "cut" / "val.log").read_text()
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    names, rows = read_log(tmp_path / "cut" / "val.log")
    assert len(rows) == 4 and names[1] == "% mean class accuracy (val set)"


def test_the_seed_matters(tmp_path):
    # Guards the test above: weights depend on the generator, so equality there means something.
    whole = _run(tmp_path / "whole", max_epoch=1)
    other = _run(tmp_path / "other", seed=8, max_epoch=1)
    assert not torch.equal(whole.model[-1].weight, other.model[-1].weight)


def test_resume_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(A2Error, match="no checkpoint to resume from"):
        _run(tmp_path / "empty", resume=True)


def test_resume_with_another_model_is_an_error(tmp_path):
    _run(tmp_path / "run", max_epoch=1)
    wider = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(80, 3))
    with pytest.raises(A2Error, match="does not fit this model"):
        fit(wider, _data(40, 1), None, TrainConfig(**CONFIG), generator=torch.Generator(),
            out_dir=tmp_path / "run", save_model_fn=None, resume=True)
