"""Principal components of the rows of a matrix, for t-SNE's input reduction and initialisation.

manifold.embedding.tsne reduces its input with PCA only when asked (its ``pca_dims`` option);
scikit-learn's t-SNE initialises the map from the first two components.
"""

from __future__ import annotations

import torch

from ..util.errors import A2Error


def pca(x: torch.Tensor, dims: int) -> torch.Tensor:
    """Project the rows of ``x`` (N×D) on their first ``dims`` principal components.

    Through the N×N Gram matrix when N < D (1000 images of 9,216 values: one small GEMM and
    an eigendecomposition), else through the D×D covariance. Returns float64 N×min(dims, N, D)
    with components in decreasing order of variance; signs are made deterministic.
    """
    if x.dim() != 2:
        raise A2Error(f"pca: expected an N×D matrix, got shape {tuple(x.shape)}")
    xc = x.to(torch.float64)
    xc = xc - xc.mean(dim=0, keepdim=True)
    n, d = xc.shape
    k = min(dims, n, d)
    if n <= d:
        evals, evecs = torch.linalg.eigh(xc @ xc.T)
        top = evecs[:, -k:].flip(1) * evals[-k:].flip(0).clamp_min(0).sqrt()
    else:
        evals, evecs = torch.linalg.eigh(xc.T @ xc)
        top = xc @ evecs[:, -k:].flip(1)
    # sign convention: the largest-magnitude entry of each component is positive
    idx = top.abs().argmax(dim=0)
    signs = torch.sign(top[idx, torch.arange(k)])
    signs[signs == 0] = 1
    return top * signs
