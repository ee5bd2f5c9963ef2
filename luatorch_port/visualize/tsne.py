"""Report part 3.2: a t-SNE map of images (t-SNE of the raw features; PCA only when asked).

Port of the report's use of manifold.embedding.tsne (clementfarabet/manifold ``tsne.lua``:
``pca_dims = opts.pca or (use_bh and 100) or nil``, so its default, the exact t-SNE in Lua,
embeds the input as it is, and only its Barnes-Hut path reduces, to 100 dimensions) and
manifold.draw_image_map; the t-SNE is scikit-learn's
(perplexity 30, PCA initialisation, its optimiser), either as scikit-learn runs it with
Barnes-Hut (θ 0.5) or, up to :data:`tsne_exact.EXACT_MAX_POINTS` points, the same algorithm
with the exact gradient in torch (:mod:`luatorch_port.visualize.tsne_exact`).

Deviations: manifold's exact t-SNE has dense affinities over all N points, a random
initialisation, exaggeration 4 for 200 iterations and learning rate 500; here the affinities,
PCA initialisation and optimiser are scikit-learn's, so coordinates differ from a Lua run even
for the same input, and only the map's structure is comparable. ``method="auto"`` (the default) uses the
exact gradient for the report's 1,000 val images: the same affinities and optimiser as
Barnes-Hut without its θ approximation, and faster here (docs/visualize.md). The embedding is
scored with scikit-learn's trustworthiness (k = 5 neighbours) against the features given, a
number the report did not have.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..util.errors import A2Error
from ..util.progress import Progress, or_silent
from ..util.threads import torch_threads
from .pca import pca, sq_distances
from .trust import trustworthiness
from . import tsne_exact

# manifold.embedding.tsne's default: no PCA (``pca_dims`` only when asked). 0 = none.
PCA_DIMS = 0
# Settings of the report's run (manifold defaults): perplexity 30, Barnes-Hut theta 0.5.
PERPLEXITY = 30.0
THETA = 0.5
N_ITER = 1000
TRUST_NEIGHBORS = 5
METHODS = ("auto", "exact", "barnes-hut")


@dataclass
class Embedding:
    """The result of :func:`embed`.

    coords : float64 N×2 array; trustworthiness : float in [0, 1]; seconds : wall time per step.
    """

    coords: np.ndarray
    trustworthiness: float
    input_dims: int
    pca_dims: int
    kl_divergence: float
    method: str = "barnes-hut"
    seconds: dict = field(default_factory=dict)


def embed(features, *, pca_dims: int = PCA_DIMS, perplexity: float = PERPLEXITY, theta: float = THETA,
          n_iter: int = N_ITER, trust_neighbors: int = TRUST_NEIGHBORS, threads: int | None = None,
          method: str = "auto", generator: torch.Generator | None = None,
          progress: Progress | None = None) -> Embedding:
    """t-SNE of ``features`` (N×D, any float or integer dtype) into 2-D.

    PCA to ``pca_dims`` (skipped when ``pca_dims`` is 0, the default, or D is already that small), then
    t-SNE (``perplexity``, ``n_iter`` iterations, PCA initialisation): ``method="barnes-hut"``
    is scikit-learn's (``angle=theta``, seeded from ``generator``), ``"exact"`` the exact
    gradient of :mod:`luatorch_port.visualize.tsne_exact` (deterministic, ``theta`` unused), ``"auto"``
    exact up to ``tsne_exact.EXACT_MAX_POINTS`` points. Trustworthiness is computed against
    ``features`` themselves. ``threads`` caps the threads of the t-SNE step (None: all cores);
    on a shared, busy machine one thread can be several times faster than two. ``progress``
    (:class:`~luatorch_port.util.progress.Progress`) sees the t-SNE iterations (Barnes-Hut: its
    start and end only).
    """
    from threadpoolctl import threadpool_limits

    x = torch.as_tensor(features)
    if x.dim() != 2:
        raise A2Error(f"t-SNE: expected N×D features, got shape {tuple(x.shape)}")
    n, d = x.shape
    if n <= perplexity:
        raise A2Error(f"t-SNE: {n} points is too few for perplexity {perplexity:g} (needs more points than that; "
                      f"lower --perplexity)")
    if n <= trust_neighbors * 2 + 1:
        raise A2Error(f"t-SNE: {n} points is too few for trustworthiness with {trust_neighbors} neighbours")
    lo, hi = torch.aminmax(x, dim=0)        # one pass: NaN and ±inf reach the column extremes
    if not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise A2Error("t-SNE: the features contain NaN or infinite values (a diverged model?)")
    if bool((lo == hi).all()):
        raise A2Error("t-SNE: every image has the same features; there is nothing to map")
    if method not in METHODS:
        raise A2Error(f"t-SNE method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        method = "exact" if n <= tsne_exact.EXACT_MAX_POINTS else "barnes-hut"
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())
    seconds = {}
    t0 = time.perf_counter()
    x64 = x.to(torch.float64)
    reduced = pca(x64, pca_dims) if pca_dims and d > pca_dims else x64
    seconds["pca"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sq = None
    if method == "exact":
        with torch_threads(threads):
            # one N×N GEMM gives the affinities, the initialisation and (without PCA) trustworthiness
            sq = sq_distances(reduced)
            seconds["distances"] = time.perf_counter() - t0
            result = tsne_exact.tsne_exact(None, perplexity=perplexity, n_iter=n_iter, progress=progress,
                                           sq_dists=sq)
        coords, kl = result.coords.to(torch.float64).numpy(), result.kl_divergence
        seconds.update(result.seconds)
    else:
        from sklearn.manifold import TSNE  # a slow import: only on this path

        tsne = TSNE(n_components=2, perplexity=perplexity, angle=theta, max_iter=n_iter, init="pca",
                    learning_rate="auto", method="barnes_hut", random_state=seed)
        report = or_silent(progress)
        report(0, 1, stage="t-SNE (Barnes-Hut)")
        with threadpool_limits(limits=threads, user_api="openmp"):
            coords = tsne.fit_transform(reduced.numpy())
        report(1, 1, stage="t-SNE (Barnes-Hut)")
        kl = float(tsne.kl_divergence_)
    seconds["tsne"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    trust = trustworthiness(x64, coords, n_neighbors=trust_neighbors, sq_dists=sq if reduced is x64 else None)
    seconds["trustworthiness"] = time.perf_counter() - t0
    return Embedding(coords=np.asarray(coords, dtype=np.float64), trustworthiness=trust, input_dims=d,
                     pca_dims=reduced.shape[1], kl_divergence=kl, method=method, seconds=seconds)
