"""Principal components of the rows of a matrix, for t-SNE's optional input reduction and its
initialisation, and the squared distances the exact t-SNE and trustworthiness share.

manifold.embedding.tsne reduces its input with PCA only when asked (its ``pca_dims`` option);
scikit-learn's t-SNE initialises the map from the first two components.
"""

from __future__ import annotations

import torch

from ..util.errors import A2Error


# The distance GEMM's precision. float32 runs it at twice float64's rate; on the centred
# 9,216-value images of val its distances differ from float64's by at most a few parts in a
# million, and each point's 91 nearest neighbours (the affinities) are the same
# (docs/visualize.md). The result is returned in float64 either way.
DISTANCE_DTYPE = torch.float32


def sq_distances(x: torch.Tensor, dtype: torch.dtype = DISTANCE_DTYPE) -> torch.Tensor:
    """Squared euclidean distances between the rows of ``x`` (N×D): float64 N×N, one GEMM in ``dtype``.

    Columns are centred first (distances do not change; the products lose less to rounding),
    by their float64 means. The diagonal is exactly 0.
    """
    mean = x.mean(dim=0, keepdim=True, dtype=torch.float64)
    x = x.to(dtype, copy=True).sub_(mean.to(dtype))
    sq = (x * x).sum(1)
    d2 = torch.addmm(sq[:, None] + sq[None, :], x, x.T, beta=1.0, alpha=-2.0).clamp_(min=0)
    d2.fill_diagonal_(0.0)
    return d2.to(torch.float64)


def centered_gram(d2: torch.Tensor) -> torch.Tensor:
    """The centred Gram matrix ``xc xcᵀ`` of points with squared distances ``d2`` (N×N):
    ``−½ J d2 J``, J the centring matrix (classical scaling)."""
    d2 = d2.to(torch.float64)
    row = d2.mean(dim=1, keepdim=True)
    return -0.5 * (d2 - row - row.T + d2.mean())


# Subspace iteration for the few leading eigenpairs of an N×N Gram matrix (t-SNE's
# initialisation needs two): the full eigendecomposition is O(N³), each iteration one N×N·N×p
# product. Used up to SUBSPACE_MAX_K components, with SUBSPACE_EXTRA more vectors iterated than
# asked for (convergence goes as (λ_{k+extra+1} / λ_k)^iterations); converged when every
# residual ‖G v − λ v‖ is at most SUBSPACE_TOL · λ_1, else (or for more components) eigh.
SUBSPACE_MAX_K = 8
SUBSPACE_EXTRA = 8
SUBSPACE_TOL = 1e-12
SUBSPACE_MAX_ITER = 200


def _leading_eigenpairs(gram: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest eigenvalues (decreasing) of the symmetric PSD ``gram`` and their
    eigenvectors (N×k), as ``torch.linalg.eigh`` gives them up to each vector's sign."""
    n = gram.shape[0]
    p = k + SUBSPACE_EXTRA
    if k <= SUBSPACE_MAX_K and n >= 4 * p:
        # start from the columns of largest norm (deterministic, and in the dominant subspace)
        q = torch.linalg.qr(gram[:, gram.diagonal().topk(p).indices]).Q
        for _ in range(SUBSPACE_MAX_ITER):
            z = gram @ q
            evals, small = torch.linalg.eigh(q.T @ z)           # Rayleigh-Ritz on span(q)
            vals, vecs = evals[-k:].flip(0), (q @ small[:, -k:]).flip(1)
            resid = torch.linalg.vector_norm((z @ small[:, -k:]).flip(1) - vecs * vals, dim=0)
            if float(resid.max()) <= SUBSPACE_TOL * max(float(evals[-1]), 1e-300):
                return vals, vecs
            q = torch.linalg.qr(z).Q
    evals, evecs = torch.linalg.eigh(gram)
    return evals[-k:].flip(0), evecs[:, -k:].flip(1)


def _components(gram: torch.Tensor, k: int) -> torch.Tensor:
    vals, vecs = _leading_eigenpairs(gram, k)
    return vecs * vals.clamp_min(0).sqrt()


def _fix_signs(top: torch.Tensor) -> torch.Tensor:
    # sign convention: the largest-magnitude entry of each component is positive
    k = top.shape[1]
    idx = top.abs().argmax(dim=0)
    signs = torch.sign(top[idx, torch.arange(k)])
    signs[signs == 0] = 1
    return top * signs


def pca(x: torch.Tensor, dims: int) -> torch.Tensor:
    """Project the rows of ``x`` (N×D) on their first ``dims`` principal components.

    Through the N×N Gram matrix when N < D (1000 images of 9,216 values: one GEMM and an
    eigendecomposition), else through the D×D covariance. Returns float64 N×min(dims, N, D)
    with components in decreasing order of variance; signs are made deterministic.
    """
    if x.dim() != 2:
        raise A2Error(f"pca: expected an N×D matrix, got shape {tuple(x.shape)}")
    xc = x.to(torch.float64)
    xc = xc - xc.mean(dim=0, keepdim=True)
    n, d = xc.shape
    k = min(dims, n, d)
    if n <= d:
        top = _components(xc @ xc.T, k)
    else:
        evals, evecs = torch.linalg.eigh(xc.T @ xc)
        top = xc @ evecs[:, -k:].flip(1)
    return _fix_signs(top)


def pca_from_sq_distances(d2: torch.Tensor, dims: int) -> torch.Tensor:
    """:func:`pca` of points known by their squared distances ``d2`` (N×N): the same
    components (up to rounding) without the input, through :func:`centered_gram`."""
    return _fix_signs(_components(centered_gram(d2), min(dims, d2.shape[0])))
