"""Lua nn containers and table modules: Sequential, Concat, ConcatTable, ParallelTable, C*Table.

Port of torch/nn's Sequential.lua, Concat.lua, ConcatTable.lua, ParallelTable.lua,
CAddTable.lua, CMinTable.lua, CMaxTable.lua and JoinTable.lua. ``get(i)`` is 1-based, as in
Lua; printing follows each class's ``__tostring__``.

Deviations: none intended. CMinTable/CMaxTable send the gradient of a tie to the first
input, as Torch does (autograd through ``torch.minimum`` would split it 50/50).
"""

from __future__ import annotations

import torch
from torch import nn

from ..util.errors import A2Error
from .layers import LuaModule

_TAB = "  "


def _indent(text: str, prefix: str) -> str:
    return text.replace("\n", "\n" + prefix)


class _Container:
    """nn.Container's ``add(m)`` (returns self) and 1-based ``get(i)``, for list-like modules."""

    def add(self, module):
        self.append(module)
        return self

    def get(self, i):
        """The i-th module, counting from 1 as Lua does."""
        if not 1 <= i <= len(self):
            raise A2Error(f"{self.lua_class}.get({i}): index out of range 1..{len(self)}")
        return self[i - 1]


class Sequential(_Container, LuaModule, nn.Sequential):
    """Port of nn.Sequential (torch/nn): ``add(m)`` returns self, ``get(i)`` is 1-based."""

    lua_class = "nn.Sequential"

    def size(self):
        return len(self)

    def lua_str(self):
        n = len(self)
        s = f"{self.lua_class} {{\n{_TAB}[input"
        s += "".join(f" -> ({i})" for i in range(1, n + 1)) + " -> output]"
        for i, m in enumerate(self, 1):
            s += f"\n{_TAB}({i}): " + _indent(_lua_str(m), _TAB)
        return s + "\n}"


def _lua_str(m) -> str:
    return m.lua_str() if isinstance(m, LuaModule) else repr(m)


class _Branching(_Container, LuaModule, nn.ModuleList):
    """Printing shared by Concat, ConcatTable and ParallelTable (one branch per module)."""

    def lua_str(self):
        nxt, last_nxt, ext, ext_last = "  |`-> ", "   `-> ", "  |    ", "       "
        s = f"{self.lua_class} {{\n{_TAB}input"
        for i, m in enumerate(self, 1):
            if i == len(self):
                s += f"\n{_TAB}{last_nxt}({i}): " + _indent(_lua_str(m), _TAB + ext_last)
            else:
                s += f"\n{_TAB}{nxt}({i}): " + _indent(_lua_str(m), _TAB + ext)
        return s + f"\n{_TAB}   ... -> output\n}}"

    __call__ = nn.Module.__call__


class ConcatTable(_Branching):
    """Port of nn.ConcatTable (torch/nn): every module on the same input; a list of outputs."""

    lua_class = "nn.ConcatTable"

    def forward(self, x):
        return [m(x) for m in self]


class ParallelTable(_Branching):
    """Port of nn.ParallelTable (torch/nn): module i on input i; a list of outputs."""

    lua_class = "nn.ParallelTable"

    def forward(self, xs):
        if len(xs) < len(self):
            raise A2Error(f"nn.ParallelTable: {len(self)} modules but {len(xs)} inputs")
        return [m(x) for m, x in zip(self, xs)]


class Concat(_Branching):
    """Port of nn.Concat (torch/nn): every module on the same input, joined along ``dimension``.

    ``dimension`` is 1-based as in Lua (``nn.Concat(2)`` joins the channels of a batch).
    """

    lua_class = "nn.Concat"

    def __init__(self, dimension, modules=()):
        super().__init__(modules)
        self.dimension = int(dimension)

    def forward(self, x):
        return torch.cat([m(x) for m in self], dim=self.dimension - 1)

    def lua_args(self):
        return [self.dimension], {}


class _Reduce(LuaModule, nn.Module):
    def lua_str(self):
        return self.lua_class


class CAddTable(_Reduce):
    """Port of nn.CAddTable (torch/nn): elementwise sum of a list of tensors."""

    lua_class = "nn.CAddTable"

    def __init__(self, ip=False):
        super().__init__()
        self.inplace = bool(ip)

    def forward(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    def lua_args(self):
        return [self.inplace], {}


class CMinTable(_Reduce):
    """Port of nn.CMinTable (torch/nn): elementwise min; a tie goes to the earlier input."""

    lua_class = "nn.CMinTable"

    def forward(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = torch.where(x < out, x, out)
        return out


class CMaxTable(_Reduce):
    """Port of nn.CMaxTable (torch/nn): elementwise max; a tie goes to the earlier input."""

    lua_class = "nn.CMaxTable"

    def forward(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = torch.where(x > out, x, out)
        return out


class JoinTable(_Reduce):
    """Port of nn.JoinTable (torch/nn): ``JoinTable(dimension, nInputDims)``, 1-based dimension.

    With ``nInputDims`` given and the inputs having one more dimension, the join moves one
    dimension right (batch mode), as in Lua.
    """

    lua_class = "nn.JoinTable"

    def __init__(self, dimension, nInputDims=None):
        super().__init__()
        self.dimension = int(dimension)
        self.nInputDims = None if nInputDims is None else int(nInputDims)

    def forward(self, xs):
        dim = self.dimension - 1
        if self.nInputDims is not None and xs[0].dim() == self.nInputDims + 1:
            dim += 1
        return torch.cat(list(xs), dim=dim)

    def lua_args(self):
        return [self.dimension, self.nInputDims], {}
