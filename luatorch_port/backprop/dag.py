"""Report part 1.1: backpropagation through the DAG x1, x2 -> sigmoid -> min, max -> sum.

Port of the DAG in the t7 oracle's ``make_dag_bn_optim.lua`` (no nngraph)::

    net = nn.Sequential()
    net:add(nn.ParallelTable():add(nn.Sigmoid()):add(nn.Sigmoid()))
    net:add(nn.ConcatTable():add(nn.CMinTable()):add(nn.CMaxTable()))
    net:add(nn.CAddTable())

Since min(s1, s2) + max(s1, s2) = s1 + s2, y = sigma(x1) + sigma(x2) and

    dE/dx_i = dE/dy * sigma(x_i) (1 - sigma(x_i)) = dE/dy * e^{-x_i} / (1 + e^{-x_i})^2.

The report's eq. 1.3 prints (1 + e^{x_i})^2 in the denominator: a sign typo; that
expression equals e^{-2 x_i} sigma'(x_i), not the derivative.

Deviations: none from Torch. On a tie (s1 == s2 exactly) Torch's CMinTable and CMaxTable
both send the whole gradient to the FIRST input, so dx1 = 2 dE/dy sigma'(x1) and dx2 = 0;
the sum dx1 + dx2 is the closed form's. PyTorch autograd through ``torch.minimum`` /
``torch.maximum`` splits a tie 50/50, which here gives each input the closed form.
"""

from __future__ import annotations

import torch

from ..util.errors import A2Error
from .jacobian import PERTURBATION
from .modules import DTYPE, CAddTable, CMaxTable, CMinTable, ConcatTable, ParallelTable, Sequential, Sigmoid

FORMULA = "dE/dx_i = dE/dy * sigma(x_i) * (1 - sigma(x_i)) = dE/dy * exp(-x_i) / (1 + exp(-x_i))^2"
TYPO_NOTE = ("The report's eq. 1.3 has a sign typo: its denominator (1 + e^{x_i})^2 should be "
             "(1 + e^{-x_i})^2.")
TIE_RULE = ("Ties (sigma(x1) == sigma(x2)): Torch's CMinTable/CMaxTable send the whole gradient to the "
            "first input (dx1 = 2 dE/dy sigma'(x1), dx2 = 0); autograd splits it 50/50. "
            "The sum dx1 + dx2 is the same either way.")

# Defaults of `a2 backprop dag`: an ordinary pair, mixed signs, an exact tie, a pair whose
# sigmoids round to 1 (30, 40: not a tie in float64, 40 gives exactly 1.0) and a symmetric pair.
DEFAULT_X1 = (1.0, -0.5, 0.5, 30.0, 3.0)
DEFAULT_X2 = (-2.0, 0.25, 0.5, 40.0, -3.0)
DEFAULT_GRAD_OUTPUT = (1.0,)

METHODS = ("hand", "closed_form", "finite_diff", "autograd")


def build_dag() -> Sequential:
    """The part 1.1 network, composed as in ``dag_backprop.t7`` (input: the table {x1, x2})."""
    return Sequential(
        ParallelTable(Sigmoid(), Sigmoid()),
        ConcatTable(CMinTable(), CMaxTable()),
        CAddTable(),
    )


def closed_form_grad(x: torch.Tensor, grad_output: torch.Tensor) -> torch.Tensor:
    """``grad_output * e^{-x} / (1 + e^{-x})^2``, evaluated as e^{-|x|}/(1 + e^{-|x|})^2.

    The expression is even in x, so using |x| changes nothing mathematically and cannot
    overflow for large negative x.
    """
    e = torch.exp(-x.abs())
    return grad_output * e / (1.0 + e) ** 2


def hand_backward(x1, x2, grad_output, net=None):
    """Hand-written forward and backward of the DAG: ``(y, dx1, dx2, s1, s2)``."""
    net = net or build_dag()
    y = net.forward([x1, x2]).clone()
    dx1, dx2 = (g.clone() for g in net.backward([x1, x2], grad_output))
    s1, s2 = (s.clone() for s in net.modules[0].output)
    return y, dx1, dx2, s1, s2


def finite_difference(x1, x2, grad_output, step=PERTURBATION, net=None):
    """Central differences of ``grad_output * y`` (each element of y depends on its own x only)."""
    net = net or build_dag()

    def y(a, b):
        return net.forward([a, b]).clone()

    dx1 = grad_output * (y(x1 + step, x2) - y(x1 - step, x2)) / (2 * step)
    dx2 = grad_output * (y(x1, x2 + step) - y(x1, x2 - step)) / (2 * step)
    return dx1, dx2


