"""Report part 1.2: batch normalisation, forward and backward by hand, gradient-checked.

The module is :class:`luatorch_port.backprop.modules.BatchNormalization` (a port of
nn.BatchNormalization, torch/nn BatchNormalization.lua + THNN generic/BatchNormalization.c);
this module builds the check: the hand-written results against PyTorch autograd through
``torch.nn.functional.batch_norm``, against central finite differences, the full Jacobians
(port of nn.Jacobian) and, given a Torch7 file such as the oracle's ``batchnorm_part12.t7``,
against what Torch computed.

Deviations: PyTorch refuses a training batch of one sample; Torch (and the module here)
normalises it with the running statistics instead, so for that case the autograd reference
is run in evaluate mode, the path Torch takes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..util.errors import A2Error
from . import jacobian
from ..nn.layers import BN_EPS, BN_MOMENTUM
from .modules import DTYPE, BatchNormalization

FORMULAS = {
    "train": [
        "training mode, batch statistics (N > 1), per feature; g_i = dL/dy_i:",
        "mu = (1/N) sum_i x_i;  var = (1/N) sum_i (x_i - mu)^2   (biased)",
        "xhat_i = (x_i - mu) / sqrt(var + eps);  y_i = gamma * xhat_i + beta",
        "running_mean <- m * mu + (1 - m) * running_mean",
        "running_var  <- m * var * N/(N-1) + (1 - m) * running_var   (unbiased)",
        "dL/dbeta  = sum_i g_i",
        "dL/dgamma = sum_i g_i * xhat_i",
        "dL/dx_i   = gamma / (N * sqrt(var + eps)) * (N g_i - sum_k g_k - xhat_i * sum_k g_k xhat_k)",
    ],
    "evaluate": [
        "evaluate mode, running statistics (also a training batch of 1, as in Torch):",
        "xhat_i = (x_i - running_mean) / sqrt(running_var + eps);  y_i = gamma * xhat_i + beta",
        "dL/dbeta  = sum_i g_i",
        "dL/dgamma = sum_i g_i * xhat_i",
        "dL/dx_i   = gamma * g_i / sqrt(running_var + eps)",
    ],
}
MODES = ("train", "evaluate")
QUANTITIES = ("output", "gradInput", "gradWeight", "gradBias", "running_mean", "running_var")

# Default case of `a2 backprop batchnorm`: the oracle's recipe (8 x 5, columns offset by
# linspace(-2, 2, D), scale 3).
DEFAULT_BATCH = 8
DEFAULT_FEATURES = 5
# Largest --batch / --features: the finite-difference check perturbs every input element and
# runs a forward pass per perturbation, so its cost grows as (N*D)^2.
MAX_BATCH = 1024
MAX_FEATURES = 256
INPUT_SCALE = 3.0
INPUT_OFFSET = 2.0


def random_case(batch=DEFAULT_BATCH, features=DEFAULT_FEATURES, eps=BN_EPS, momentum=BN_MOMENTUM,
                affine=True, generator=None) -> dict:
    """A check case: ``input`` (N x D), ``gradOutput``, ``weight``/``bias`` (None without
    ``affine``), ``running_mean``/``running_var`` (the statistics before the forward), eps,
    momentum. All float64."""
    if not (1 <= batch <= MAX_BATCH and 1 <= features <= MAX_FEATURES):
        raise A2Error(f"batch={batch} should be in 1..{MAX_BATCH} and features={features} in "
                      f"1..{MAX_FEATURES} (the finite-difference check grows as (N*D)^2)")
    if not eps > 0 or not 0 <= momentum <= 1:
        raise A2Error(f"eps={eps} should be > 0 (F.batch_norm refuses 0 in training) and "
                      f"momentum={momentum} in [0, 1]")

    def randn(*shape):
        return torch.randn(*shape, dtype=DTYPE, generator=generator)

    x = INPUT_SCALE * randn(batch, features) + torch.linspace(-INPUT_OFFSET, INPUT_OFFSET, features, dtype=DTYPE)
    return {
        "input": x,
        "gradOutput": randn(batch, features),
        "weight": randn(features) if affine else None,
        "bias": randn(features) if affine else None,
        "running_mean": 0.5 * randn(features),
        "running_var": 0.5 + torch.rand(features, dtype=DTYPE, generator=generator),
        "eps": float(eps),
        "momentum": float(momentum),
        "expected": None,
    }


def load_case(obj, key=None, source="t7") -> dict:
    """A check case from a Torch7 record like ``batchnorm_part12.t7`` (or its ``batch1``).

    ``obj`` is the loaded table (a dict); it needs ``input``, ``gradOutput``, ``weight``,
    ``bias``, ``running_mean_before``, ``running_var_before``, ``eps``, ``momentum``; its
    ``output``, ``gradInput``, ``gradWeight``, ``gradBias``, ``running_mean``, ``running_var``
    become the expected values, for the mode of its ``module.train`` (training if absent).
    """
    where = source if key is None else f"{source}[{key!r}]"
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise A2Error(f"{source}: no case named {key!r} (keys: {_keys(obj)})")
        obj = obj[key]
    if not isinstance(obj, dict):
        raise A2Error(f"{where}: expected a table of BatchNormalization tensors, got {type(obj).__name__}")
    need = ("input", "gradOutput", "weight", "bias", "running_mean_before", "running_var_before")
    missing = [k for k in need if k not in obj]
    if missing:
        raise A2Error(f"{where}: missing field(s) {', '.join(missing)} (keys: {_keys(obj)})")
    x = _tensor(obj, "input", where)
    if x.dim() != 2:
        raise A2Error(f"{where}.input: expected N x D, got shape {tuple(x.shape)}")
    d = x.shape[1]
    case = {k: _tensor(obj, k, where, (d,)) for k in ("weight", "bias")}
    case.update(input=x, gradOutput=_tensor(obj, "gradOutput", where, tuple(x.shape)),
                running_mean=_tensor(obj, "running_mean_before", where, (d,)),
                running_var=_tensor(obj, "running_var_before", where, (d,)),
                eps=float(obj.get("eps", BN_EPS)), momentum=float(obj.get("momentum", BN_MOMENTUM)))
    module = obj.get("module")
    train = bool(module.fields.get("train", True)) if hasattr(module, "fields") else True
    shapes = {"output": tuple(x.shape), "gradInput": tuple(x.shape)}
    case["expected"] = {"mode": "train" if train else "evaluate",
                        **{q: _tensor(obj, q, where, shapes.get(q, (d,))) for q in QUANTITIES if q in obj}}
    return case


def _keys(obj):
    return ", ".join(sorted(map(str, obj))) if isinstance(obj, dict) else "none"


def _tensor(obj, key, where, shape=None):
    v = obj[key]
    if not isinstance(v, torch.Tensor) or not v.is_floating_point():
        raise A2Error(f"{where}.{key}: expected a floating-point tensor, got {type(v).__name__}")
    if shape is not None and tuple(v.shape) != shape:
        raise A2Error(f"{where}.{key}: expected shape {shape}, got {tuple(v.shape)}")
    return v.to(DTYPE).clone()


def make_module(case, train: bool) -> BatchNormalization:
    """A fresh BatchNormalization holding the case's parameters and running statistics."""
    d = case["input"].shape[1]
    affine = case["weight"] is not None
    bn = BatchNormalization(d, eps=case["eps"], momentum=case["momentum"], affine=affine)
    if affine:
        bn.weight.copy_(case["weight"])
        bn.bias.copy_(case["bias"])
    bn.running_mean = case["running_mean"].clone()
    bn.running_var = case["running_var"].clone()
    bn.train = bool(train)
    return bn


