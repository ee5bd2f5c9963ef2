"""Lua-style nn modules with hand-written forward and backward, for report part 1.

Port of the torch/nn (commit 8726825) modules the report's part 1 is made of:
``nn.Module`` (Module.lua), ``nn.Sigmoid`` (Sigmoid.lua + THNN generic/Sigmoid.c),
``nn.CMinTable`` / ``nn.CMaxTable`` / ``nn.CAddTable``, the containers ``nn.Sequential``,
``nn.ParallelTable`` and ``nn.ConcatTable``, and ``nn.BatchNormalization``
(BatchNormalization.lua + THNN generic/BatchNormalization.c).

Each module keeps Lua's protocol: ``updateOutput(input)``, ``updateGradInput(input,
gradOutput)``, ``accGradParameters(input, gradOutput, scale)``, ``forward``/``backward``,
``zeroGradParameters``, ``parameters``, ``training``/``evaluate``, and the fields ``output``,
``gradInput``, ``train``. A Lua table input ``{x1, x2}`` is a Python list. Nothing here uses
autograd: every gradient is written out by hand so it can be checked against autograd and
finite differences (see :mod:`luatorch_port.backprop.jacobian`).

Deviations: none on purpose in the arithmetic (float64 throughout; the operation order of the
THNN kernels is kept where it matters for the last bits). ``BatchNormalization`` accepts only
1-D (one sample) or 2-D N x D input, as nn.BatchNormalization does (use a spatial variant for
images; not needed by part 1). Modules are plain Python objects, not ``torch.nn.Module``.
"""

from __future__ import annotations

import torch

from .. import nn as lnn
from ..nn.layers import BN_EPS, BN_MOMENTUM
from ..util.errors import A2Error

DTYPE = torch.float64


class Module:
    """Port of nn.Module (torch/nn Module.lua): the forward/backward protocol."""

    def __init__(self):
        self.output = torch.empty(0, dtype=DTYPE)
        self.gradInput = torch.empty(0, dtype=DTYPE)
        self.train = True

    # -- the Lua protocol -------------------------------------------------------------
    def updateOutput(self, input):  # noqa: N802 (Lua names on purpose)
        raise NotImplementedError

    def updateGradInput(self, input, gradOutput):  # noqa: N802
        raise NotImplementedError

    def accGradParameters(self, input, gradOutput, scale=1.0):  # noqa: N802
        """Accumulate ``scale`` x dE/dparameters into ``grad*`` fields (no-op without parameters)."""

    def forward(self, input):
        return self.updateOutput(input)

    def backward(self, input, gradOutput, scale=1.0):
        self.updateGradInput(input, gradOutput)
        self.accGradParameters(input, gradOutput, scale)
        return self.gradInput

    def parameters(self):
        """``(params, gradParams)``: two lists of tensors, as Lua's ``parameters()``."""
        return [], []

    def zeroGradParameters(self):  # noqa: N802
        for g in self.parameters()[1]:
            g.zero_()

    def training(self):
        self.train = True
        return self

    def evaluate(self):
        self.train = False
        return self

    @property
    def class_name(self) -> str:
        return "nn." + type(self).__name__

    def __repr__(self):
        return self.class_name


class Sigmoid(Module):
    """Port of nn.Sigmoid (torch/nn Sigmoid.lua, THNN generic/Sigmoid.c).

    ``output = 1 / (1 + exp(-x))``; ``gradInput = gradOutput * (1 - output) * output``.
    """

    def updateOutput(self, input):  # noqa: N802
        self.output = 1.0 / (1.0 + torch.exp(-input))
        return self.output

    def updateGradInput(self, input, gradOutput):  # noqa: N802
        z = self.output
        self.gradInput = gradOutput * (1.0 - z) * z
        return self.gradInput


class _CompareTable(Module):
    """Shared body of nn.CMinTable / nn.CMaxTable: elementwise min/max of a table of tensors.

    The winner index starts at 1 and moves to input ``i`` only where ``input[i]`` is
    *strictly* better, so a tie keeps the *first* input, and backward routes the whole
    gradient to the index that won (``minIdx``/``maxIdx`` in the Lua source).
    """

    _better = None  # torch.lt or torch.gt

    def __init__(self):
        super().__init__()
        self.gradInput = []
        self.index = torch.empty(0, dtype=torch.int64)  # 0-based winner per element

    def updateOutput(self, input):  # noqa: N802
        _check_table(input, self.class_name)
        self.output = input[0].clone()
        self.index = torch.zeros(input[0].shape, dtype=torch.int64, device=input[0].device)
        for i in range(1, len(input)):
            mask = type(self)._better(input[i], self.output)
            self.index[mask] = i
            self.output[mask] = input[i][mask]
        return self.output

    def updateGradInput(self, input, gradOutput):  # noqa: N802
        zero = torch.zeros((), dtype=gradOutput.dtype, device=gradOutput.device)
        self.gradInput = [torch.where(self.index == i, gradOutput, zero) for i in range(len(input))]
        return self.gradInput


