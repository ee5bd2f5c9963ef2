"""Port of optim.ConfusionMatrix (torch/optim ConfusionMatrix.lua): counts, totalValid, averageValid;
and :func:`score`, a submission's accuracy and confusion matrix against the true labels.

Rows are targets, columns predictions, as in Lua (``mat[t][p]``). Classes are 0-based here.

Deviations: Lua ignores targets <= 0 (1-based "missing"); here targets < 0 are ignored, the
same rule after the 0-based shift, so a batch may mark unlabelled rows with -1. Counts are an
int64 tensor (Lua keeps a FloatTensor, exact only below 2**24 per cell).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..util.errors import A2Error


class ConfusionMatrix:
    """Accumulate a ``n_classes x n_classes`` matrix of (target, prediction) counts.

    Parameters
    ----------
    n_classes : int
    classes : list of str, optional
        Names printed beside each row by :meth:`__str__`.
    device : torch.device, optional
        Where the counts live (the training device, so no per-batch host sync).
    """

    def __init__(self, n_classes: int, classes=None, device=None):
        if n_classes < 1:
            raise A2Error(f"ConfusionMatrix: n_classes={n_classes} should be >= 1")
        self.n_classes = int(n_classes)
        self.classes = list(classes) if classes else []
        # ``counts``: the n*n cells (row-major, ``mat`` is a view) and one spare bin that
        # collects ignored rows, so adding never syncs with the device
        self.counts = torch.zeros(self.n_classes ** 2 + 1, dtype=torch.int64, device=device)
        self.mat = self.counts[:-1].view(self.n_classes, self.n_classes)

    def zero(self) -> None:
        self.counts.zero_()

    def batch_add(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch: ``predictions`` (N,) class ids or (N, C) scores; ``targets`` (N,) ids."""
        if predictions.dim() == 2:
            predictions = predictions.detach().argmax(1)
        elif predictions.dim() != 1:
            raise A2Error(f"ConfusionMatrix: predictions must be 1-d or 2-d, got shape "
                          f"{tuple(predictions.shape)}")
        predictions = predictions.to(self.mat.device, torch.int64)
        targets = targets.to(self.mat.device, torch.int64)
        if predictions.shape != targets.shape:
            raise A2Error(f"ConfusionMatrix: {tuple(predictions.shape)} predictions for "
                          f"{tuple(targets.shape)} targets")
        flat = torch.where(targets >= 0, targets * self.n_classes + predictions,
                           self.n_classes ** 2)
        self.counts.index_add_(0, flat, torch.ones_like(flat))

    # Lua's name
    batchAdd = batch_add

    @property
    def total(self) -> int:
        return int(self.mat.sum())

    @property
    def total_valid(self) -> float:
        """Fraction correct over all samples (Lua ``totalValid``); nan when empty."""
        total = self.total
        return float(self.mat.diagonal().sum()) / total if total else math.nan

    @property
    def valids(self) -> list:
        """Per-class recall (Lua ``valids``); nan for a class with no samples."""
        rows = self.mat.sum(1).tolist()
        diag = self.mat.diagonal().tolist()
        return [d / r if r else math.nan for d, r in zip(diag, rows)]

    @property
    def average_valid(self) -> float:
        """Mean of the per-class recalls that are defined (Lua ``averageValid``)."""
        vals = [v for v in self.valids if not math.isnan(v)]
        return sum(vals) / len(vals) if vals else math.nan

    @property
    def average_union_valid(self) -> float:
        """Mean intersection-over-union per class (Lua ``averageUnionValid``, the VOC measure)."""
        diag = self.mat.diagonal().double()
        union = self.mat.sum(0).double() + self.mat.sum(1).double() - diag
        rows = self.mat.sum(1)
        vals = [float(d / u) for d, u, r in zip(diag, union, rows) if r > 0 and u > 0]
        return sum(vals) / len(vals) if vals else math.nan

    totalValid = total_valid
    averageValid = average_valid

    def __str__(self) -> str:
        """The text Lua's ``tostring(confusion)`` prints."""
        mat = self.mat.cpu().tolist()
        valids = self.valids
        lines = ["ConfusionMatrix:\n["]
        n = self.n_classes
        for t in range(n):
            pclass = f"{valids[t] * 100:2.3f}"
            row = ("[" if t == 0 else " [") + "".join(f"{v:8d}" for v in mat[t])
            close = "]]  " if t == n - 1 else "]   "
            name = f" \t[class: {self.classes[t]}]" if t < len(self.classes) else " "
            lines.append(row + close + pclass + "%" + name + "\n")
        lines.append(f" + average row correct: {self.average_valid * 100}% \n")
        lines.append(f" + average rowUcol correct (VOC measure): {self.average_union_valid * 100}% \n")
        lines.append(f" + global correct: {self.total_valid * 100}%")
        return "".join(lines)


@dataclass
class Score:
    """``accuracy`` in [0, 1], ``n_correct`` of ``n``, the confusion matrix (rows = truth)."""

    accuracy: float
    n_correct: int
    n: int
    confusion: object


def score(pred0, truth0, n_classes: int = 10, classes=None) -> Score:
    """Compare 0-based predictions with 0-based true labels of the same length."""
    pred = torch.as_tensor(pred0).reshape(-1)
    truth = torch.as_tensor(truth0).reshape(-1)
    if pred.numel() != truth.numel():
        raise A2Error(f"{pred.numel()} predictions for {truth.numel()} test images")
    conf = ConfusionMatrix(n_classes, classes)
    conf.batch_add(pred, truth)
    n_correct = int(conf.mat.diagonal().sum())
    return Score(accuracy=n_correct / max(conf.total, 1), n_correct=n_correct, n=conf.total,
                 confusion=conf)