def hand_results(case, train: bool) -> dict:
    """Forward + backward by hand: the :data:`QUANTITIES` as tensors (``grad*`` None without affine)."""
    bn = make_module(case, train)
    x = case["input"].clone()
    out = bn.forward(x).clone()
    bn.zeroGradParameters()
    gi = bn.backward(x, case["gradOutput"]).clone()
    return {"output": out, "gradInput": gi,
            "gradWeight": None if bn.gradWeight is None else bn.gradWeight.clone(),
            "gradBias": None if bn.gradBias is None else bn.gradBias.clone(),
            "running_mean": bn.running_mean.clone(), "running_var": bn.running_var.clone(),
            "batch_statistics": bn.uses_batch_statistics(x)}


def autograd_results(case, batch_statistics: bool) -> dict:
    """The same quantities from ``F.batch_norm`` and autograd (PyTorch's implementation)."""
    x = case["input"].clone().requires_grad_(True)
    affine = case["weight"] is not None
    w = case["weight"].clone().requires_grad_(True) if affine else None
    b = case["bias"].clone().requires_grad_(True) if affine else None
    rm, rv = case["running_mean"].clone(), case["running_var"].clone()
    out = F.batch_norm(x, rm, rv, w, b, training=batch_statistics, momentum=case["momentum"], eps=case["eps"])
    inputs = [x] + ([w, b] if affine else [])
    grads = torch.autograd.grad(out, inputs, case["gradOutput"])
    return {"output": out.detach(), "gradInput": grads[0],
            "gradWeight": grads[1] if affine else None, "gradBias": grads[2] if affine else None,
            "running_mean": rm, "running_var": rv}


