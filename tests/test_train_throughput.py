"""The training log's img/s counts every image the model saw, labelled and unlabelled."""

import torch
import torch.nn.functional as F
from torch import nn

from luatorch_port.pseudolabel.lee import MixedBatches
from luatorch_port.train import TrainConfig, fit


def _fit(data, epochs=2, batch=3):
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    return fit(model, data, None, TrainConfig(batch_size=batch, max_epoch=epochs, n_classes=3, flip=False,
                                              channels_last=False),
               generator=torch.Generator().manual_seed(0), save_model_fn=None,
               loss_fn=lambda out, t, info: F.cross_entropy(out, t.clamp_min(0)))


def test_plain_epoch_counts_its_batches():
    x, t = torch.randn(10, 3, 2, 2), torch.arange(10) % 3
    history = _fit((x, t)).history
    assert [h["images"] for h in history] == [9, 9]        # 3 batches of 3, the last chunk dropped
    assert all(h["images_per_s"] == h["images"] / h["seconds"] for h in history)


def test_pseudo_label_epoch_counts_the_unlabelled_rows_too():
    x, t = torch.randn(10, 3, 2, 2), torch.arange(10) % 3
    data = MixedBatches(x, t, torch.randn(31, 3, 2, 2), per_batch=4, seed=7, flip=False)
    history = _fit(data).history
    # each batch: 3 labelled rows and 4 unlabelled ones
    assert [h["images"] for h in history] == [3 * (3 + 4)] * 2
