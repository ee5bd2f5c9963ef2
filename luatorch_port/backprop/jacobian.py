"""Finite-difference check of a hand-written backward.

Port of nn.Jacobian (torch/nn Jacobian.lua): ``forward`` builds the Jacobian by central
differences of ``updateOutput``, ``backward`` builds it row by row from ``updateGradInput``
(or ``accGradParameters``) with one-hot gradOutputs, and ``test_jacobian`` /
``test_jacobian_parameters`` return the largest absolute difference between the two.
The matrices are ``n_param x n_output`` as in Lua.

Deviations: a Lua table input or output (a Python list of tensors) is allowed and treated as
the concatenation of its tensors' elements (nn.Jacobian takes tensors only; the part 1.1 DAG
takes a table). Random values come from an optional ``torch.Generator`` instead of Torch's
global RNG. Everything is float64.
"""

from __future__ import annotations

import torch

from ..util.errors import A2Error

# nn.Jacobian defaults (Jacobian.lua): perturbation 1e-6, inputs drawn uniform in [-2, 2].
PERTURBATION = 1e-6
MIN_VALUE = -2.0
MAX_VALUE = 2.0


def _leaves(x):
    if isinstance(x, (list, tuple)):
        out = []
        for v in x:
            out += _leaves(v)
        return out
    if not isinstance(x, torch.Tensor):
        raise A2Error(f"Jacobian: expected a tensor or a table of tensors, got {type(x).__name__}")
    return [x]


def _flat(x) -> torch.Tensor:
    """A new 1-D float64 tensor holding every element of ``x`` (tensor or table)."""
    return torch.cat([t.detach().reshape(-1).to(torch.float64) for t in _leaves(x)])


def _numel(x) -> int:
    return sum(t.numel() for t in _leaves(x))


def _locate(leaves, i):
    for t in leaves:
        if i < t.numel():
            return t.view(-1), i
        i -= t.numel()
    raise IndexError(i)


def _one_hot_like(x, i):
    """A zero structure shaped like ``x`` (tensor or table) with a 1 at flat position ``i``."""
    z = [torch.zeros_like(t) for t in _leaves(x)]
    flat, j = _locate(z, i)
    flat[j] = 1.0
    return _rebuild(x, iter(z))


def _rebuild(x, it):
    if isinstance(x, (list, tuple)):
        return [_rebuild(v, it) for v in x]
    return next(it)


def _check_writable(param):
    for t in _leaves(param):
        if not t.is_contiguous():
            raise A2Error(f"Jacobian: the perturbed tensor must be contiguous, got strides {t.stride()}")


def backward(module, input, param=None, dparam=None) -> torch.Tensor:
    """Jacobian from the module's backward: ``n_param x n_output`` (float64).

    Row ``i`` is d output / d param[i]; column ``j`` comes from one backward call with
    gradOutput = e_j. Without ``param`` it is d output / d input (from ``updateGradInput``);
    with ``param``/``dparam`` (e.g. ``module.weight``/``module.gradWeight``) the columns are
    read from ``dparam`` after ``zeroGradParameters`` + ``accGradParameters``.
    """
    target = input if param is None else param
    output = module.forward(input)
    jac = torch.zeros(_numel(target), _numel(output), dtype=torch.float64)
    for j in range(jac.shape[1]):
        dout = _one_hot_like(output, j)
        module.zeroGradParameters()
        din = module.updateGradInput(input, dout)
        module.accGradParameters(input, dout)
        jac[:, j] = _flat(din if param is None else dparam)
    return jac


def forward(module, input, param=None, perturbation=PERTURBATION) -> torch.Tensor:
    """Jacobian by central differences of ``module.forward``: ``n_param x n_output`` (float64).

    Each element of ``param`` (default: ``input``) is moved by -/+ ``perturbation`` in place
    and restored.
    """
    target = input if param is None else param
    _check_writable(target)
    leaves = _leaves(target)
    n_out = _numel(module.forward(input))
    jac = torch.zeros(_numel(target), n_out, dtype=torch.float64)
    for i in range(jac.shape[0]):
        flat, k = _locate(leaves, i)
        orig = flat[k].item()
        flat[k] = orig - perturbation
        outa = _flat(module.forward(input))
        flat[k] = orig + perturbation
        outb = _flat(module.forward(input))
        flat[k] = orig
        jac[i] = (outb - outa) / (2 * perturbation)
    return jac


def _randomize(x, minval, maxval, generator):
    for t in _leaves(x):
        _check_writable(t)
        t.copy_(torch.rand(t.shape, dtype=torch.float64, generator=generator) * (maxval - minval) + minval)


def test_jacobian(module, input, minval=MIN_VALUE, maxval=MAX_VALUE, perturbation=PERTURBATION,
                  generator=None, randomize=True) -> float:
    """Max |finite-difference Jacobian - backward Jacobian| with respect to the input.

    As in Lua, ``input`` is first refilled in place with uniform values in [minval, maxval]
    (pass ``randomize=False`` to keep it).
    """
    if randomize:
        _randomize(input, minval, maxval, generator)
    jac_fprop = forward(module, input, perturbation=perturbation)
    jac_bprop = backward(module, input)
    return float((jac_fprop - jac_bprop).abs().max()) if jac_fprop.numel() else 0.0


def test_jacobian_parameters(module, input, param, dparam, minval=MIN_VALUE, maxval=MAX_VALUE,
                             perturbation=PERTURBATION, generator=None, randomize=True) -> float:
    """Max |finite-difference - backward| Jacobian with respect to a parameter tensor.

    As in Lua, ``input`` and ``param`` are refilled with uniform values first (``randomize``).
    """
    if randomize:
        _randomize(input, minval, maxval, generator)
        _randomize(param, minval, maxval, generator)
    jac_bprop = backward(module, input, param, dparam)
    jac_fprop = forward(module, input, param, perturbation=perturbation)
    return float((jac_fprop - jac_bprop).abs().max()) if jac_fprop.numel() else 0.0


test_jacobian.__test__ = False  # not pytest tests, despite the Lua names
test_jacobian_parameters.__test__ = False
