"""Which unlabelled examples get a pseudo-label: confidence threshold, per-class top-k, balance.

Shared by 2.3 (optional ``--threshold`` on softmax confidence, Lee 2013 used none) and 2.4
(self-training on k-means features: the most confident predictions of each class are added,
class-balanced, as in Yarowsky-style self-training).
"""

from __future__ import annotations

import torch

from ..util.errors import A2Error


def select_pseudo_labels(scores: torch.Tensor, *, threshold: float | None = None,
                         top_k: int | None = None, balanced: bool = False,
                         exclude: torch.Tensor | None = None):
    """Pick confident examples and their pseudo-labels.

    Parameters
    ----------
    scores : (N, C) float tensor
        Class scores (softmax probabilities, or SVM decision values). Confidence is the
        row maximum, the pseudo-label the row argmax (ties: the lowest class index).
    threshold : float, optional
        Keep only rows whose confidence is >= threshold.
    top_k : int, optional
        Of the rows predicted as each class, keep at most the ``top_k`` most confident.
    balanced : bool
        Cut every class to the count of the smallest class that kept at least one row,
        so the added set has the same number of each predicted class.
    exclude : (N,) bool tensor, optional
        Rows that may not be picked (already added in an earlier round).

    Returns
    -------
    indices : (M,) int64 tensor, sorted ascending
    labels : (M,) int64 tensor, 0-based pseudo-labels of those rows
    """
    if scores.dim() != 2:
        raise A2Error(f"scores should be N x C, got shape {tuple(scores.shape)}")
    if top_k is not None and top_k < 0:
        raise A2Error(f"top_k={top_k} should be >= 0")
    confidence, labels = scores.max(dim=1)
    keep = torch.ones(scores.shape[0], dtype=torch.bool, device=scores.device)
    if exclude is not None:
        keep &= ~exclude.to(torch.bool)
    if threshold is not None:
        keep &= confidence >= threshold
    chosen = []
    per_class = []
    for c in range(scores.shape[1]):
        rows = torch.nonzero(keep & (labels == c), as_tuple=False).flatten()
        # most confident first; stable so equal confidences keep index order
        order = torch.sort(confidence[rows], descending=True, stable=True).indices
        rows = rows[order]
        if top_k is not None:
            rows = rows[:top_k]
        per_class.append(rows)
    if balanced:
        counts = [len(r) for r in per_class if len(r) > 0]
        cap = min(counts) if counts else 0
        per_class = [r[:cap] for r in per_class]
    chosen = torch.cat(per_class) if per_class else torch.empty(0, dtype=torch.int64)
    chosen = torch.sort(chosen).values
    return chosen, labels[chosen]
