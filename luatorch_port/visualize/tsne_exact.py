"""t-SNE with the exact gradient, in torch: scikit-learn's t-SNE with the quadtree taken out.

Port of scikit-learn's ``sklearn/manifold/_t_sne.py`` (1.x) for the parts that define the
result: the input affinities of ``_joint_probabilities_nn`` (Gaussian conditionals over each
point's ``3·perplexity + 1`` nearest neighbours, bandwidths found by bisection as
``_utils._binary_search_perplexity``, symmetrised and normalised — the affinities of bhtsne,
which the report's manifold.embedding.tsne called), the optimiser of ``_gradient_descent``
(250 iterations at early exaggeration 12 and momentum 0.5, then momentum 0.8; gains +0.2 or
×0.8, floored at 0.01; learning rate "auto" = max(N / 12 / 4, 50); the progress check every 50
iterations) and the PCA initialisation scaled to a first-axis standard deviation of 1e-4.

The gradient ``4 Σ_j (p_ij − q_ij) (1 + ‖y_i − y_j‖²)⁻¹ (y_i − y_j)`` is computed over all N²
pairs with a few dense torch passes per iteration (one N×N GEMM for the distances, one for the
sum), where Barnes-Hut approximates the repulsive part with a quadtree (θ = 0.5).

Deviations: the repulsion is exact rather than the θ = 0.5 approximation — the objective is
t-SNE's own, and for the report's 1,000 images the dense passes run faster on this CPU than
scikit-learn's quadtree (see docs/visualize.md). Cost grows as N², so :func:`luatorch_port.visualize.tsne.embed`
uses this only up to :data:`EXACT_MAX_POINTS` and scikit-learn's Barnes-Hut above. The
optimisation runs in float32 (scikit-learn's Barnes-Hut does too); affinities are computed in
float64. The PCA initialisation's sign convention is :func:`luatorch_port.visualize.pca.pca`'s.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from ..util.progress import Progress, or_silent
from .pca import pca, pca_from_sq_distances

# scikit-learn TSNE defaults (sklearn/manifold/_t_sne.py)
EARLY_EXAGGERATION = 12.0
EXPLORATION_ITER = 250          # TSNE._EXPLORATION_MAX_ITER
MOMENTUM_EXPLORATION = 0.5
MOMENTUM_FINAL = 0.8
MIN_GAIN = 0.01
GAIN_UP, GAIN_DOWN = 0.2, 0.8
N_ITER_CHECK = 50               # TSNE._N_ITER_CHECK
N_ITER_WITHOUT_PROGRESS = 300
MIN_GRAD_NORM = 1e-7
INIT_STD = 1e-4                 # X_embedded / std(X_embedded[:, 0]) * 1e-4
# _utils._binary_search_perplexity
PERPLEXITY_TOL = 1e-5
PERPLEXITY_STEPS = 100
MACHINE_EPSILON = torch.finfo(torch.float64).eps
# Above this many points the N² passes cost more than Barnes-Hut (docs/visualize.md).
EXACT_MAX_POINTS = 2500


@dataclass
class ExactResult:
    coords: torch.Tensor        # float32 N×2
    kl_divergence: float
    iterations: int
    seconds: dict = field(default_factory=dict)   # wall time of each step


def nearest_neighbours(x: torch.Tensor, k: int, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared euclidean distances and indices of each row's ``k`` nearest other rows.

    ``x`` float64 N×D -> (float64 N×k distances², int64 N×k indices), nearest first; computed
    in row chunks so N×N is never held at once.
    """
    n = x.shape[0]
    sq = (x * x).sum(1)
    dists, idx = [], []
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        d2 = (sq[lo:hi, None] + sq[None, :] - 2.0 * (x[lo:hi] @ x.T)).clamp_(min=0)
        d2[torch.arange(hi - lo), torch.arange(lo, hi)] = math.inf   # not its own neighbour
        d, i = torch.topk(d2, k, dim=1, largest=False, sorted=True)
        dists.append(d)
        idx.append(i)
    return torch.cat(dists), torch.cat(idx)