class CMinTable(_CompareTable):
    """Port of nn.CMinTable (torch/nn CMinTable.lua): elementwise min; ties go to the first input."""

    _better = staticmethod(torch.lt)


class CMaxTable(_CompareTable):
    """Port of nn.CMaxTable (torch/nn CMaxTable.lua): elementwise max; ties go to the first input."""

    _better = staticmethod(torch.gt)


class CAddTable(Module):
    """Port of nn.CAddTable (torch/nn CAddTable.lua): sum of a table; each input gets gradOutput."""

    def __init__(self):
        super().__init__()
        self.gradInput = []

    def updateOutput(self, input):  # noqa: N802
        _check_table(input, self.class_name)
        self.output = input[0].clone()
        for x in input[1:]:
            self.output = self.output + x
        return self.output

    def updateGradInput(self, input, gradOutput):  # noqa: N802
        self.gradInput = [gradOutput.clone() for _ in input]
        return self.gradInput


class Container(Module):
    """Port of nn.Container (torch/nn Container.lua): holds ``modules``, recurses the protocol."""

    def __init__(self, *modules):
        super().__init__()
        self.modules = list(modules)

    def add(self, module):
        self.modules.append(module)
        return self

    def parameters(self):
        params, grads = [], []
        for m in self.modules:
            p, g = m.parameters()
            params += p
            grads += g
        return params, grads

    def training(self):
        super().training()
        for m in self.modules:
            m.training()
        return self

    def evaluate(self):
        super().evaluate()
        for m in self.modules:
            m.evaluate()
        return self

    def __repr__(self):
        inner = ", ".join(repr(m) for m in self.modules)
        return f"{self.class_name}({inner})"


class Sequential(Container):
    """Port of nn.Sequential (torch/nn Sequential.lua): a chain; backward runs it in reverse."""

    def updateOutput(self, input):  # noqa: N802
        current = input
        for m in self.modules:
            current = m.updateOutput(current)
        self.output = current
        return current

    def _inputs(self, input):
        return [input] + [m.output for m in self.modules[:-1]]

    def updateGradInput(self, input, gradOutput):  # noqa: N802
        current = gradOutput
        for m, x in reversed(list(zip(self.modules, self._inputs(input)))):
            current = m.updateGradInput(x, current)
        self.gradInput = current
        return current

    def accGradParameters(self, input, gradOutput, scale=1.0):  # noqa: N802
        current = gradOutput
        for m, x in reversed(list(zip(self.modules, self._inputs(input)))):
            m.accGradParameters(x, current, scale)
            current = m.gradInput

    def backward(self, input, gradOutput, scale=1.0):
        current = gradOutput
        for m, x in reversed(list(zip(self.modules, self._inputs(input)))):
            current = m.backward(x, current, scale)
        self.gradInput = current
        return current


class ParallelTable(Container):
    """Port of nn.ParallelTable (torch/nn ParallelTable.lua): module ``i`` gets ``input[i]``."""

    def updateOutput(self, input):  # noqa: N802
        _check_table(input, self.class_name, len(self.modules))
        self.output = [m.updateOutput(x) for m, x in zip(self.modules, input)]
        return self.output

    def updateGradInput(self, input, gradOutput):  # noqa: N802
        self.gradInput = [m.updateGradInput(x, g) for m, x, g in zip(self.modules, input, gradOutput)]
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):  # noqa: N802
        for m, x, g in zip(self.modules, input, gradOutput):
            m.accGradParameters(x, g, scale)

    def backward(self, input, gradOutput, scale=1.0):
        self.gradInput = [m.backward(x, g, scale) for m, x, g in zip(self.modules, input, gradOutput)]
        return self.gradInput


class ConcatTable(Container):
    """Port of nn.ConcatTable (torch/nn ConcatTable.lua): every module gets the same input.

    Backward sums the modules' gradInputs (elementwise per table entry for a table input),
    in module order: copy the first, add the others.
    """

    def updateOutput(self, input):  # noqa: N802
        self.output = [m.updateOutput(input) for m in self.modules]
        return self.output

    def _sum(self, grads):
        total = _clone(grads[0])
        for g in grads[1:]:
            total = _add(total, g)
        self.gradInput = total
        return total

    def updateGradInput(self, input, gradOutput):  # noqa: N802
        return self._sum([m.updateGradInput(input, g) for m, g in zip(self.modules, gradOutput)])

    def accGradParameters(self, input, gradOutput, scale=1.0):  # noqa: N802
        for m, g in zip(self.modules, gradOutput):
            m.accGradParameters(input, g, scale)

    def backward(self, input, gradOutput, scale=1.0):
        return self._sum([m.backward(input, g, scale) for m, g in zip(self.modules, gradOutput)])


