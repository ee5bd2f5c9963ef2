"""Port of Coates' patch pre-processing (``kmeans_demo.m``): contrast normalisation and ZCA.

MATLAB::

    patches = bsxfun(@rdivide, bsxfun(@minus, patches, mean(patches,2)),
                     sqrt(var(patches,[],2)+10));
    C = cov(patches); M = mean(patches); [V,D] = eig(C);
    P = V * diag(sqrt(1./(diag(D) + 0.1))) * V';
    patches = bsxfun(@minus, patches, M) * P;

Deviations: none in the maths. The mean, the sum of the chunks' covariances and the
eigendecomposition are in float64 (MATLAB's doubles); each chunk of ``FIT_CHUNK`` centred
rows is multiplied in float32 (a relative error near 1e-7, far below ``ZCA_EPS``; a float64
GEMM costs three times as much). The whitening matrix is returned as float32.
"""

from __future__ import annotations

import torch

from ..util.errors import A2Error

CONTRAST_VAR_REG = 10.0   # kmeans_demo.m: sqrt(var(patches,[],2) + 10), pixels in 0..255
ZCA_EPS = 0.1             # kmeans_demo.m: diag(sqrt(1./(diag(D) + 0.1)))
FIT_CHUNK = 65536         # rows per step of the covariance accumulation


def contrast_normalize(patches: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Per row: ``(p − mean(p)) / sqrt(var(p) + 10)``, var unbiased (n − 1), like MATLAB's ``var``.

    patches : float (n, d) tensor. ``out`` may be ``patches`` itself (in place).
    """
    if patches.dim() != 2 or patches.shape[1] < 2:
        raise A2Error(f"contrast normalisation needs (n, d >= 2) patches, got {tuple(patches.shape)}")
    var, mean = torch.var_mean(patches, dim=1, correction=1, keepdim=True)
    if out is None:
        out = torch.empty_like(patches)
    torch.sub(patches, mean, out=out)
    return out.div_(var.add_(CONTRAST_VAR_REG).sqrt_())


def fit_zca(patches: torch.Tensor, eps: float = ZCA_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """ZCA whitening of the rows of ``patches``: ``(M, P)``, float32 (d,) and (d, d).

    ``C = cov(patches)`` (n − 1), ``P = V diag(1/sqrt(D + eps)) Vᵀ``; apply with
    :func:`apply_zca` as ``(x − M) P``.
    """
    n, d = patches.shape
    if n < 2:
        raise A2Error(f"ZCA needs at least 2 patches, got {n}")
    mean = torch.zeros(d, dtype=torch.float64, device=patches.device)
    for lo in range(0, n, FIT_CHUNK):
        mean += patches[lo:lo + FIT_CHUNK].sum(0, dtype=torch.float64)
    mean /= n
    mean32 = mean.to(patches.dtype)
    cov = torch.zeros(d, d, dtype=torch.float64, device=patches.device)
    for lo in range(0, n, FIT_CHUNK):
        xc = patches[lo:lo + FIT_CHUNK] - mean32
        cov += (xc.t() @ xc).double()
    cov /= n - 1
    evals, evecs = torch.linalg.eigh(cov)
    p = (evecs * (evals.clamp(min=0) + eps).rsqrt()) @ evecs.t()
    return mean.float(), p.float()


def apply_zca(patches: torch.Tensor, mean: torch.Tensor, p: torch.Tensor,
              out: torch.Tensor | None = None) -> torch.Tensor:
    """``(patches − mean) @ P`` (float32 (n, d)); ``out`` may be ``patches`` itself (in place,
    a chunk of rows at a time)."""
    if out is None:
        return (patches - mean) @ p
    for lo in range(0, patches.shape[0], FIT_CHUNK):
        block = patches[lo:lo + FIT_CHUNK] - mean
        torch.matmul(block, p, out=out[lo:lo + FIT_CHUNK])
    return out
