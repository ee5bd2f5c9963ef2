"""Report part 2.3: Pseudo-Label (Lee 2013) on top of the starter's training loop.

Each minibatch holds ``batch_size`` labelled images and ``unlabelled_per_batch`` unlabelled
ones; an unlabelled image's target is the current network's argmax on that very forward pass
(recomputed at every weight update, no gradient through it); the loss is
``L_labelled + alpha(t) * L_unlabelled`` (Lee 2013, eq. 15), each term a mean
cross-entropy over its rows, with alpha(t) from :func:`alpha_schedule`.

The unlabelled set stays uint8 (100,000 STL-10 images are 2.8 GB as bytes, 11 GB as
float32): :class:`MixedBatches` applies ``transform`` (the provider normalisation with the
training set's statistics) to the drawn rows only.

Deviations: the unlabelled rows of a batch are drawn with a generator seeded from the
batch's labelled indices (so a resumed or distributed run draws the same rows); BatchFlip
is applied to the whole mixed batch inside :class:`MixedBatches` (the loop's own flip is
switched off); with ``threshold`` set, rows below it count as zero in the unlabelled mean
(its denominator stays the number of unlabelled rows, Lee's n').
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from ..util.errors import A2Error
from ..train.batchflip import batch_flip, flip_mask
from .schedule import LEE_ALPHA_FINAL, alpha_schedule

UNLABELLED = -1  # target of an unlabelled row inside a mixed batch


@dataclass
class PseudoLabelConfig:
    """Lee (2013) settings. ``t1``/``t2`` are in ``unit`` ("epochs" or "steps")."""

    alpha_final: float = LEE_ALPHA_FINAL
    t1: float = 10.0
    t2: float = 60.0
    unit: str = "epochs"
    threshold: Optional[float] = None
    warmup: int = 0
    unlabelled_per_batch: int = 64

    def validate(self) -> "PseudoLabelConfig":
        if self.unit not in ("epochs", "steps"):
            raise A2Error(f"unit={self.unit!r} should be 'epochs' or 'steps'")
        if self.unlabelled_per_batch < 1:
            raise A2Error(f"unlabelled_per_batch={self.unlabelled_per_batch} should be >= 1")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise A2Error(f"threshold={self.threshold} should be a probability in [0, 1]")
        if self.warmup < 0:
            raise A2Error(f"warmup={self.warmup} should be >= 0")
        alpha_schedule(0, self.t1, self.t2, self.alpha_final)  # validates t1/t2/alpha
        return self


class MixedBatches:
    """Labelled rows ``indices`` plus unlabelled rows, targets ``UNLABELLED`` on the latter.

    ``len()`` is the labelled count, so an epoch is one pass over the labelled set (Lee's
    setting). ``set_epoch`` tells it when warm-up ends (no unlabelled rows before that).

    Parameters
    ----------
    inputs : float (N, C, H, W), already normalised; targets : int64 (N,) 0-based.
    unlabelled : (M, C, H, W), any dtype (uint8 for a course extra.t7b).
    per_batch : unlabelled rows added to every batch (after warm-up).
    seed : int, mixed with the batch's labelled indices to draw its unlabelled rows and flips.
    flip : BatchFlip on the whole mixed batch (the loop's own flip must be off).
    warmup : epochs 1..warmup have no unlabelled rows.
    transform : callable ``(rows of unlabelled) -> float rows like inputs``, optional
        Applied to the drawn rows only (e.g. ``provider.normalize`` with the train stats).
    """

    def __init__(self, inputs, targets, unlabelled, *, per_batch: int, seed: int,
                 flip: bool = True, warmup: int = 0, transform=None):
        if inputs.shape[0] != targets.shape[0]:
            raise A2Error(f"{inputs.shape[0]} labelled inputs but {targets.shape[0]} targets")
        if unlabelled.shape[0] == 0:
            raise A2Error("no unlabelled images to pseudo-label")
        if unlabelled.shape[1:] != inputs.shape[1:]:
            raise A2Error(f"unlabelled images are {tuple(unlabelled.shape[1:])}, labelled ones "
                          f"{tuple(inputs.shape[1:])}")
        self.inputs, self.targets, self.unlabelled = inputs, targets, unlabelled
        if per_batch < 1:
            raise A2Error(f"per_batch={per_batch} should be >= 1")
        self.per_batch, self.seed, self.flip, self.warmup = per_batch, seed, flip, warmup
        self.transform = transform
        self.epoch = 1

    def __len__(self):
        return self.inputs.shape[0]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def get_batch(self, indices: torch.Tensor):
        key = zlib.crc32(indices.to(torch.int64).numpy().tobytes())
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + key) % 2**63)
        x, t = self.inputs.index_select(0, indices), self.targets.index_select(0, indices)
        if self.epoch > self.warmup:
            rows = torch.randint(self.unlabelled.shape[0], (self.per_batch,), generator=gen)
            extra = self.unlabelled.index_select(0, rows)
            if self.transform is not None:
                extra = self.transform(extra)
            x = torch.cat([x, extra.to(x.dtype)])
            t = torch.cat([t, torch.full((self.per_batch,), UNLABELLED, dtype=t.dtype)])
        if self.flip:
            x = batch_flip(x, flip_mask(x.shape[0], gen))
        return x, t


class PseudoLabelLoss:
    """``loss_fn`` for :func:`luatorch_port.train.fit`: CE(labelled) + alpha(t) CE(pseudo)."""

    def __init__(self, config: PseudoLabelConfig, batches_per_epoch: int):
        self.config = config.validate()
        self.batches_per_epoch = batches_per_epoch
        self.last_alpha = 0.0

    def time(self, info) -> float:
        if self.config.unit == "steps":
            return float(info.step)
        return (info.epoch - 1) + info.batch / max(self.batches_per_epoch, 1)

    def __call__(self, outputs, targets, info):
        labelled = targets != UNLABELLED
        loss = F.cross_entropy(outputs[labelled], targets[labelled])
        n_unlabelled = int((~labelled).sum())
        alpha = alpha_schedule(self.time(info), self.config.t1, self.config.t2,
                               self.config.alpha_final)
        self.last_alpha = alpha
        if n_unlabelled == 0 or alpha == 0:
            return loss
        scores = outputs[~labelled]
        with torch.no_grad():
            probs = scores.softmax(1)
            confidence, pseudo = probs.max(1)
            keep = (confidence >= self.config.threshold) if self.config.threshold is not None \
                else torch.ones_like(pseudo, dtype=torch.bool)
        per_row = F.cross_entropy(scores, pseudo, reduction="none")
        unlabelled_loss = (per_row * keep).sum() / n_unlabelled
        return loss + alpha * unlabelled_loss
