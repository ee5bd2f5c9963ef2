"""Port of Coates' ``train_svm.m`` (kmeans_demo): one-vs-all L2-SVM (squared hinge), L-BFGS.

MATLAB (``my_l2svmloss``), with ``X`` the standardised features plus a column of ones::

    Y = 2*(y == 1:K) - 1;                       % (M, K) of ±1
    margin = max(0, 1 - Y .* (X*theta));
    loss = sum(0.5 * sum(theta.^2) + C*mean(margin.^2));
    g = theta - 2*C/M * (X' * (margin .* Y));

so the bias (the last row of ``theta``) is regularised like the weights, and ``C``
multiplies the *mean* squared margin: this is scikit-learn's
``LinearSVC(loss="squared_hinge", C=C/M, intercept_scaling=1)`` for each class.

Deviations: ``minFunc`` (L-BFGS, 100 corrections, MaxIter 1000, a Wolfe line search) is
replaced by :func:`lbfgs` here (the same two-loop recursion with 20 corrections, an Armijo
backtracking line search, which is enough for this strictly convex objective) with a
stopping test on the objective's relative decrease over the last 10 iterations (``tol``;
minFunc stops on a change under 1e-9 or 1000 iterations). ``torch.optim.LBFGS`` is not
used: its first call imports TorchDynamo, seconds of start-up. The bias is kept apart from
the weights instead of appending a column of ones to ``X`` (same objective, no copy of the
feature matrix). On CPU each evaluation reads ``X`` once, in row blocks that compute the
scores and ``Xᵀ·G`` together (:class:`_FusedObjective`), with float32 GEMMs and float64
sums. When the rows do not outnumber the features (:func:`use_span`), L-BFGS runs in the
span of the rows instead (:class:`RowSpan`: the Cholesky factor of the Gram ``XXᵀ + 1``
stands in for the features; the same problem and iterates, cheaper evaluations, one Gram
for a whole C grid). Features are standardised by :class:`Standardizer`
(``kmeans_demo.m``: ``sqrt(var + 0.01)``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..util.errors import A2Error

COATES_C = 100.0             # kmeans_demo.m: C = 100
STANDARDIZE_VAR_REG = 0.01   # kmeans_demo.m: trainXC_sd = sqrt(var(trainXC) + 0.01)
LBFGS_HISTORY = 20           # L-BFGS corrections (minFunc: 100; 20 converges in as many steps here)
MAX_ITER = 1000              # train_svm.m: MaxIter 1000, MaxFunEvals 1000
DEFAULT_TOL = 1e-5           # stop when the objective falls by < tol * (its value) per iteration,
                             # on average over the last TOL_WINDOW iterations (see L2SVM)
TOL_WINDOW = 10              # iterations the decrease is averaged over (single ones vary 10x)
GRAD_TOL = 1e-5              # minFunc's optTol: stop when max |gradient| < 1e-5


class Standardizer:
    """Per-feature ``(x − mean) / sqrt(var + 0.01)``, var unbiased; port of ``kmeans_demo.m``.

    Attributes after :meth:`fit`: ``mean_`` and ``sd_``, float32 (n_features,).
    """

    def __init__(self, var_reg: float = STANDARDIZE_VAR_REG):
        self.var_reg = var_reg

    def fit(self, features: torch.Tensor) -> "Standardizer":
        if features.dim() != 2 or features.shape[0] < 2:
            raise A2Error(f"standardisation needs a (n >= 2, d) feature matrix, got {tuple(features.shape)}")
        var, mean = torch.var_mean(features.double(), dim=0, correction=1)
        self.mean_ = mean.float()
        self.sd_ = (var + self.var_reg).sqrt().float()
        return self

    def transform(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[-1] != self.mean_.shape[0]:
            raise A2Error(f"features have {features.shape[-1]} columns, the standardiser was fit on "
                          f"{self.mean_.shape[0]}")
        return (features.float() - self.mean_.to(features.device)) / self.sd_.to(features.device)

    def fit_transform(self, features: torch.Tensor) -> torch.Tensor:
        return self.fit(features).transform(features)


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b``; on CPU through numpy's OpenBLAS, which handles these skinny shapes
    (``Xᵀ·G`` above all) better than torch's MKL path on AMD CPUs."""
    if a.device.type == "cpu" and a.dtype == b.dtype:
        return torch.from_numpy(np.matmul(a.detach().numpy(), b.detach().numpy()))
    return a @ b


