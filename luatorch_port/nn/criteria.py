"""Lua nn criteria: ClassNLLCriterion, CrossEntropyCriterion, MSECriterion.

Port of torch/nn ClassNLLCriterion.lua, CrossEntropyCriterion.lua and MSECriterion.lua.
``forward(input, target)`` returns the loss; gradients come from autograd.

Deviations: targets are 0-based class indices here (Python convention); Lua's 1-based
targets are converted at the t7 boundary only (``from_t7`` readers and ``data``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LuaModule

# nn.ClassNLLCriterion's ignoreIndex default (torch/nn ClassNLLCriterion.lua).
IGNORE_INDEX = -100


class ClassNLLCriterion(LuaModule, nn.Module):
    """``ClassNLLCriterion(weights=None, sizeAverage=true)``: -input[i, t_i], averaged or summed.

    With class weights and ``sizeAverage``, the sum is divided by the total target weight.
    """

    lua_class = "nn.ClassNLLCriterion"

    def __init__(self, weights=None, sizeAverage=True, ignoreIndex=IGNORE_INDEX):
        super().__init__()
        self.register_buffer("weights", None if weights is None else torch.as_tensor(weights))
        self.sizeAverage = bool(sizeAverage)
        self.ignoreIndex = int(ignoreIndex)

    def forward(self, input, target):
        if input.dim() == 1:
            input, target = input.unsqueeze(0), torch.as_tensor(target).reshape(1)
        return F.nll_loss(input, target.long(), weight=self.weights,
                          reduction="mean" if self.sizeAverage else "sum",
                          ignore_index=self.ignoreIndex)

    def lua_args(self):
        w = None if self.weights is None else self.weights.tolist()
        return [w, self.sizeAverage, self.ignoreIndex], {}


class CrossEntropyCriterion(LuaModule, nn.Module):
    """``CrossEntropyCriterion(weights=None)``: LogSoftMax followed by ClassNLLCriterion."""

    lua_class = "nn.CrossEntropyCriterion"

    def __init__(self, weights=None, sizeAverage=True):
        super().__init__()
        self.nll = ClassNLLCriterion(weights, sizeAverage)

    @property
    def sizeAverage(self):
        return self.nll.sizeAverage

    @sizeAverage.setter
    def sizeAverage(self, value):
        self.nll.sizeAverage = bool(value)

    def forward(self, input, target):
        dim = 0 if input.dim() == 1 else 1
        return self.nll(F.log_softmax(input, dim=dim), target)

    def lua_args(self):
        w = None if self.nll.weights is None else self.nll.weights.tolist()
        return [w, self.sizeAverage], {}


class MSECriterion(LuaModule, nn.Module):
    """``MSECriterion(sizeAverage=true)``: mean (or sum) of squared differences over all elements."""

    lua_class = "nn.MSECriterion"

    def __init__(self, sizeAverage=True):
        super().__init__()
        self.sizeAverage = bool(sizeAverage)

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction="mean" if self.sizeAverage else "sum")

    def lua_args(self):
        return [self.sizeAverage], {}