def autograd_backward(x1, x2, grad_output):
    """PyTorch autograd through sigmoid -> minimum/maximum -> add (ties split 50/50)."""
    a = x1.detach().clone().requires_grad_(True)
    b = x2.detach().clone().requires_grad_(True)
    s1, s2 = torch.sigmoid(a), torch.sigmoid(b)
    y = torch.minimum(s1, s2) + torch.maximum(s1, s2)
    dx1, dx2 = torch.autograd.grad(y, (a, b), grad_output)
    return dx1.detach(), dx2.detach()


def _as_vectors(x1s, x2s, grad_outputs):
    vals = [torch.as_tensor(list(v) if not isinstance(v, torch.Tensor) else v, dtype=DTYPE).reshape(-1)
            for v in (x1s, x2s, grad_outputs)]
    n = max(v.numel() for v in vals)
    names = ("x1", "x2", "grad_output")
    out = []
    for name, v in zip(names, vals):
        if v.numel() == 0:
            raise A2Error(f"{name}: no values given")
        if v.numel() not in (1, n):
            raise A2Error(f"{name} has {v.numel()} values; expected 1 or {n} (as many as the longest list)")
        if not torch.isfinite(v).all():
            raise A2Error(f"{name}: every value must be finite, got {v.tolist()}")
        out.append(v.expand(n).clone())
    return out


def load_case(obj, source="t7") -> dict:
    """``{x1, x2, grad_output, expected: {y, dx1, dx2}}`` from a Torch7 record like
    ``dag_backprop.t7`` (a table with 1-D ``x1``, ``x2``, ``gradOutput``, ``y``, ``dx1``, ``dx2``)."""
    if not isinstance(obj, dict):
        raise A2Error(f"{source}: expected a table with x1, x2, gradOutput, got {type(obj).__name__}")
    need = ("x1", "x2", "gradOutput", "y", "dx1", "dx2")
    missing = [k for k in need if k not in obj]
    if missing:
        raise A2Error(f"{source}: missing field(s) {', '.join(missing)} (keys: {', '.join(sorted(map(str, obj)))})")
    vals = {}
    for k in need:
        v = obj[k]
        if not isinstance(v, torch.Tensor) or not v.is_floating_point() or v.dim() != 1:
            raise A2Error(f"{source}.{k}: expected a 1-D floating-point tensor, got "
                          f"{getattr(v, 'shape', type(v).__name__)}")
        if v.shape != obj["x1"].shape:
            raise A2Error(f"{source}.{k}: expected {obj['x1'].numel()} values like x1, got {v.numel()}")
        vals[k] = v.to(DTYPE).clone()
    return {"x1": vals["x1"], "x2": vals["x2"], "grad_output": vals["gradOutput"],
            "expected": {k: vals[k] for k in ("y", "dx1", "dx2")}}