class BatchNormalization(Module):
    """Port of nn.BatchNormalization (torch/nn BatchNormalization.lua, THNN
    generic/BatchNormalization.c) for N x D input, forward and backward by hand.

    Parameters
    ----------
    nOutput : int
        D, the number of features.
    eps : float
        Added to the variance (1e-5, Lua's default; the course starter used 1e-3).
    momentum : float
        Running-average factor: ``running = momentum * batch + (1 - momentum) * running``.
    affine : bool
        Learn ``weight`` (gamma) and ``bias`` (beta); Lua initialises them uniform [0, 1) and 0.
    generator : torch.Generator, optional
        For the ``weight`` initialisation.

    Training mode (``train`` and N > 1) normalises with the batch mean and the *biased*
    variance, keeps ``save_mean`` and ``save_std`` (which, as in THNN, holds the inverse
    standard deviation ``1/sqrt(var + eps)``), and updates ``running_mean`` and
    ``running_var`` with the *unbiased* variance. Evaluate mode normalises with the running
    statistics and changes nothing.

    Deviations: none on purpose. Like Torch (``train and input:size(1) > 1`` in
    BatchNormalization.lua), a training batch of ONE sample silently takes the evaluate path
    (running statistics, no update), forward and backward; PyTorch raises instead.
    """

    def __init__(self, nOutput, eps=BN_EPS, momentum=BN_MOMENTUM, affine=True, generator=None):
        super().__init__()
        if int(nOutput) < 1:
            raise A2Error(f"BatchNormalization: nOutput={nOutput} should be >= 1")
        self.nOutput = int(nOutput)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = bool(affine)
        self.running_mean = torch.zeros(self.nOutput, dtype=DTYPE)
        self.running_var = torch.ones(self.nOutput, dtype=DTYPE)
        self.save_mean = torch.zeros(self.nOutput, dtype=DTYPE)
        self.save_std = torch.zeros(self.nOutput, dtype=DTYPE)
        if self.affine:
            self.weight = torch.rand(self.nOutput, dtype=DTYPE, generator=generator)
            self.bias = torch.zeros(self.nOutput, dtype=DTYPE)
            self.gradWeight = torch.zeros(self.nOutput, dtype=DTYPE)
            self.gradBias = torch.zeros(self.nOutput, dtype=DTYPE)
        else:
            self.weight = self.bias = self.gradWeight = self.gradBias = None

    def parameters(self):
        if not self.affine:
            return [], []
        return [self.weight, self.bias], [self.gradWeight, self.gradBias]

    def uses_batch_statistics(self, input) -> bool:
        """True when this input is normalised with batch statistics (``train`` and N > 1)."""
        return bool(self.train) and _as_batch(input, self).shape[0] > 1

    def _stats(self, x):
        """(mean, invstd) the current mode normalises with (THNN's ``mean``, ``invstd``)."""
        if self.uses_batch_statistics(x):
            return self.save_mean, self.save_std
        return self.running_mean, 1.0 / torch.sqrt(self.running_var + self.eps)

    def _affine(self):
        w = self.weight if self.affine else 1.0
        b = self.bias if self.affine else 0.0
        return w, b

    def updateOutput(self, input):  # noqa: N802
        x = _as_batch(input, self)
        n = x.shape[0]
        if self.uses_batch_statistics(x):
            mean = x.sum(0) / n
            sq = ((x - mean) * (x - mean)).sum(0)
            invstd = 1.0 / torch.sqrt(sq / n + self.eps)
            if self.eps == 0.0:
                invstd = torch.where(sq == 0, torch.zeros_like(invstd), invstd)
            self.save_mean = mean
            self.save_std = invstd
            m = self.momentum
            self.running_mean = m * mean + (1 - m) * self.running_mean
            self.running_var = m * (sq / (n - 1)) + (1 - m) * self.running_var
        else:
            mean, invstd = self._stats(x)
        w, b = self._affine()
        self.output = (((x - mean) * invstd) * w + b).reshape(input.shape)
        return self.output

    def _sums(self, x, go):
        mean, invstd = self._stats(x)
        total = go.sum(0)
        dotp = ((x - mean) * go).sum(0)
        return mean, invstd, total, dotp

    def updateGradInput(self, input, gradOutput):  # noqa: N802
        x = _as_batch(input, self)
        go = gradOutput.reshape(x.shape)
        n = x.shape[0]
        mean, invstd, total, dotp = self._sums(x, go)
        w = self.weight if self.affine else 1.0
        if self.uses_batch_statistics(x):
            # dL/dx = (go - mean(go) - xhat * mean(go * xhat)) * invstd * w
            k = dotp * invstd * invstd / n
            proj = (x - mean) * k
            gi = (go - total / n - proj) * invstd * w
        else:
            gi = go * invstd * w
        self.gradInput = gi.reshape(input.shape)
        return self.gradInput

    def accGradParameters(self, input, gradOutput, scale=1.0):  # noqa: N802
        if not self.affine:
            return
        x = _as_batch(input, self)
        go = gradOutput.reshape(x.shape)
        _, invstd, total, dotp = self._sums(x, go)
        self.gradWeight += scale * dotp * invstd
        self.gradBias += scale * total

    def __repr__(self):
        return f"nn.BatchNormalization({self.nOutput}, eps={self.eps}, momentum={self.momentum}, affine={self.affine})"


