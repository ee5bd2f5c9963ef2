"""Units of the training loop: ConfusionMatrix, optim.Logger format, BatchFlip, lr schedule, batching."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from luatorch_port.util.errors import A2Error
from luatorch_port.train import (ConfusionMatrix, Logger, TrainConfig, batch_flip, fit, flip_mask,
                                 predict, read_log)


def test_confusion_counts_rows_targets_columns_predictions():
    conf = ConfusionMatrix(3)
    conf.batch_add(torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8],
                                 [0.6, 0.3, 0.1]]), torch.tensor([0, 1, 2, 2]))
    conf.batch_add(torch.tensor([1, 1]), torch.tensor([1, -1]))  # target -1: ignored, as Lua's <= 0
    assert conf.mat.tolist() == [[1, 0, 0], [0, 2, 0], [1, 0, 1]]
    assert conf.total_valid == pytest.approx(4 / 5)
    assert conf.valids == pytest.approx([1.0, 1.0, 0.5])
    assert conf.average_valid == pytest.approx(2.5 / 3)
    conf.zero()
    assert conf.total == 0 and math.isnan(conf.total_valid)


def test_confusion_prints_like_lua():
    conf = ConfusionMatrix(2, ["cat", "dog"])
    conf.batch_add(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]))
    text = str(conf)
    assert text.startswith("ConfusionMatrix:\n[[       1       1]   50.000% \t[class: cat]\n"
                           " [       0       1]]  100.000% \t[class: dog]\n")
    assert " + average row correct: 75.0% \n" in text
    assert text.endswith(" + global correct: 66.66666666666666%")


def test_logger_writes_optim_logger_format(tmp_path):
    path = tmp_path / "val.log"
    log = Logger(path, ["% mean class accuracy (train set)", "% mean class accuracy (val set)"])
    log.add([12.5, 100])
    log.add([0.001234, -3])
    assert path.read_text() == ("% mean class accuracy (train set)\t% mean class accuracy (val set)\t\n"
                                " 1.2500e+01\t 1.0000e+02\t\n"
                                " 1.2340e-03\t-3.0000e+00\t\n")
    names, rows = read_log(path)
    assert rows == [[12.5, 100.0], [0.001234, -3.0]] and len(names) == 2
    with pytest.raises(A2Error, match="2 columns"):
        log.add([1.0])


@pytest.mark.parametrize("batch", [1, 2, 7, 64])
def test_flip_mask_flips_exactly_half_rounded_down(batch):
    mask = flip_mask(batch, torch.Generator().manual_seed(batch))
    assert mask.dtype == torch.bool and int(mask.sum()) == batch // 2


def test_batch_flip_mirrors_only_masked_images():
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).view(2, 1, 2, 3)
    out = batch_flip(x, torch.tensor([True, False]))
    assert torch.equal(out[0], x[0].flip(-1)) and torch.equal(out[1], x[1])


@pytest.mark.parametrize("epoch, lr", [(1, 1.0), (24, 1.0), (25, 0.5), (49, 0.5), (50, 0.25),
                                       (75, 0.125)])
def test_learning_rate_halves_every_epoch_step(epoch, lr):
    assert TrainConfig().lr_at(epoch) == lr


class _Recorder(nn.Module):
    """Linear model that remembers which batch sizes it saw in training mode."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.sizes = []

    def forward(self, x):
        if self.training:
            self.sizes.append(x.shape[0])
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("n, batch, expected", [
    (20, 8, 2),   # 8 + 8 (+4 dropped)
    (24, 8, 2),   # 8 + 8 (+8 dropped: train.lua drops the last chunk even when full)
    (9, 8, 1),
])
def test_last_chunk_is_dropped_as_train_lua_does(n, batch, expected):
    model = _Recorder()
    data = (torch.randn(n, 1, 2, 2), torch.randint(0, 3, (n,)))
    fit(model, data, None, TrainConfig(batch_size=batch, max_epoch=1, n_classes=3, flip=False,
                                       channels_last=False),
        generator=torch.Generator().manual_seed(0), save_model_fn=None)
    assert model.sizes == [batch] * expected


def test_too_few_images_for_one_batch():
    data = (torch.randn(8, 1, 2, 2), torch.randint(0, 3, (8,)))
    with pytest.raises(A2Error, match="8 training images leave no batch of 8"):
        fit(_Recorder(), data, None, TrainConfig(batch_size=8, max_epoch=1, n_classes=3),
            generator=torch.Generator(), save_model_fn=None)


def test_fit_learns_a_separable_problem_and_predicts():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (96,), generator=g)
    x = torch.randn(96, 1, 2, 2, generator=g) * 0.1
    x.view(96, 4)[torch.arange(96), y] += 1.0
    torch.manual_seed(0)
    model = _Recorder()
    result = fit(model, (x[:64], y[:64]), (x[64:], y[64:]),
                 TrainConfig(batch_size=8, max_epoch=4, n_classes=3, flip=False, learning_rate=0.5),
                 generator=g, save_model_fn=None)
    assert result.history[-1]["val_acc"] >= 90
    assert result.history[0]["lr"] == 0.5 and len(result.history) == 4
    assert (predict(result.model, x[64:], batch_size=5) == y[64:]).float().mean() >= 0.9


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_on_cuda_matches_cpu_closely():
    def run(device):
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, 3, (40,), generator=g)
        x = torch.randn(40, 1, 2, 2, generator=g)
        torch.manual_seed(0)
        return fit(_Recorder(), (x, y), None,
                   TrainConfig(batch_size=8, max_epoch=2, n_classes=3, learning_rate=0.1),
                   generator=g, device=device, save_model_fn=None).model
    gpu, cpu = run("cuda"), run("cpu")
    assert gpu.fc.weight.device.type == "cuda"
    torch.testing.assert_close(gpu.fc.weight.cpu(), cpu.fc.weight, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n_classes, matrix_written", [(4, True), (101, False)])
def test_confusion_txt_holds_the_matrix_only_for_few_classes(tmp_path, n_classes, matrix_written):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 4), torch.randint(0, 4, (24,), generator=g)
    model = nn.Linear(4, n_classes)
    fit(model, (x, y), (x, y), TrainConfig(batch_size=8, max_epoch=1, n_classes=n_classes,
                                           flip=False, channels_last=False),
        generator=g, out_dir=tmp_path, save_model_fn=None)
    text = (tmp_path / "confusion.txt").read_text()
    assert ("ConfusionMatrix" in text) == matrix_written
    assert "global correct" in text
    assert (f"{n_classes} classes: matrices above 100" in text) == (not matrix_written)