def finite_difference_results(case, train: bool, step=jacobian.PERTURBATION) -> dict:
    """gradInput, gradWeight, gradBias from central differences of the forward (``J @ g``)."""
    go = case["gradOutput"].reshape(-1)
    bn = make_module(case, train)
    x = case["input"].clone()
    res = {"gradInput": (jacobian.forward(bn, x, perturbation=step) @ go).reshape(x.shape)}
    if bn.affine:
        res["gradWeight"] = jacobian.forward(bn, x, bn.weight, perturbation=step) @ go
        res["gradBias"] = jacobian.forward(bn, x, bn.bias, perturbation=step) @ go
    return res


def jacobian_errors(case, train: bool, step=jacobian.PERTURBATION) -> dict:
    """nn.Jacobian-style max |J_fd - J_bprop| at the case's values: input, weight, bias."""
    bn = make_module(case, train)
    x = case["input"].clone()
    errs = {"input": _jac_err(bn, x, None, None, step)}
    if bn.affine:
        errs["weight"] = _jac_err(bn, x, bn.weight, bn.gradWeight, step)
        errs["bias"] = _jac_err(bn, x, bn.bias, bn.gradBias, step)
    return errs


def _jac_err(bn, x, param, dparam, step):
    fd = jacobian.forward(bn, x, param, perturbation=step)
    bp = jacobian.backward(bn, x, param, dparam)
    return float((fd - bp).abs().max())


def _err(a, b):
    if a is None or b is None:
        return None
    return float((a - b).abs().max()) if a.numel() else 0.0


def check_mode(case, mode: str) -> dict:
    """One mode's check: ``{mode, statistics, checks: [{quantity, autograd, finite_diff,
    oracle}], jacobian: {input, weight, bias}, max_error: {...}}`` (errors are max abs
    differences from the hand-written result; None where not applicable)."""
    if mode not in MODES:
        raise A2Error(f"mode {mode!r} should be one of {', '.join(MODES)}")
    train = mode == "train"
    hand = hand_results(case, train)
    batch_stats = hand["batch_statistics"]
    ref = autograd_results(case, batch_stats)
    fd = finite_difference_results(case, train)
    expected = case.get("expected")
    oracle = expected if expected is not None and expected.get("mode") == mode else None
    checks = []
    for q in QUANTITIES:
        if hand[q] is None:
            continue
        checks.append({"quantity": q, "autograd": _err(hand[q], ref[q]), "finite_diff": _err(hand[q], fd.get(q)),
                       "oracle": _err(hand[q], oracle.get(q)) if oracle else None})
    jac = jacobian_errors(case, train)
    max_error = {}
    for col in ("autograd", "finite_diff", "oracle"):
        vals = [c[col] for c in checks if c[col] is not None]
        max_error[col] = max(vals) if vals else None
    max_error["jacobian"] = max(jac.values())
    if train and not batch_stats:
        statistics = "running (a training batch of 1 takes Torch's evaluate path)"
    else:
        statistics = "batch" if batch_stats else "running"
    return {"mode": mode, "statistics": statistics, "checks": checks, "jacobian": jac, "max_error": max_error}