# -- helpers ---------------------------------------------------------------------------

def _check_table(input, who, n=None):
    if not isinstance(input, (list, tuple)) or not input:
        raise A2Error(f"{who} expects a table (list) of tensors, got {type(input).__name__}")
    if n is not None and len(input) != n:
        raise A2Error(f"{who} has {n} modules but got a table of {len(input)} inputs")
    shape = input[0].shape
    for i, x in enumerate(input):
        if x.shape != shape:
            raise A2Error(f"{who}: input[{i + 1}] has shape {tuple(x.shape)}, expected {tuple(shape)}")


def _as_batch(input, bn):
    if input.dim() == 1:
        input = input.reshape(1, -1)
    if input.dim() != 2 or input.shape[1] != bn.nOutput:
        raise A2Error(f"BatchNormalization({bn.nOutput}) expects N x {bn.nOutput} (or {bn.nOutput}) "
                      f"input, got shape {tuple(input.shape)}")
    return input


def _clone(x):
    return [_clone(v) for v in x] if isinstance(x, (list, tuple)) else x.clone()


def _add(a, b):
    if isinstance(a, (list, tuple)):
        return [_add(u, v) for u, v in zip(a, b)]
    return a + b


# -- t7 objects -> modules -----------------------------------------------------------------

_SIMPLE = {"nn.Sigmoid": Sigmoid, "nn.CMinTable": CMinTable, "nn.CMaxTable": CMaxTable,
           "nn.CAddTable": CAddTable}
_CONTAINERS = {"nn.Sequential": Sequential, "nn.ParallelTable": ParallelTable,
               "nn.ConcatTable": ConcatTable}


def from_lua(obj, path="module"):
    """Build the part-1 module a Lua nn object (a :class:`luatorch_port.t7.LuaObject`) describes.

    Knows the classes of this module and walks their containers; a BatchNormalization is read
    by :func:`luatorch_port.nn.from_t7` (the one reader of Lua nn fields, which upgrades
    pre-version-2 files' ``running_std`` as ``nn.BatchNormalization:read`` does) and copied
    in float64: parameters, running statistics, ``eps``, ``momentum``, ``affine``. ``train``
    is taken from the object when it has the field (default True). Raises :class:`A2Error`
    naming ``path`` for anything else.
    """
    name = getattr(obj, "class_name", None)
    if name is None:
        raise A2Error(f"{path}: expected an nn module object, got {type(obj).__name__}")
    fields = obj.fields
    if name in _SIMPLE:
        module = _SIMPLE[name]()
    elif name in _CONTAINERS:
        children = fields.get("modules") or []
        module = _CONTAINERS[name](*[from_lua(c, f"{path}.modules[{i + 1}]") for i, c in enumerate(children)])
    elif name == "nn.BatchNormalization":
        module = _bn_from_nn(lnn.from_t7(obj, path))
    else:
        raise A2Error(f"{path}: class {name} is not one of the part-1 modules "
                      f"({', '.join(sorted([*_SIMPLE, *_CONTAINERS, 'nn.BatchNormalization']))})")
    if "train" in fields:
        module.train = bool(fields["train"])
    return module


def _bn_from_nn(m) -> BatchNormalization:
    """The part-1 copy (float64) of a :class:`luatorch_port.nn.BatchNormalization`."""
    affine = m.weight is not None
    bn = BatchNormalization(m.num_features, eps=m.eps, momentum=m.momentum, affine=affine)
    bn.running_mean = m.running_mean.detach().to(DTYPE).clone()
    bn.running_var = m.running_var.detach().to(DTYPE).clone()
    if affine:
        bn.weight = m.weight.detach().to(DTYPE).clone()
        bn.bias = m.bias.detach().to(DTYPE).clone()
    return bn
