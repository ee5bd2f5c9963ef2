"""Port of Coates' ``train_svm.m`` (kmeans_demo): one-vs-all L2-SVM (squared hinge), L-BFGS.

MATLAB (``my_l2svmloss``), with ``X`` the standardised features plus a column of ones::

    Y = 2*(y == 1:K) - 1;                       % (M, K) of ±1
    margin = max(0, 1 - Y .* (X*theta));
    loss = sum(0.5 * sum(theta.^2) + C*mean(margin.^2));
    g = theta - 2*C/M * (X' * (margin .* Y));

so the bias (the last row of ``theta``) is regularised like the weights, and ``C``
multiplies the *mean* squared margin: this is scikit-learn's
``LinearSVC(loss="squared_hinge", C=C/M, intercept_scaling=1)`` for each class.

Deviations: ``minFunc`` (L-BFGS, 100 corrections, MaxIter 1000) is replaced by
``torch.optim.LBFGS`` with a strong-Wolfe line search and a relative stopping test on the
objective (``tol``). The bias is kept apart from the weights instead of appending a column
of ones to ``X`` (same objective, no copy of the feature matrix). Features are
standardised by :class:`Standardizer` (``kmeans_demo.m``: ``sqrt(var + 0.01)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import A2Error

COATES_C = 100.0             # kmeans_demo.m: C = 100
STANDARDIZE_VAR_REG = 0.01   # kmeans_demo.m: trainXC_sd = sqrt(var(trainXC) + 0.01)
LBFGS_HISTORY = 100          # minFunc's default number of L-BFGS corrections
MAX_ITER = 1000              # train_svm.m: MaxIter 1000, MaxFunEvals 1000
DEFAULT_TOL = 1e-7           # stop when the objective changes by < tol * (its value at 0)
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
    """``a @ b``; on CPU through numpy's OpenBLAS, several times faster than torch's MKL
    path for these skinny shapes (``Xᵀ·G`` above all) on the project's AMD CPUs."""
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


class L2SVM:
    """One-vs-all L2-SVM, Coates' objective, fit by full-batch L-BFGS in torch.

    Parameters
    ----------
    C : float, default 100 (Coates).
    max_iter : int, default 1000 (``train_svm.m``); also the cap on objective evaluations.
    tol : float, default 1e-7; stop when the objective changes by less than ``tol`` times
        its value at zero (``C·K``), or the gradient's max-norm falls under 1e-5.
    history : int, L-BFGS corrections (default 100, as minFunc).

    Attributes after :meth:`fit`: ``coef_`` (d, K), ``intercept_`` (K,), ``classes_`` (K,),
    ``info_`` (:class:`FitInfo`).
    """

    def __init__(self, C: float = COATES_C, max_iter: int = MAX_ITER, tol: float = DEFAULT_TOL,
                 history: int = LBFGS_HISTORY):
        if C <= 0:
            raise A2Error(f"C={C} should be > 0")
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.history = history

    def fit(self, features: torch.Tensor, labels: torch.Tensor, n_classes: int | None = None) -> "L2SVM":
        """features: float (M, d); labels: int (M,) in 0..K−1. Returns self."""
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
        weight = torch.zeros(x.shape[1], k, device=x.device, requires_grad=True)
        bias = torch.zeros(k, device=x.device, requires_grad=True)
        # At theta = 0 every margin is 1, so the objective starts at C·K: tol is relative to it.
        start = self.C * k
        opt = torch.optim.LBFGS([weight, bias], lr=1, max_iter=self.max_iter, max_eval=self.max_iter,
                                tolerance_grad=GRAD_TOL, tolerance_change=self.tol * start,
                                history_size=self.history, line_search_fn="strong_wolfe")
        state = {"evals": 0, "last": None}

        def closure():
            with torch.no_grad():
                v, gw, gb = l2svm_objective(weight, bias, x, y, self.C)
            weight.grad, bias.grad = gw, gb
            state["evals"] += 1
            state["last"] = float(v)
            return v

        opt.step(closure)
        st = opt.state[opt._params[0]]
        self.coef_ = weight.detach()
        self.intercept_ = bias.detach()
        self.classes_ = torch.arange(k)
        self.info_ = FitInfo(objective=float(state["last"]), evaluations=state["evals"],
                             iterations=int(st.get("n_iter", 0)))
        return self

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