def batchnorm_check(case=None, modes=MODES, *, batch=DEFAULT_BATCH, features=DEFAULT_FEATURES, eps=BN_EPS,
                    momentum=BN_MOMENTUM, affine=True, generator=None, source="random") -> dict:
    """Part 1.2 check table for each of ``modes``.

    Parameters
    ----------
    case : dict, optional
        From :func:`load_case` or :func:`random_case`; default: ``random_case(batch,
        features, eps, momentum, affine, generator)``.
    modes : sequence of "train" / "evaluate"

    Returns
    -------
    dict with keys
        ``config``: ``{batch, features, eps, momentum, affine, source}``;
        ``formulas``: ``{"train": [str], "evaluate": [str]}``;
        ``modes``: list of :func:`check_mode` dicts;
        ``max_error``: ``{autograd, finite_diff, oracle, jacobian}`` over all modes (None
        where nothing was compared).
    """
    if case is None:
        case = random_case(batch, features, eps, momentum, affine, generator)
    if not modes:
        raise A2Error("no mode to check: give train and/or evaluate")
    results = [check_mode(case, m) for m in modes]
    overall = {}
    for col in ("autograd", "finite_diff", "oracle", "jacobian"):
        vals = [r["max_error"][col] for r in results if r["max_error"][col] is not None]
        overall[col] = max(vals) if vals else None
    n, d = case["input"].shape
    return {
        "config": {"batch": n, "features": d, "eps": case["eps"], "momentum": case["momentum"],
                   "affine": case["weight"] is not None, "source": source},
        "formulas": FORMULAS,
        "modes": results,
        "max_error": overall,
    }


def format_check(result: dict) -> str:
    """The text ``a2 backprop batchnorm`` prints for a :func:`batchnorm_check` result."""
    cfg = result["config"]
    lines = [f"nn.BatchNormalization({cfg['features']}, eps={cfg['eps']:g}, momentum={cfg['momentum']:g}, "
             f"affine={str(cfg['affine']).lower()}) on a {cfg['batch']} x {cfg['features']} batch "
             f"({cfg['source']})", ""]
    paths = {"train" if r["statistics"] == "batch" else "evaluate" for r in result["modes"]}
    for path in MODES:
        if path in paths:
            lines += result["formulas"][path] + [""]
    if not cfg["affine"]:
        lines += ["affine=false: gamma = 1 and beta = 0, no dL/dgamma, dL/dbeta", ""]
    fmt = "  {:<13} {:>18} {:>18} {:>18}"
    for r in result["modes"]:
        lines.append(f"mode {r['mode']}: statistics {r['statistics']}")
        lines.append(fmt.format("max |hand - .|", "autograd", "finite diff", "torch7 file"))
        for c in r["checks"]:
            lines.append(fmt.format(c["quantity"], *(_fmt(c[k]) for k in ("autograd", "finite_diff", "oracle"))))
        jac = ", ".join(f"{k} {v:.2e}" for k, v in r["jacobian"].items())
        lines.append(f"  Jacobian (nn.Jacobian, max |J_fd - J_bprop|): {jac}")
        lines.append("")
    errs = {k: v for k, v in result["max_error"].items() if v is not None}
    lines.append("max error: " + ", ".join(f"{k} {v:.2e}" for k, v in errs.items()))
    return "\n".join(lines)


def _fmt(v):
    return "-" if v is None else f"{v:.3e}"