def dag_table(x1s=DEFAULT_X1, x2s=DEFAULT_X2, grad_outputs=DEFAULT_GRAD_OUTPUT, step=PERTURBATION,
              expected=None) -> dict:
    """Part 1.1 check table: hand-written backward, closed form, finite differences, autograd.

    Parameters
    ----------
    x1s, x2s, grad_outputs : sequences of float (or 1-D tensors)
        One row per position; a sequence of length 1 is repeated to the longest one.
    step : float
        Central-difference step.
    expected : dict, optional
        Torch7's ``{y, dx1, dx2}`` for these inputs (from :func:`load_case`): each row then
        has ``torch7: {y, dx1, dx2}`` and ``max_error`` an ``oracle`` entry (max |hand -
        torch7| over y, dx1, dx2 of every row, ties included).

    Returns
    -------
    dict with keys
        ``formula``, ``typo_note``, ``tie_rule`` (str); ``finite_diff_step`` (float);
        ``rows``: list of dicts ``{x1, x2, grad_output, s1, s2, y, tie (bool),
        dx1: {hand, closed_form, finite_diff, autograd}, dx2: {...}, sum: {...}}``
        (``sum`` = dx1 + dx2 per method);
        ``max_error``: ``{closed_form, finite_diff, autograd}``, each the largest
        |hand - method| over dx1 and dx2 of the non-tie rows and over ``sum`` of all rows;
        ``max_error_per_input_at_ties``: the same per-input difference on tie rows only (the
        tie rule's effect; 0.0 when there is no tie); ``n_ties`` (int).
    """
    x1, x2, go = _as_vectors(x1s, x2s, grad_outputs)
    net = build_dag()
    y, h1, h2, s1, s2 = hand_backward(x1, x2, go, net)
    grads = {
        "hand": (h1, h2),
        "closed_form": (closed_form_grad(x1, go), closed_form_grad(x2, go)),
        "finite_diff": finite_difference(x1, x2, go, step, net),
        "autograd": autograd_backward(x1, x2, go),
    }
    tie = s1 == s2
    rows = []
    for i in range(x1.numel()):
        row = {"x1": x1[i].item(), "x2": x2[i].item(), "grad_output": go[i].item(),
               "s1": s1[i].item(), "s2": s2[i].item(), "y": y[i].item(), "tie": bool(tie[i])}
        for k, key in enumerate(("dx1", "dx2")):
            row[key] = {m: grads[m][k][i].item() for m in METHODS}
        row["sum"] = {m: grads[m][0][i].item() + grads[m][1][i].item() for m in METHODS}
        if expected is not None:
            row["torch7"] = {k: expected[k][i].item() for k in ("y", "dx1", "dx2")}
        rows.append(row)
    max_error, at_ties = {}, 0.0
    for m in METHODS[1:]:
        err = 0.0
        for row in rows:
            per_input = max(abs(row[k]["hand"] - row[k][m]) for k in ("dx1", "dx2"))
            if row["tie"]:
                at_ties = max(at_ties, per_input)
            else:
                err = max(err, per_input)
            err = max(err, abs(row["sum"]["hand"] - row["sum"][m]))
        max_error[m] = err
    if expected is not None:
        if expected["y"].numel() != x1.numel():
            raise A2Error(f"expected values: {expected['y'].numel()} rows, but {x1.numel()} inputs")
        max_error["oracle"] = max(float((a - expected[k]).abs().max()) for a, k in ((y, "y"), (h1, "dx1"), (h2, "dx2")))
    return {
        "formula": FORMULA,
        "typo_note": TYPO_NOTE,
        "tie_rule": TIE_RULE,
        "finite_diff_step": step,
        "rows": rows,
        "n_ties": int(tie.sum()),
        "max_error": max_error,
        "max_error_per_input_at_ties": at_ties,
    }


def format_table(result: dict) -> str:
    """The table ``a2 backprop dag`` prints for a :func:`dag_table` result."""
    oracle = "oracle" in result["max_error"]
    head = ("x1", "x2", "dE/dy", "y", "input", "hand", "closed form", "finite diff", "autograd") + (
        ("torch7 file",) if oracle else ())
    lines = [f"y = min(s1, s2) + max(s1, s2) = s1 + s2,  s_i = sigma(x_i)", result["formula"],
             f"note: {result['typo_note']}", ""]
    fmt = "{:>9} {:>9} {:>9} {:>10}  {:<6} {:>14} {:>14} {:>14} {:>14}" + (" {:>14}" if oracle else "")
    lines.append(fmt.format(*head))
    for row in result["rows"]:
        first = True
        for key in ("dx1", "dx2", "sum"):
            lead = ((_g(row["x1"]), _g(row["x2"]), _g(row["grad_output"]), _g(row["y"])) if first
                    else ("", "", "", ""))
            label = key + ("*" if row["tie"] and key != "sum" else "")
            extra = ()
            if oracle:
                extra = (_e(row["torch7"][key]) if key in row["torch7"] else "",)
            lines.append(fmt.format(*lead, label, *(_e(row[key][m]) for m in METHODS), *extra))
            first = False
    lines.append("")
    errs = result["max_error"]
    lines.append("max |hand - method| (per input off ties, sum everywhere): "
                 + ", ".join(f"{m} {errs[m]:.2e}" for m in METHODS[1:]))
    if oracle:
        lines.append(f"max |hand - torch7 file| (y, dx1, dx2, every row): {errs['oracle']:.2e}")
    if result["n_ties"]:
        lines.append(f"* tie ({result['n_ties']} row(s)): {result['tie_rule']} "
                     f"Per-input difference at ties: {result['max_error_per_input_at_ties']:.3e}.")
    return "\n".join(lines)


def _g(v):
    return f"{v:.6g}"


def _e(v):
    return "0" if v == 0 else f"{v:.6e}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.10f}"