def one_vs_all_targets(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """int labels 0..K−1 (M,) -> float32 (M, K) of +1 (own class) / −1 (the others)."""
    y = torch.full((labels.shape[0], n_classes), -1.0, device=labels.device)
    y.scatter_(1, labels.view(-1, 1).long(), 1.0)
    return y


def l2svm_objective(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                    c: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Coates' one-vs-all L2-SVM objective and its gradient (``my_l2svmloss``).

    Parameters
    ----------
    weight : (d, K) tensor; bias : (K,) tensor.
    x : (M, d) features; y : (M, K) targets of ±1.
    c : the SVM's C (multiplies the mean squared margin).

    Returns
    -------
    (value, grad_weight, grad_bias): a 0-dim tensor, (d, K) and (K,) tensors.
    """
    m = x.shape[0]
    scores = _matmul(x, weight).add_(bias)
    margin = (1.0 - y * scores).clamp_(min=0)
    value = 0.5 * (weight.pow(2).sum() + bias.pow(2).sum()) + c / m * margin.pow(2).sum()
    my = margin.mul_(y).mul_(-2.0 * c / m)
    grad_w = _matmul(x.t(), my).add_(weight)
    grad_b = bias + my.sum(0)
    return value, grad_w, grad_b


def _l2svm_objective_np(theta: np.ndarray, x: np.ndarray, y: np.ndarray, c: float):
    """:func:`l2svm_objective` in numpy (the simple reference of :class:`_FusedObjective`):
    ``theta`` float64 (d+1, K) with the bias as its last row, ``x`` float32 (M, d), ``y``
    float64 (M, K). The two GEMMs run in float32 through OpenBLAS."""
    m, d = x.shape
    scores = np.matmul(x, theta[:d].astype(np.float32)).astype(np.float64)
    scores += theta[d]
    margin = np.maximum(1.0 - y * scores, 0.0)
    value = 0.5 * _dot(theta, theta) + c / m * _dot(margin, margin)
    my = margin * y * (-2.0 * c / m)
    grad = theta.copy()
    grad[:d] += np.matmul(x.T, my.astype(np.float32))
    grad[d] += my.sum(0)
    return value, grad


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of ``a * b`` over all elements, off BLAS: OpenBLAS threads ``ddot`` on these
    64k-element vectors, and on a loaded machine its thread hand-off per call cost more than
    the dot product itself (it was half of the whole fit's time)."""
    return float(np.einsum("i,i->", a.ravel(), b.ravel()))


ROW_CHUNK = 256             # rows per fused block: 256 x 6,400 float32 = 6.5 MB stays in cache


class _FusedObjective:
    """:func:`l2svm_objective` on CPU, reading the feature matrix once per evaluation.

    The objective is a sum over rows, so each block of ``ROW_CHUNK`` rows computes its
    scores ``X_b·W``, margins and ``X_bᵀ·G_b`` while the block is still in cache (one pass
    over ``X`` instead of two). The blocks are tasks for worker threads
    (``torch.get_num_threads()``) running single-threaded OpenBLAS, as sklearn's k-means
    does (numpy releases the GIL); a free worker takes the next block, so a worker the
    scheduler preempts on a shared machine does not hold the others up. Each block writes
    its own partial sums, added in block order: the result does not depend on the number
    of workers. ``theta``/gradient are float64 (d+1, K) with the bias as the last row; the
    GEMMs are float32; the loss is summed in float64. Call inside
    ``threadpool_limits(1, "blas")``.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, c: float, workers: int,
                 lower_triangular: bool = False, bias: bool = True):
        self.x, self.y, self.c = x, y.astype(np.float32), c
        self.m, self.d = x.shape
        self.lower = lower_triangular   # x[i, j] = 0 for j > i: a block needs columns < hi
        self.bias = bias                # False: theta is (d, K), no bias row (it is in x)
        self.k = y.shape[1]
        self.bounds = [(lo, min(lo + ROW_CHUNK, self.m)) for lo in range(0, self.m, ROW_CHUNK)]
        self.workers = max(1, min(workers, len(self.bounds)))
        self.margin = np.empty((self.m, self.k), np.float32)
        n = len(self.bounds)
        self.part_grad = np.empty((n, self.d, self.k), np.float32)   # X_bᵀ·G_b per block
        self.part_bias = np.empty((n, self.k))
        self.part_loss = np.empty(n)
        self.evaluations = 0

    def _block(self, i, weight, bias):
        lo, hi = self.bounds[i]
        cols = hi if self.lower else self.d
        xb, yb, mb = self.x[lo:hi, :cols], self.y[lo:hi], self.margin[lo:hi]
        np.matmul(xb, weight[:cols], out=mb)
        mb += bias
        mb *= yb
        np.subtract(1.0, mb, out=mb)
        np.maximum(mb, 0.0, out=mb)
        m64 = mb.astype(np.float64)
        self.part_loss[i] = np.einsum("ij,ij->", m64, m64)
        mb *= yb
        mb *= np.float32(-2.0 * self.c / self.m)
        self.part_bias[i] = mb.sum(0, dtype=np.float64)
        np.matmul(xb.T, mb, out=self.part_grad[i, :cols])
        self.part_grad[i, cols:] = 0.0

    def __call__(self, theta: np.ndarray, pool=None):
        self.evaluations += 1
        d = self.d
        weight = np.ascontiguousarray(theta[:d], dtype=np.float32)
        bias = theta[d].astype(np.float32) if self.bias else np.zeros(self.k, np.float32)
        blocks = range(len(self.bounds))
        if pool is None or self.workers == 1:
            for i in blocks:
                self._block(i, weight, bias)
        else:
            list(pool.map(lambda i: self._block(i, weight, bias), blocks))
        grad = theta.copy()
        grad[:d] += self.part_grad.sum(0)
        if self.bias:
            grad[d] += self.part_bias.sum(0)
        value = 0.5 * _dot(theta, theta) + self.c / self.m * float(self.part_loss.sum())
        return value, grad


SPAN_MAX_ROWS = 12_000       # the row-span solver's Gram: M² float64 (1.15 GB at this size)


def _cholesky(gram: torch.Tensor, rows: int) -> torch.Tensor:
    """Lower Cholesky factor of a float64 Gram; :class:`A2Error` when it is not definite."""
    factor, info = torch.linalg.cholesky_ex(gram)
    if int(info) != 0:
        raise A2Error(f"the Gram of the {rows} rows is singular (rows linearly dependent)")
    return factor


class RowSpan:
    """The training rows' span: the Cholesky factor ``L`` of the Gram ``X̃X̃ᵀ = XXᵀ + 1 = LLᵀ``
    of the features with Coates' column of ones, ``X̃ = [X, 1]``.

    The optimum ``θ = [w; b]`` lies in the span of the rows of X̃, and for every θ there
    ``X̃θ = L·(Qᵀθ)`` and ``‖θ‖ = ‖Qᵀθ‖`` with ``Q = X̃ᵀL⁻ᵀ`` (d+1, M) orthonormal: the
    L2-SVM on X̃ (M, d+1) is the same problem as on the features L (M, M) without a bias,
    in M variables per class instead of d+1, and L-BFGS takes the same iterates in either
    (it is invariant under the orthogonal change of variables, from a start in the span).
    When M <= d an evaluation on the triangular L costs ``2M²K`` flops instead of ``4MdK``,
    and the Gram, one large GEMM at the machine's GEMM rate, is computed once for every C
    of a grid. The Gram is a float32 GEMM; its factorisation and the triangular solves that
    map θ between the two spaces are float64. (Standardised features sum to zero over the
    rows, so ``XXᵀ`` alone is singular; the column of ones makes the Gram definite.)

    Parameters
    ----------
    x : float32 (M, d) standardised features, M <= d + 1 (kept, for :meth:`weights`).

    Raises :class:`A2Error` when the Gram is not positive definite (rows of X̃ linearly
    dependent, e.g. repeated images); :class:`L2SVM` then solves on the features instead.
    """

    def __init__(self, x: torch.Tensor, *, _factor: torch.Tensor | None = None):
        self.x = x.float().contiguous()
        if _factor is None:
            gram = _matmul(self.x, self.x.t()).double().add_(1.0)
            _factor = _cholesky(gram, x.shape[0])
        self.factor = _factor                      # float64 (M, M), lower triangular
        self.l = _factor.float().contiguous()      # the features of the reduced problem

    def extend(self, x_new: torch.Tensor) -> "RowSpan":
        """The span of these rows and ``x_new`` (V, d) below them: the Gram grows by a border
        (``2VMd + 2V²d`` flops instead of ``2(M+V)²d``) and the factor by block Cholesky,
        ``L₂₁ = G₂₁L₁₁⁻ᵀ``, ``L₂₂ = chol(G₂₂ − L₂₁L₂₁ᵀ)``."""
        xn = x_new.float().contiguous().to(self.x.device)
        m, v = self.x.shape[0], xn.shape[0]
        g21 = _matmul(xn, self.x.t()).double().add_(1.0)                     # (V, M)
        l21 = torch.linalg.solve_triangular(self.factor, g21.t(), upper=False).t()
        g22 = _matmul(xn, xn.t()).double().add_(1.0)
        factor = torch.zeros(m + v, m + v, dtype=torch.float64, device=self.factor.device)
        factor[:m, :m] = self.factor
        factor[m:, :m] = l21
        factor[m:, m:] = _cholesky(g22 - l21 @ l21.t(), m + v)
        return RowSpan(torch.cat([self.x, xn]), _factor=factor)

    def coords(self, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """θ = (weight (d, K), bias (K,)) -> span coordinates ``L⁻¹X̃θ`` (M, K) float64 (exact
        for θ in the span; otherwise the span point with the same scores)."""
        scores = _matmul(self.x, weight.float().to(self.x.device).contiguous()).double()
        scores += bias.double().to(scores.device)
        return torch.linalg.solve_triangular(self.factor, scores, upper=False)

    def weights(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Span coordinates (M, K) -> θ = ``X̃ᵀL⁻ᵀc``: weight (d, K) and bias (K,) float32."""
        a = torch.linalg.solve_triangular(self.factor.t(), coords.double(), upper=True)
        return _matmul(self.x.t(), a.float().contiguous()), a.sum(0).float()


def l2svm_loss_flat(theta, x, y, c):
    """:func:`l2svm_objective` on a flat float64 numpy ``theta`` = rows of ``[weight; bias]``.

    For ``scipy.optimize`` (``check_grad``, ``minimize(jac=True)``): returns (float, ndarray).
    """
    d, k = x.shape[1], y.shape[1]
    t = torch.as_tensor(np.asarray(theta, dtype=np.float64)).view(d + 1, k)
    v, gw, gb = l2svm_objective(t[:d], t[d], x.double(), y.double(), c)
    return float(v), torch.cat([gw, gb.view(1, k)]).numpy().ravel()


@dataclass
class FitInfo:
    """What the optimiser did: objective value, evaluations, iterations."""

    objective: float
    evaluations: int
    iterations: int


ARMIJO = 1e-4               # sufficient-decrease constant of the backtracking line search


def lbfgs(fun, x0: np.ndarray, *, max_iter: int = MAX_ITER, history: int = LBFGS_HISTORY,
          tol_rel: float = 0.0, window: int = TOL_WINDOW,
          tol_grad: float = GRAD_TOL) -> tuple[np.ndarray, FitInfo]:
    """Minimise ``fun(x) -> (float value, gradient)`` by L-BFGS (Nocedal & Wright, alg. 7.4).

    ``x0`` and the gradients are float64 numpy arrays (any shape); the vector algebra is
    small and stays in numpy, off any thread pool. Backtracking (Armijo, quadratic
    interpolation) from the unit step; the first step is scaled to ``min(1, 1/‖g‖₁)`` as
    minFunc and torch's LBFGS do. Stops after ``max_iter`` iterations or objective
    evaluations, when the value fell by less than ``tol_rel·|f|`` per iteration on average
    over the last ``window`` iterations, or when ``max |g| <= tol_grad``. Pairs with
    ``sᵀy <= 0`` are skipped.
    """
    x = np.array(x0, dtype=np.float64)
    f, g = fun(x)
    evals, it = 1, 0
    mem = []  # (s, y, 1 / yᵀs), oldest first
    values = [f]
    while it < max_iter and evals < max_iter and float(np.abs(g).max()) > tol_grad:
        it += 1
        q = g.copy()
        alphas = []
        for s_i, y_i, rho in reversed(mem):
            a = rho * _dot(s_i, q)
            q -= a * y_i
            alphas.append(a)
        if mem:
            s_i, y_i, rho = mem[-1]
            q *= 1.0 / (rho * _dot(y_i, y_i))
        for (s_i, y_i, rho), a in zip(mem, reversed(alphas)):
            b = rho * _dot(y_i, q)
            q += (a - b) * s_i
        direction = -q
        gtd = _dot(g, direction)
        if gtd >= 0:  # not a descent direction (numerical trouble): restart from -g
            mem.clear()
            direction = -g
            gtd = -_dot(g, g)
        step = 1.0 if mem else min(1.0, 1.0 / float(np.abs(g).sum()))
        while True:
            x_new = x + step * direction
            f_new, g_new = fun(x_new)
            evals += 1
            if f_new <= f + ARMIJO * step * gtd or evals >= max_iter:
                break
            # minimiser of the quadratic through f, gtd and f_new, kept within [0.1, 0.5]·step
            denom = 2.0 * (f_new - f - gtd * step)
            trial = -gtd * step * step / denom if denom > 0 else 0.5 * step
            step = min(max(trial, 0.1 * step), 0.5 * step)
        s_new, y_new = x_new - x, g_new - g
        ys = _dot(s_new, y_new)
        if ys > 1e-10:
            mem.append((s_new, y_new, 1.0 / ys))
            if len(mem) > history:
                mem.pop(0)
        x, f, g = x_new, f_new, g_new
        values.append(f)
        if len(values) > window and values[-window - 1] - f <= tol_rel * window * abs(f):
            break
    return x, FitInfo(objective=f, evaluations=evals, iterations=it)


SOLVERS = ("auto", "span", "features")


def use_span(m: int, d: int) -> bool:
    """The ``"auto"`` rule: solve in the row span when the rows do not outnumber the features
    (an evaluation then costs ``2M²K`` flops on L, no more than ``4MdK`` on X, and the Gram
    is shared by a whole C grid) and the M × M Gram stays small (``SPAN_MAX_ROWS``)."""
    return m <= d + 1 and m <= SPAN_MAX_ROWS


def refit_in_span(m: int, v: int, d: int, k: int, evaluations: int) -> bool:
    """Whether the refit on m train + v val rows (d features, k classes) is cheaper in the
    grid's span grown by the val rows than on the features, if it takes ``evaluations``
    (the grid's count at the chosen C, also warm-started): the border (its Gram rows and the
    triangular solve, ``2vmd + 2v²d + m²v`` flops) plus ``2(m+v)²k`` per evaluation against
    ``4(m+v)(d+1)k``. Small Cs converge in a few evaluations, and then the features win."""
    n = m + v
    if not use_span(n, d):
        return False
    border = 2 * v * m * d + 2 * v * v * d + m * m * v
    return border + evaluations * 2 * n * n * k < evaluations * 4 * n * (d + 1) * k


def check_solver(solver: str) -> None:
    """:class:`A2Error` unless ``solver`` is one of :data:`SOLVERS`."""
    if solver not in SOLVERS:
        raise A2Error(f"solver should be one of {', '.join(SOLVERS)}, got {solver!r}")


def row_span(x: torch.Tensor, solver: str = "auto") -> RowSpan | None:
    """The :class:`RowSpan` of standardised features x for ``solver`` (see :class:`L2SVM`),
    or None to solve on the features (``"features"``, or ``"auto"`` where :func:`use_span`
    says no or the rows are linearly dependent)."""
    check_solver(solver)
    if solver == "features" or (solver == "auto" and not use_span(*x.shape)):
        return None
    try:
        return RowSpan(x)
    except A2Error:
        if solver == "span":
            raise
        return None


class L2SVM:
    """One-vs-all L2-SVM, Coates' objective, fit by full-batch L-BFGS.

    On CPU the objective is :class:`_FusedObjective` (numpy, worker threads); on other
    devices :func:`l2svm_objective` in torch. The L-BFGS algebra is numpy float64. With
    no more rows than features (:func:`use_span`) L-BFGS runs in the rows' span
    (:class:`RowSpan`: the same iterates, on the M × M Cholesky factor of the Gram instead
    of the M × d features); otherwise on the features.

    Parameters
    ----------
    C : float, default 100 (Coates).
    max_iter : int, default 1000 (``train_svm.m``); also the cap on objective evaluations.
    tol : float, default 1e-5; stop when the objective fell by less than ``tol`` times its
        value per iteration, on average over the last 10 iterations, or when the gradient's
        max-norm falls under 1e-5 (a looser rule, one iteration's change under 1e-6·C·K,
        stopped visibly short of LinearSVC's optimum, test accuracy included).
    history : int, L-BFGS corrections (default 20; minFunc uses 100, which costs more per
        step and took as many evaluations).
    solver : ``"auto"`` (default, :func:`use_span`), ``"span"`` or ``"features"``.

    Attributes after :meth:`fit`: ``coef_`` (d, K), ``intercept_`` (K,), ``classes_`` (K,),
    ``info_`` (:class:`FitInfo`), ``solver_`` (the one used).
    """

    def __init__(self, C: float = COATES_C, max_iter: int = MAX_ITER, tol: float = DEFAULT_TOL,
                 history: int = LBFGS_HISTORY, solver: str = "auto"):
        if C <= 0:
            raise A2Error(f"C={C} should be > 0")
        check_solver(solver)
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.history = history
        self.solver = solver

    def fit(self, features: torch.Tensor, labels: torch.Tensor, n_classes: int | None = None, *,
            init: "L2SVM | None" = None, span: RowSpan | None = None) -> "L2SVM":
        """features: float (M, d); labels: int (M,) in 0..K−1. Returns self.

        init : a fitted L2SVM of the same shape to start L-BFGS from (a warm start, e.g.
        the neighbouring C of a grid); None starts from zero, as ``train_svm.m``.
        span : the :class:`RowSpan` of these features, to share one Gram between fits
        (:func:`select_C`); given, the fit runs in the span whatever ``solver`` says.
        """
        if features.dim() != 2:
            raise A2Error(f"features should be (M, d), got {tuple(features.shape)}")
        if labels.shape[0] != features.shape[0]:
            raise A2Error(f"{features.shape[0]} feature rows but {labels.shape[0]} labels")
        if labels.numel() == 0:
            raise A2Error("no training examples")
        labels = labels.long().to(features.device)
        if int(labels.min()) < 0:
            raise A2Error(f"labels should be >= 0, got {int(labels.min())}")
        k = int(n_classes if n_classes is not None else int(labels.max()) + 1)
        if int(labels.max()) >= k:
            raise A2Error(f"label {int(labels.max())} >= n_classes={k}")
        x = features.float().contiguous()
        y = one_vs_all_targets(labels, k)
        m, d = x.shape
        if init is not None and tuple(init.coef_.shape) != (d, k):
            raise A2Error(f"warm start is a {tuple(init.coef_.shape)} SVM, expected ({d}, {k})")
        if span is not None and tuple(span.x.shape) != (m, d):
            raise A2Error(f"the row span is of {tuple(span.x.shape)} features, expected ({m}, {d})")
        if span is None:
            span = row_span(x, self.solver)
        self.solver_ = "span" if span is not None else "features"
        if span is not None:
            theta0 = np.zeros((m, k))
            if init is not None:
                theta0[:] = span.coords(init.coef_, init.intercept_).cpu().numpy()
            theta, info = self._lbfgs(span.l, y, theta0, span=True)
            weight, bias = span.weights(torch.from_numpy(theta).to(x.device))
        else:
            theta0 = np.zeros((d + 1, k))
            if init is not None:
                theta0[:d] = init.coef_.double().cpu().numpy()
                theta0[d] = init.intercept_.double().cpu().numpy()
            theta, info = self._lbfgs(x, y, theta0)
            theta = torch.from_numpy(theta).to(x.device, torch.float32)
            weight, bias = theta[:d], theta[d]
        self.coef_ = weight.to(x.device).clone()
        self.intercept_ = bias.to(x.device).clone()
        self.classes_ = torch.arange(k)
        self.info_ = info
        return self

    def _lbfgs(self, x, y, theta0, span=False):
        """L-BFGS on the features x (M, d') from theta0: (d'+1, K) with the bias as the last
        row, or with ``span`` (x the triangular factor of :class:`RowSpan`) (d', K), no bias."""
        d, k = x.shape[1], y.shape[1]
        options = dict(max_iter=self.max_iter, history=self.history, tol_rel=self.tol,
                       tol_grad=GRAD_TOL)
        if x.device.type == "cpu":
            objective = _FusedObjective(x.numpy(), y.numpy(), self.C, torch.get_num_threads(),
                                        lower_triangular=span, bias=not span)
            with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(objective.workers) as pool:
                return lbfgs(lambda t: objective(t, pool), theta0, **options)

        def fun(theta):
            t = torch.from_numpy(theta).to(x.device, torch.float32)
            b = t[d] if not span else torch.zeros(k, device=x.device)
            with torch.no_grad():
                v, gw, gb = l2svm_objective(t[:d], b, x, y, self.C)
            g = gw if span else torch.cat([gw, gb.view(1, k)])
            return float(v), g.double().cpu().numpy()

        return lbfgs(fun, theta0, **options)

    def decision_function(self, features: torch.Tensor) -> torch.Tensor:
        """One score per class, float32 (M, K): ``x·w_k + b_k``."""
        if features.shape[-1] != self.coef_.shape[0]:
            raise A2Error(f"features have {features.shape[-1]} columns, the SVM was fit on "
                          f"{self.coef_.shape[0]}")
        x = features.float().to(self.coef_.device)
        return torch.addmm(self.intercept_, x, self.coef_)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Class 0..K−1 of the highest score, int64 (M,)."""
        return self.decision_function(features).argmax(1)

    def state_dict(self) -> dict:
        """Tensors and settings for ``t7.save`` (Lua-readable: ``W`` is d×K, ``b`` is K)."""
        return {"W": self.coef_.cpu(), "b": self.intercept_.cpu(), "C": float(self.C)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "L2SVM":
        svm = cls(C=float(state.get("C", COATES_C)))
        svm.coef_ = torch.as_tensor(state["W"]).float()
        svm.intercept_ = torch.as_tensor(state["b"]).float().view(-1)
        svm.classes_ = torch.arange(svm.coef_.shape[1])
        return svm


@dataclass
class Classifier:
    """A standardiser and an L2-SVM fit together; ``predict``/``decision_function`` on raw features."""

    standardizer: Standardizer
    svm: L2SVM

    def decision_function(self, features: torch.Tensor) -> torch.Tensor:
        return self.svm.decision_function(self.standardizer.transform(features))

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        return self.decision_function(features).argmax(1)

    def state_dict(self) -> dict:
        """Lua table: ``{W, b, C, mean, sd}`` (scores = ((x − mean) / sd) · W + b)."""
        state = self.svm.state_dict()
        state.update({"mean": self.standardizer.mean_.cpu(), "sd": self.standardizer.sd_.cpu()})
        return state

    @classmethod
    def from_state_dict(cls, state: dict) -> "Classifier":
        for key in ("W", "b", "mean", "sd"):
            if key not in state:
                raise A2Error(f"SVM table is missing field '{key}'")
        st = Standardizer()
        st.mean_, st.sd_ = torch.as_tensor(state["mean"]).float(), torch.as_tensor(state["sd"]).float()
        return cls(st, L2SVM.from_state_dict(state))


def fit_classifier(features: torch.Tensor, labels: torch.Tensor, C: float = COATES_C,
                   n_classes: int | None = None, init: L2SVM | None = None,
                   **svm_options) -> Classifier:
    """Standardise (mean, sqrt(var + 0.01)) and fit the L2-SVM; see :class:`L2SVM`.

    init : optional fitted L2SVM to warm-start from (see :meth:`L2SVM.fit`).
    """
    st = Standardizer().fit(features)
    svm = L2SVM(C=C, **svm_options).fit(st.transform(features), labels, n_classes=n_classes,
                                        init=init)
    return Classifier(st, svm)


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction (0..1) of ``pred`` equal to ``labels`` (both int (M,))."""
    return float((pred.cpu() == labels.cpu()).float().mean())


# Log-spaced, half a decade apart, from Coates' C = 100 down three decades. C multiplies the
# mean squared hinge against ½‖w‖², so what matters is its order of magnitude: a linear grid
# would spend its points where nothing changes. At C = 100 the SVM fits 4,000 training images
# exactly and overfits; on photographs the validation accuracy peaks one to two decades
# lower and falls again towards 0.1, so the grid brackets the peak with a point on each side,
# and half-decade steps resolve it to within about a point of accuracy.
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def select_C(train_features: torch.Tensor, train_labels: torch.Tensor,
             val_features: torch.Tensor, val_labels: torch.Tensor, grid=C_GRID, *,
             n_classes: int | None = None, on_fit=None,
             **svm_options) -> tuple[float, list[dict], Classifier]:
    """Choose the SVM's C by accuracy on a validation split.

    The features are standardised once (on the training split), their :class:`RowSpan` is
    factorised once where the solver uses it, and the SVM is fit for each C of ``grid`` in
    increasing order, each fit warm-started from the solution of the C before it (a
    neighbour's optimum is close, so L-BFGS needs few steps). The C with the
    highest validation accuracy wins; ties go to the larger C (the one nearer Coates'
    setting, with the least regularisation among equals).

    Parameters
    ----------
    train_features, val_features : float (M, d) and (V, d) raw (unstandardised) features.
    train_labels, val_labels : int (M,) and (V,) in 0..K−1.
    grid : positive floats (default :data:`C_GRID`).
    n_classes : K (default: max label + 1).
    on_fit : optional ``on_fit(point)`` called with each curve point as it is done.
    svm_options : passed to :class:`L2SVM` (``tol``, ``max_iter``, ``history``, ``solver``).

    Returns
    -------
    (best_C, curve, classifier): ``curve`` is a list of dicts ``{C, train_accuracy,
    val_accuracy, objective, evaluations, seconds}`` in increasing C; ``classifier`` is
    the :class:`Classifier` (training-split standardiser, SVM) fit at ``best_C``.
    """
    return _select_C(train_features, train_labels, val_features, val_labels, grid,
                     n_classes=n_classes, on_fit=on_fit, **svm_options)[:3]


def _select_C(train_features, train_labels, val_features, val_labels, grid, *, n_classes=None,
              on_fit=None, **svm_options):
    """:func:`select_C`, returning also what a refit reuses: ``(best_C, curve, classifier,
    standardised train features, standardised val features, RowSpan or None)``."""
    import time

    grid = sorted(float(c) for c in grid)
    if not grid:
        raise A2Error("the C grid is empty")
    if grid[0] <= 0:
        raise A2Error(f"every C of the grid should be > 0, got {grid[0]}")
    if val_features.shape[0] == 0:
        raise A2Error("the validation split is empty")
    if n_classes is None:
        n_classes = int(max(int(train_labels.max()), int(val_labels.max()))) + 1
    st = Standardizer().fit(train_features)
    xtr, xval = st.transform(train_features), st.transform(val_features)
    span = row_span(xtr, svm_options.get("solver", "auto"))
    curve, svms, prev = [], {}, None
    for c in grid:
        t = time.perf_counter()
        svm = L2SVM(C=c, **svm_options).fit(xtr, train_labels, n_classes=n_classes, init=prev,
                                            span=span)
        point = {"C": c, "train_accuracy": accuracy(svm.predict(xtr), train_labels),
                 "val_accuracy": accuracy(svm.predict(xval), val_labels),
                 "objective": svm.info_.objective, "evaluations": svm.info_.evaluations,
                 "seconds": time.perf_counter() - t}
        curve.append(point)
        svms[c] = prev = svm
        if on_fit is not None:
            on_fit(point)
    best = max(curve, key=lambda p: (p["val_accuracy"], p["C"]))["C"]
    return best, curve, Classifier(st, svms[best]), xtr, xval, span


def _refit(svm: L2SVM, xtr, train_y, xval, val_y, span: RowSpan | None, evaluations: int,
           n_classes, solver: str) -> L2SVM:
    """``svm``'s C refit on standardised train + val rows, warm-started from ``svm``: in the
    grid's ``span`` grown by the val rows where :func:`refit_in_span` says it pays (or the
    solver is ``"span"``), else on the features."""
    if span is not None and (solver == "span" or refit_in_span(
            xtr.shape[0], xval.shape[0], xtr.shape[1], svm.coef_.shape[1], evaluations)):
        try:
            span = span.extend(xval)
        except A2Error:      # a val row repeats a train row: factorise afresh or not at all
            span = None
    else:
        span = None
    refit_solver = "features" if span is None and solver == "auto" else solver
    return L2SVM(C=svm.C, solver=refit_solver).fit(torch.cat([xtr, xval]),
                                                   torch.cat([train_y, val_y]),
                                                   n_classes=n_classes, init=svm, span=span)


@dataclass
class SVMFit:
    """Result of :func:`fit_svm`: the final ``classifier``; ``C`` it used; ``c_source``
    (``"val"``: chosen on the val split, ``"fixed"``: given, or Coates' C with no val split);
    ``curve`` (:func:`select_C`'s val curve, empty for a fixed C); ``val_accuracy`` (a
    fraction, of the chosen C before any refit, None without a val split); ``refit`` (the
    final classifier was refit on train + val); ``seconds`` per stage."""

    classifier: Classifier
    C: float
    c_source: str
    curve: list
    val_accuracy: float | None
    refit: bool
    seconds: dict


def fit_svm(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor | None = None,
            val_y: torch.Tensor | None = None, *, C: float | str = "auto", grid=C_GRID,
            refit: bool = True, n_classes: int | None = None, on_fit=None,
            solver: str = "auto") -> SVMFit:
    """The L2-SVM of every feature pipeline (k-means, surrogate, self-training), C resolved once.

    C : a positive float (Coates: 100), trained on the training split alone; or ``"auto"``:
        chosen on the val split by :func:`select_C` over ``grid``, and without a val split
        Coates' fixed C = 100 (``c_source`` then says ``"fixed"``).
    refit : with a C chosen on val, refit it on train + val for the final classifier
        (warm-started from the train-only fit, on features standardised with the training
        split's statistics, so the grid's Gram can grow by the val rows: done where
        :func:`refit_in_span` predicts it pays); ignored for a fixed C.
    solver : :class:`L2SVM`'s (``"auto"``: in the rows' span when rows <= features).
    """
    import time

    has_val = val_x is not None
    if has_val and val_y is None:
        raise A2Error("the val split has no labels (an extra-layout file?)")
    if isinstance(C, str):
        if C != "auto":
            raise A2Error(f"C should be a positive number or 'auto', got {C!r}")
        auto, C = has_val, COATES_C
    else:
        auto = False
    seconds, t = {}, time.perf_counter()
    if auto:
        C, curve, clf, xtr, xval, span = _select_C(train_x, train_y, val_x, val_y, grid,
                                                   n_classes=n_classes, on_fit=on_fit,
                                                   solver=solver)
        val_acc = next(p["val_accuracy"] for p in curve if p["C"] == C)
        seconds["grid"] = time.perf_counter() - t
        if refit:
            t = time.perf_counter()
            evals = next(p["evaluations"] for p in curve if p["C"] == C)
            svm = _refit(clf.svm, xtr, train_y, xval, val_y, span, evals, n_classes, solver)
            clf = Classifier(clf.standardizer, svm)
            seconds["refit"] = time.perf_counter() - t
        return SVMFit(clf, float(C), "val", curve, val_acc, bool(refit), seconds)
    clf = fit_classifier(train_x, train_y, C=C, n_classes=n_classes, solver=solver)
    val_acc = accuracy(clf.predict(val_x), val_y) if has_val else None
    seconds["svm"] = time.perf_counter() - t
    return SVMFit(clf, float(C), "fixed", [], val_acc, False, seconds)