def nearest_from_sq_distances(d2: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`nearest_neighbours` from precomputed squared distances ``d2`` (N×N, float64)."""
    n = d2.shape[0]
    d2 = d2.clone()
    d2[torch.arange(n), torch.arange(n)] = math.inf   # not its own neighbour
    d, i = torch.topk(d2, k, dim=1, largest=False, sorted=True)
    return d, i


def conditional_probabilities(dist2: torch.Tensor, perplexity: float) -> torch.Tensor:
    """Rows of Gaussian conditionals ``p_j|i ∝ exp(−β_i d²_ij)`` with perplexity ``perplexity``.

    Vectorised over rows, the same bisection on β as ``_binary_search_perplexity``: start at
    β = 1, double (or halve) until bracketed, then bisect; a row stops when its entropy is
    within 1e-5 nats of ``log(perplexity)`` or after 100 steps.
    """
    d = dist2.to(torch.float64)
    n = d.shape[0]
    target = math.log(perplexity)
    beta = torch.ones(n, dtype=torch.float64)
    lo = torch.full((n,), -math.inf, dtype=torch.float64)
    hi = torch.full((n,), math.inf, dtype=torch.float64)
    active = torch.ones(n, dtype=torch.bool)
    p = torch.empty_like(d)
    for _ in range(PERPLEXITY_STEPS):
        p = torch.exp(-d * beta[:, None])
        s = p.sum(1).clamp_min(1e-8)                       # EPSILON_DBL in _utils.pyx
        entropy = torch.log(s) + beta * (d * p).sum(1) / s
        diff = entropy - target
        active &= diff.abs() > PERPLEXITY_TOL
        if not bool(active.any()):
            break
        up = active & (diff > 0)                            # too flat: narrow the Gaussian
        down = active & (diff <= 0)
        lo = torch.where(up, beta, lo)
        hi = torch.where(down, beta, hi)
        beta = torch.where(up, torch.where(torch.isinf(hi), beta * 2, (beta + hi) / 2), beta)
        beta = torch.where(down, torch.where(torch.isinf(lo), beta / 2, (beta + lo) / 2), beta)
    p = torch.exp(-d * beta[:, None])
    return p / p.sum(1, keepdim=True).clamp_min(1e-8)


def joint_probabilities(x: torch.Tensor | None, perplexity: float, *,
                        sq_dists: torch.Tensor | None = None) -> torch.Tensor:
    """Dense symmetric N×N affinities ``P`` (sum 1) from the kNN conditionals of ``x`` (N×D),
    or of the points whose squared distances are ``sq_dists`` (N×N)."""
    n = x.shape[0] if sq_dists is None else sq_dists.shape[0]
    k = min(n - 1, int(3.0 * perplexity + 1))
    if sq_dists is None:
        dist2, idx = nearest_neighbours(x.to(torch.float64), k)
    else:
        dist2, idx = nearest_from_sq_distances(sq_dists, k)
    cond = conditional_probabilities(dist2, perplexity)
    p = torch.zeros(n, n, dtype=torch.float64)
    p.scatter_(1, idx, cond)
    p = p + p.T
    return p / max(float(p.sum()), MACHINE_EPSILON)


def pca_init(x: torch.Tensor | None, *, sq_dists: torch.Tensor | None = None) -> torch.Tensor:
    """Two principal components of ``x`` (or of the points with squared distances
    ``sq_dists``), scaled so the first has standard deviation 1e-4."""
    y = pca(x, 2) if sq_dists is None else pca_from_sq_distances(sq_dists, 2)
    return (y / y[:, 0].std(correction=0) * INIT_STD).to(torch.float32)


class _Gradient:
    """Exact KL(P‖Q) gradient with reused N×N buffers (float32), seven dense passes.

    ``w = (1 + ‖y_i − y_j‖²)⁻¹`` (one GEMM plus two passes), ``z = Σ w``, then
    ``m = eP ⊙ w − w ⊙ w / z`` (two passes) and ``4 (rowsum(m) y − m y)`` from a single
    GEMM with ``[y, 1]``. ``m`` is symmetric, so that GEMM is taken as ``[y, 1]ᵀ m`` (3×N
    output): BLAS runs a 3-row product 3× faster than the N×3 one (tall-skinny output).
    """

    def __init__(self, p: torch.Tensor):
        n = p.shape[0]
        self.p = p.to(torch.float32)
        self._scaled = {1.0: self.p}
        self.w = torch.empty(n, n, dtype=torch.float32)
        self.m = torch.empty(n, n, dtype=torch.float32)
        self.y1t = torch.ones(3, n, dtype=torch.float32)
        self.my = torch.empty(3, n, dtype=torch.float32)

    def __call__(self, y: torch.Tensor, exaggeration: float, with_error: bool):
        w, m = self.w, self.m
        pe = self._scaled.get(exaggeration)
        if pe is None:
            pe = self._scaled[exaggeration] = self.p * exaggeration
        sq = (y * y).sum(1)
        torch.addmm((sq + 1.0)[:, None].expand_as(w), y, y.T, beta=1.0, alpha=-2.0, out=w)
        w.add_(sq[None, :]).reciprocal_()
        w.fill_diagonal_(0.0)
        z = float(w.sum())
        torch.mul(pe, w, out=m)
        m.addcmul_(w, w, value=-1.0 / z)
        self.y1t[:2] = y.T
        my = torch.mm(self.y1t, m, out=self.my).T          # [m y, rowsum(m)], m symmetric
        grad = 4.0 * (my[:, 2:] * y - my[:, :2])
        error = None
        if with_error:
            # KL(eP‖Q) as scikit-learn reports it during exaggeration: Σ eP log(eP / Q)
            mask = pe > 0
            q = (w[mask] / z).clamp_min(MACHINE_EPSILON)
            error = float((pe[mask] * torch.log(pe[mask] / q)).sum())
        return grad, error


def kl_divergence(p: torch.Tensor, y: torch.Tensor) -> float:
    """KL(P‖Q) of the embedding ``y`` (float64; for tests and the final report)."""
    y = y.to(torch.float64)
    d2 = torch.cdist(y, y).pow(2)
    w = 1.0 / (1.0 + d2)
    w.fill_diagonal_(0.0)
    q = w / w.sum()
    mask = p > 0
    return float((p[mask] * torch.log(p[mask] / q[mask].clamp_min(MACHINE_EPSILON))).sum())


def _descend(grad_fn, y, it, max_iter, momentum, learning_rate, exaggeration, without_progress,
             on_iteration=None):
    """scikit-learn's ``_gradient_descent`` (gains, momentum, the progress check);
    ``on_iteration(i)`` after each iteration."""
    update = torch.zeros_like(y)
    gains = torch.ones_like(y)
    best_error, best_iter = math.inf, it
    error = math.inf
    i = it
    for i in range(it, max_iter):
        check = (i + 1) % N_ITER_CHECK == 0
        grad, err = grad_fn(y, exaggeration, check or i == max_iter - 1)
        if err is not None:
            error = err
        inc = (update * grad) < 0
        gains = torch.where(inc, gains + GAIN_UP, gains * GAIN_DOWN).clamp_(min=MIN_GAIN)
        grad.mul_(gains)
        update = momentum * update - learning_rate * grad
        y = y + update
        if on_iteration is not None:
            on_iteration(i)
        if check:
            if error < best_error:
                best_error, best_iter = error, i
            elif i - best_iter > without_progress:
                break
            if float(torch.linalg.vector_norm(grad)) <= MIN_GRAD_NORM:
                break
    return y, error, i


def tsne_exact(x: torch.Tensor | None, *, perplexity: float = 30.0, n_iter: int = 1000,
               learning_rate: float | None = None, progress: Progress | None = None,
               sq_dists: torch.Tensor | None = None) -> ExactResult:
    """Embed the rows of ``x`` (N×D) in 2-D; see the module docstring for the algorithm.

    With ``sq_dists`` (their N×N squared distances, :func:`~luatorch_port.visualize.pca.sq_distances`)
    ``x`` is not used: the affinities and the PCA initialisation come from the distances, so a
    9,216-d input costs one GEMM. ``progress`` (:class:`~luatorch_port.util.progress.Progress`) sees the iterations (stage "t-SNE").
    """
    report = or_silent(progress)

    def on_iteration(i):
        report(i + 1, n_iter, stage="t-SNE", unit="it")

    seconds = {}
    t0 = time.perf_counter()
    x64 = None if sq_dists is not None else x.to(torch.float64)
    p = joint_probabilities(x64, perplexity, sq_dists=sq_dists)
    t1 = time.perf_counter()
    y = pca_init(x64, sq_dists=sq_dists)
    t2 = time.perf_counter()
    seconds.update(affinities=t1 - t0, initialisation=t2 - t1)
    n = p.shape[0]
    lr = learning_rate if learning_rate is not None else max(n / EARLY_EXAGGERATION / 4, 50.0)
    grad_fn = _Gradient(p)
    y, _, it = _descend(grad_fn, y, 0, min(EXPLORATION_ITER, n_iter), MOMENTUM_EXPLORATION, lr,
                        EARLY_EXAGGERATION, EXPLORATION_ITER, on_iteration)
    if n_iter > EXPLORATION_ITER or it < EXPLORATION_ITER - 1:
        y, _, it = _descend(grad_fn, y, it + 1, n_iter, MOMENTUM_FINAL, lr, 1.0, N_ITER_WITHOUT_PROGRESS,
                            on_iteration)
    if it + 1 < n_iter:                                  # the progress check stopped it early
        report(n_iter, n_iter, stage="t-SNE", unit="it")
    t3 = time.perf_counter()
    kl = kl_divergence(p, y)
    seconds.update(iterations=t3 - t2, kl_divergence=time.perf_counter() - t3)
    return ExactResult(coords=y, kl_divergence=kl, iterations=it + 1, seconds=seconds)
