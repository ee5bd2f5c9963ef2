"""Trustworthiness of an embedding: how well its nearest neighbours keep their input-space ranks.

Port of ``sklearn.manifold.trustworthiness`` (Venna & Kaski 2001; scikit-learn 1.x,
euclidean metric) in torch, so an exact t-SNE run need not import ``sklearn.manifold``
(its import is a large share of a short ``a2 tsne``). ``T(k) = 1 − 2 / (n k (2n − 3k − 1)) Σ_i Σ_{j ∈ N_k(i)} max(0, r(i, j) − k)``,
where ``N_k(i)`` are the ``k`` nearest neighbours of point ``i`` in the embedding and
``r(i, j)`` is the rank of ``j`` among ``i``'s neighbours in the input space (1 = nearest).

Deviations: scikit-learn ranks input-space ties in its sort's order; here a tie takes the
smallest rank (points at exactly the same input distance). Both agree whenever the input
distances from a point are distinct.
"""

from __future__ import annotations

import torch

from ..util.errors import A2Error

ROW_BLOCK = 256  # rows of the N×N input distances held at once


def _sq_distances(x: torch.Tensor, rows: slice) -> torch.Tensor:
    sq = (x * x).sum(1)
    return (sq[rows, None] + sq[None, :] - 2.0 * (x[rows] @ x.T)).clamp_(min=0)


def trustworthiness(x, embedded, n_neighbors: int = 5, *, sq_dists: torch.Tensor | None = None) -> float:
    """``x`` N×D input, ``embedded`` N×d map (any float dtype) -> trustworthiness in [0, 1].

    ``sq_dists``: the inputs' N×N squared distances, when already computed (``x`` is then unused).
    """
    e = torch.as_tensor(embedded).to(torch.float64)
    if sq_dists is None:
        x = torch.as_tensor(x).to(torch.float64)
        n = x.shape[0]
    else:
        n = sq_dists.shape[0]
    if e.shape[0] != n:
        raise A2Error(f"trustworthiness: {n} input rows but {e.shape[0]} embedded rows")
    if not 1 <= n_neighbors < n / 2:
        raise A2Error(f"trustworthiness: n_neighbors={n_neighbors} should be in 1..{(n - 1) // 2} "
                      f"for {n} points")
    arange = torch.arange(n)
    d_emb = torch.cdist(e, e).pow(2)
    d_emb[arange, arange] = float("inf")
    nbrs = torch.topk(d_emb, n_neighbors, dim=1, largest=False, sorted=True).indices   # N×k
    total = 0.0
    for lo in range(0, n, ROW_BLOCK):
        rows = slice(lo, min(lo + ROW_BLOCK, n))
        d = _sq_distances(x, rows) if sq_dists is None else sq_dists[rows].clone()
        local = arange[rows]
        d[local - lo, local] = float("inf")                       # not its own neighbour
        d_nb = torch.gather(d, 1, nbrs[rows])                    # B×k input distances to map neighbours
        ranks = (d[:, None, :] < d_nb[:, :, None]).sum(2) + 1    # B×k input-space ranks
        total += float((ranks - n_neighbors).clamp_min(0).sum())
    k = n_neighbors
    return 1.0 - total * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)))
