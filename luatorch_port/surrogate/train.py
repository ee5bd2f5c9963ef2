"""Train an Exemplar-CNN on surrogate classes with the project's training loop.

Port of the training of Dosovitskiy et al. 2014 (section 4: "64c5-64c5-128f" and
"64c5-128c5-256c5-512f" nets, SGD with momentum, dropout in the fully connected layer,
one class per seed patch) on the file :func:`..build.build_surrogate` writes, through
:func:`luatorch_port.train.fit` (optim.sgd semantics, checkpoint/resume, torchrun): the
pieces :func:`.run.run_train` puts together.

Inputs are the patches scaled to [0, 1] and standardised per RGB channel with the mean
and standard deviation of the surrogate set; these are written to ``surrogate_norm.t7``
(``{mean = DoubleTensor(3), std = DoubleTensor(3)}``) beside ``model.net`` so that
``a2 surrogate eval`` feeds labelled images the same way.

Deviations: the paper's exact preprocessing and learning-rate schedule are not given in
the report; this port standardises per channel and keeps the starter's schedule (lr halved
every ``epoch_step`` epochs). BatchFlip is off by default: the transformations already
flip half the patches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .. import t7
from ..util.errors import A2Error

NORM_NAME = "surrogate_norm.t7"
PT_NAME = "model.pt"
NORM_SAMPLE = 20000  # patches used to estimate the channel mean/std
MODEL = "64c5-128c5-256c5-512f"  # paper: the large net (64c5-64c5-128f is its small one)
LR = 0.01            # paper: SGD, learning rate 0.01, momentum 0.9, weight decay 0.0004
MOMENTUM = 0.9
WEIGHT_DECAY = 4e-4
BATCH_SIZE = 128     # paper: mini-batches of 128


@dataclass
class PatchNorm:
    """Per-channel mean and std of [0, 1] pixels, float64 (3,)."""

    mean: torch.Tensor
    std: torch.Tensor

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> float32 standardised."""
        mean = self.mean.to(device=images.device, dtype=torch.float32).view(1, -1, 1, 1)
        std = self.std.to(device=images.device, dtype=torch.float32).view(1, -1, 1, 1)
        return images.float().div_(255.0).sub_(mean).div_(std)


def fit_patch_norm(images: torch.Tensor, generator: torch.Generator,
                   sample: int = NORM_SAMPLE) -> PatchNorm:
    """Channel mean/std of up to ``sample`` random images (uint8 (N, 3, H, W))."""
    idx = torch.randperm(len(images), generator=generator)[:sample]
    x = images[idx].double().div_(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    std, mean = torch.std_mean(x, dim=1)
    return PatchNorm(mean=mean, std=std.clamp_min(1e-6))


def save_norm(norm: PatchNorm, path) -> None:
    t7.save({"mean": norm.mean.double(), "std": norm.std.double()}, path)


def load_norm(path) -> PatchNorm:
    obj = t7.load(path)
    if not isinstance(obj, dict) or not all(isinstance(obj.get(k), torch.Tensor) for k in ("mean", "std")):
        raise A2Error(f"{os.fspath(path)}: expected a table {{mean = Tensor(3), std = Tensor(3)}}")
    return PatchNorm(mean=obj["mean"].double().reshape(-1), std=obj["std"].double().reshape(-1))


class PatchData:
    """Surrogate patches for :func:`luatorch_port.train.fit`: uint8 kept, batches standardised."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, norm: PatchNorm):
        self.images, self.labels, self.norm = images, labels, norm

    def __len__(self) -> int:
        return len(self.images)

    def get_batch(self, indices: torch.Tensor):
        return self.norm.apply(self.images.index_select(0, indices)), self.labels.index_select(0, indices)


def split_held_out(labels: torch.Tensor, per_class: int):
    """Indices (train, held_out): the last ``per_class`` patches of every class held out."""
    if per_class <= 0:
        return torch.arange(len(labels)), None
    order = torch.sort(labels, stable=True).indices
    sorted_labels = labels[order]
    counts = torch.bincount(sorted_labels)
    if int(counts[counts > 0].min()) <= per_class:
        raise A2Error(f"--val-per-seed {per_class} leaves no training patch for some class "
                      f"(smallest class has {int(counts[counts > 0].min())})")
    ends = counts.cumsum(0)
    position_from_end = ends[sorted_labels] - 1 - torch.arange(len(labels))
    held = position_from_end < per_class
    return order[~held], order[held]
