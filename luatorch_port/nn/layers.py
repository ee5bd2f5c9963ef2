"""Lua-named layers: ``torch.nn`` modules built with Lua nn's argument order and defaults.

Port of the layers of torch/nn (nn 8726825) that the course models use: each class takes
the Lua constructor's arguments in the Lua order (width before height), initialises its
parameters as the Lua ``reset()`` does, and prints like Lua's ``tostring(module)``.
Every class has ``lua_class`` (the Lua name) and ``lua_args()`` (positional arguments and
keyword settings that rebuild it; used by the ``.pt`` structure and by ``to_t7``).

Deviations: Lua modules run on 3-D (non-batch) input as well as 4-D; these do too where
the torch module does. Weight initialisation draws from a ``torch.Generator`` (PyTorch's
stream, not Torch7's), so the numbers differ from Lua's but the distributions match.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..util.errors import A2Error

# nn.BatchNormalization's defaults (torch/nn BatchNormalization.lua).
BN_EPS = 1e-5
BN_MOMENTUM = 0.1
# nn.Dropout's default p (torch/nn Dropout.lua).
DROPOUT_P = 0.5


_INIT = {"enabled": True}


@contextlib.contextmanager
def no_init():
    """Build layers without drawing initial weights (they are about to be overwritten)."""
    before = _INIT["enabled"]
    _INIT["enabled"] = False
    try:
        yield
    finally:
        _INIT["enabled"] = before


class LuaModule:
    """Mixin: the Lua class name, Lua-style printing and the arguments that rebuild a module."""

    lua_class = "nn.Module"

    def lua_args(self):
        """``(args, kwargs)`` such that ``type(self)(*args, **kwargs)`` rebuilds this module."""
        return [], {}

    def lua_str(self) -> str:
        """What Lua's ``tostring(module)`` prints."""
        return self.lua_class

    def __repr__(self):
        return self.lua_str()

    def extra_repr(self):  # keep torch's printer quiet if it is called directly
        return ""


# ---------------------------------------------------------------- convolutions

class _LuaKernelFields:
    """Lua's kW/kH, dW/dH, padW/padH over PyTorch's (H, W) ``kernel_size``/``stride``/``padding``."""

    kW = property(lambda self: self.kernel_size[1])
    kH = property(lambda self: self.kernel_size[0])
    dW = property(lambda self: self.stride[1])
    dH = property(lambda self: self.stride[0])
    padW = property(lambda self: self.padding[1])
    padH = property(lambda self: self.padding[0])


class _UniformReset:
    """Lua's ``reset(stdv)`` of nn.SpatialConvolution and nn.Linear: weight and bias from
    U(-stdv, stdv), stdv = 1/sqrt(fan in) by default (``_fan_in`` of the class)."""

    def reset_parameters(self):
        # torch's __init__ calls this before ours has run: skip it there; later calls
        # (model.apply(lambda m: m.reset_parameters())) get Lua's reset()
        if getattr(self, "_lua_built", False):
            self.reset()

    def reset(self, stdv=None, generator=None):
        """Lua ``reset(stdv)``: U(-stdv, stdv) for weight and bias."""
        if not _INIT["enabled"]:
            return self
        stdv = 1 / math.sqrt(self._fan_in()) if stdv is None else stdv
        with torch.no_grad():
            self.weight.uniform_(-stdv, stdv, generator=generator)
            if self.bias is not None:
                self.bias.uniform_(-stdv, stdv, generator=generator)
        return self


class SpatialConvolution(_UniformReset, _LuaKernelFields, LuaModule, nn.Conv2d):
    """Port of nn.SpatialConvolution (torch/nn SpatialConvolution.lua).

    ``SpatialConvolution(nInputPlane, nOutputPlane, kW, kH, dW=1, dH=1, padW=0, padH=padW)``;
    ``weight`` is nOutputPlane x nInputPlane x kH x kW (cross-correlation, as Conv2d).
    ``reset`` draws weight and bias from U(-stdv, stdv), stdv = 1/sqrt(kW*kH*nInputPlane).
    """

    lua_class = "nn.SpatialConvolution"

    def __init__(self, nInputPlane, nOutputPlane, kW, kH, dW=1, dH=1, padW=0, padH=None,
                 *, bias=True, generator=None):
        padH = padW if padH is None else padH
        super().__init__(int(nInputPlane), int(nOutputPlane), (int(kH), int(kW)),
                         stride=(int(dH), int(dW)), padding=(int(padH), int(padW)), bias=bias)
        self.reset(generator=generator)
        self._lua_built = True

    nInputPlane = property(lambda self: self.in_channels)
    nOutputPlane = property(lambda self: self.out_channels)

    def _fan_in(self):
        return self.kW * self.kH * self.nInputPlane

    def lua_args(self):
        return ([self.nInputPlane, self.nOutputPlane, self.kW, self.kH, self.dW, self.dH,
                 self.padW, self.padH], {"bias": self.bias is not None})

    def lua_str(self):
        s = f"{self.lua_class}({self.nInputPlane} -> {self.nOutputPlane}, {self.kW}x{self.kH}"
        if self.dW != 1 or self.dH != 1 or self.padW != 0 or self.padH != 0:
            s += f", {self.dW},{self.dH}"
        if self.padW != 0 or self.padH != 0:
            s += f", {self.padW},{self.padH}"
        s += ")"
        if self.bias is None:
            s += " without bias"
        return s


class SpatialConvolutionMM(SpatialConvolution):
    """Port of nn.SpatialConvolutionMM (torch/nn): SpatialConvolution whose t7 weight is 2-D.

    Lua stores ``weight`` as nOutputPlane x (nInputPlane*kH*kW); here it is 4-D, reshaped
    at the t7 boundary (same [o][c][kh][kw] order).
    """

    lua_class = "nn.SpatialConvolutionMM"


# ---------------------------------------------------------------- pooling

class _LuaPooling(_LuaKernelFields):
    """Lua's field names (see :class:`_LuaKernelFields`), and ``:ceil()``/``:floor()``."""

    def ceil(self):
        self.ceil_mode = True
        return self

    def floor(self):
        self.ceil_mode = False
        return self


class SpatialMaxPooling(_LuaPooling, LuaModule, nn.MaxPool2d):
    """Port of nn.SpatialMaxPooling (torch/nn): ``(kW, kH, dW=kW, dH=kH, padW=0, padH=0)``.

    ``:ceil()`` / ``:floor()`` switch ``ceil_mode`` and return the module, as in Lua.

    Deviations: with padding, THNN drops a last window that starts in the padding only when
    padded; PyTorch applies that rule always. The two differ only when kW < dW (never in
    the course models).
    """

    lua_class = "nn.SpatialMaxPooling"

    def __init__(self, kW, kH, dW=None, dH=None, padW=0, padH=0, *, ceil_mode=False):
        dW = kW if dW is None else dW
        dH = kH if dH is None else dH
        super().__init__((int(kH), int(kW)), stride=(int(dH), int(dW)),
                         padding=(int(padH), int(padW)), ceil_mode=bool(ceil_mode))

    def lua_args(self):
        return [self.kW, self.kH, self.dW, self.dH, self.padW, self.padH], {"ceil_mode": self.ceil_mode}

    def lua_str(self):
        s = f"{self.lua_class}({self.kW}x{self.kH}, {self.dW},{self.dH}"
        if self.padW or self.padH:
            s += f", {self.padW},{self.padH}"
        return s + ")"


class SpatialAveragePooling(_LuaPooling, LuaModule, nn.AvgPool2d):
    """Port of nn.SpatialAveragePooling (torch/nn): ``(kW, kH, dW=1, dH=1, padW=0, padH=0)``.

    ``count_include_pad`` defaults to true and ``divide`` to true, as in Lua.
    """

    lua_class = "nn.SpatialAveragePooling"

    def __init__(self, kW, kH, dW=1, dH=1, padW=0, padH=0, *, ceil_mode=False,
                 count_include_pad=True):
        super().__init__((int(kH), int(kW)), stride=(int(dH), int(dW)),
                         padding=(int(padH), int(padW)), ceil_mode=bool(ceil_mode),
                         count_include_pad=bool(count_include_pad))

    def lua_args(self):
        return ([self.kW, self.kH, self.dW, self.dH, self.padW, self.padH],
                {"ceil_mode": self.ceil_mode, "count_include_pad": self.count_include_pad})

    def lua_str(self):
        s = f"{self.lua_class}({self.kW}x{self.kH}, {self.dW},{self.dH}"
        if self.padW or self.padH:
            s += f", {self.padW},{self.padH}"
        return s + ")"


# ---------------------------------------------------------------- batch normalization

class _LuaBatchNorm(LuaModule):
    """Shared part of nn.BatchNormalization and nn.SpatialBatchNormalization."""

    nDim = 2

    def _init_bn(self, nOutput, eps, momentum, affine, generator):
        if affine:
            self.reset(generator=generator)

    def reset(self, generator=None):
        """Lua ``reset()``: weight ~ U(0, 1), bias 0, running mean 0, running var 1."""
        with torch.no_grad():
            if self.weight is not None:
                self.weight.uniform_(0, 1, generator=generator)
            if self.bias is not None:
                self.bias.zero_()
        self.reset_running_stats()
        return self

    def forward(self, input):
        # BN:updateOutput passes `train and input:size(1) > 1` to THNN: a training batch of
        # one silently takes the evaluate path (running stats used, not updated).
        training = self.training and input.size(0) > 1
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                            training, self.momentum, self.eps)

    def lua_args(self):
        return [self.num_features, self.eps, self.momentum, self.affine], {}

    def lua_str(self):
        return f"{self.lua_class} ({self.nDim}D) ({self.num_features})"


class BatchNormalization(_LuaBatchNorm, nn.BatchNorm1d):
    """Port of nn.BatchNormalization (torch/nn): ``(nOutput, eps=1e-5, momentum=0.1, affine=true)``.

    Statistics over the batch dimension of N x C input; running_var is the unbiased variance
    (v2 files); a training batch of one uses the running statistics, as THNN does.

    Deviations: Lua's reset draws gamma from U(0, 1); so does this (PyTorch's default is 1).
    """

    lua_class = "nn.BatchNormalization"
    nDim = 2

    def __init__(self, nOutput, eps=BN_EPS, momentum=BN_MOMENTUM, affine=True, *, generator=None):
        nn.BatchNorm1d.__init__(self, int(nOutput), eps=float(eps), momentum=float(momentum),
                                affine=bool(affine))
        self._init_bn(nOutput, eps, momentum, affine, generator)


class SpatialBatchNormalization(_LuaBatchNorm, nn.BatchNorm2d):
    """Port of nn.SpatialBatchNormalization (torch/nn): BN per channel over N, H, W."""

    lua_class = "nn.SpatialBatchNormalization"
    nDim = 4

    def __init__(self, nOutput, eps=BN_EPS, momentum=BN_MOMENTUM, affine=True, *, generator=None):
        nn.BatchNorm2d.__init__(self, int(nOutput), eps=float(eps), momentum=float(momentum),
                                affine=bool(affine))
        self._init_bn(nOutput, eps, momentum, affine, generator)


# ---------------------------------------------------------------- linear

class Linear(_UniformReset, LuaModule, nn.Linear):
    """Port of nn.Linear (torch/nn): ``(inputSize, outputSize, bias=true)``; weight out x in.

    ``reset`` draws weight and bias from U(-stdv, stdv), stdv = 1/sqrt(inputSize).
    """

    lua_class = "nn.Linear"

    def __init__(self, inputSize, outputSize, bias=True, *, generator=None):
        super().__init__(int(inputSize), int(outputSize), bias=bool(bias))
        self.reset(generator=generator)
        self._lua_built = True

    def _fan_in(self):
        return self.in_features

    def lua_args(self):
        return [self.in_features, self.out_features, self.bias is not None], {}

    def lua_str(self):
        s = f"{self.lua_class}({self.in_features} -> {self.out_features})"
        return s if self.bias is not None else s + " without bias"


# ---------------------------------------------------------------- transfer functions

class ReLU(LuaModule, nn.ReLU):
    """Port of nn.ReLU (torch/nn): ``ReLU(ip=false)``; gradient 0 at exactly 0."""

    lua_class = "nn.ReLU"

    def __init__(self, ip=False):
        super().__init__(inplace=bool(ip))

    def lua_args(self):
        return [self.inplace], {}


class Sigmoid(LuaModule, nn.Sigmoid):
    """Port of nn.Sigmoid (torch/nn)."""

    lua_class = "nn.Sigmoid"


class Tanh(LuaModule, nn.Tanh):
    """Port of nn.Tanh (torch/nn)."""

    lua_class = "nn.Tanh"


class Dropout(LuaModule, nn.Dropout):
    """Port of nn.Dropout (torch/nn, v2): ``(p=0.5)``; scales by 1/(1-p) at training time.

    ``Dropout(p, v1=True)`` is Lua's old Dropout (files without ``v2``): no scaling at
    training time, output * (1-p) at test time.
    """

    lua_class = "nn.Dropout"

    def __init__(self, p=DROPOUT_P, v1=False, inplace=False):
        super().__init__(p=float(p), inplace=bool(inplace))
        self.v1 = bool(v1)

    def forward(self, x):
        if not self.v1:
            return super().forward(x)
        # v1: unscaled mask at training time, output * (1 - p) at test time
        if self.training:
            return x * torch.bernoulli(torch.full_like(x, 1 - self.p))
        return x * (1 - self.p)

    def lua_args(self):
        return [self.p, self.v1], {}

    def lua_str(self):
        return f"{self.lua_class}({self.p:f})"


def _lua_softmax_dim(x):
    # nn.(Log)SoftMax: over dim 1 of 1-D and 3-D (C x H x W) input, dim 2 of 2-D and 4-D.
    return 0 if x.dim() in (1, 3) else 1


class LogSoftMax(LuaModule, nn.Module):
    """Port of nn.LogSoftMax (torch/nn): over the feature dimension (dim 2 of a batch)."""

    lua_class = "nn.LogSoftMax"

    def forward(self, x):
        return F.log_softmax(x, dim=_lua_softmax_dim(x))


class SoftMax(LuaModule, nn.Module):
    """Port of nn.SoftMax (torch/nn): over the feature dimension (dim 2 of a batch)."""

    lua_class = "nn.SoftMax"

    def forward(self, x):
        return F.softmax(x, dim=_lua_softmax_dim(x))


class Identity(LuaModule, nn.Module):
    """Port of nn.Identity (torch/nn)."""

    lua_class = "nn.Identity"

    def forward(self, x):
        return x


# ---------------------------------------------------------------- shapes

class View(LuaModule, nn.Module):
    """Port of nn.View (torch/nn): ``View(d1, d2, ...)`` with ``setNumInputDims(n)``.

    A size of -1 is inferred. The batch dimension is found as Lua's ``batchsize()`` does:
    the input's leading elements beyond ``numElements`` (or beyond ``numInputDims``).
    """

    lua_class = "nn.View"

    def __init__(self, *sizes, numInputDims=None):
        super().__init__()
        if len(sizes) == 1 and isinstance(sizes[0], (list, tuple, torch.Size)):
            sizes = tuple(sizes[0])
        self.size = tuple(int(s) for s in sizes)
        if sum(1 for s in self.size if s == -1) > 1 or any(s < -1 for s in self.size):
            raise A2Error(f"nn.View sizes {self.size}: at most one -1 and no other negative size")
        self.numElements = math.prod(s for s in self.size if s >= 0)
        self.numInputDims = None if numInputDims is None else int(numInputDims)

    def setNumInputDims(self, n):
        self.numInputDims = int(n)
        return self

    def _batchsize(self, x):
        ind = x.dim()
        maxdim = self.numInputDims if self.numInputDims is not None else ind
        ine = math.prod(x.shape[ind - maxdim:]) if maxdim > 0 else 1
        if ine % self.numElements != 0:
            raise A2Error(f"nn.View: input view ({'x'.join(map(str, x.shape))}) and desired view "
                          f"({'x'.join(map(str, self.size))}) do not match")
        bsz = ine // self.numElements
        if -1 in self.size:
            bsz = 1
        for d in range(ind - maxdim):
            bsz *= x.shape[d]
        if bsz == 1 and (self.numInputDims is None or ind <= self.numInputDims):
            return None
        return bsz

    def forward(self, x):
        bsz = self._batchsize(x)
        return x.reshape(self.size) if bsz is None else x.reshape(bsz, *self.size)

    def lua_args(self):
        return list(self.size), {"numInputDims": self.numInputDims}

    def lua_str(self):
        return f"{self.lua_class}({', '.join(map(str, self.size))})"


class Reshape(LuaModule, nn.Module):
    """Port of nn.Reshape (torch/nn): ``Reshape(d1, ..., [batchMode])``.

    With ``batchMode`` unset, the input is one sample when it has exactly ``nelement``
    elements and its first size is not 1, else a batch (as Lua decides).
    """

    lua_class = "nn.Reshape"

    def __init__(self, *sizes, batchMode=None):
        super().__init__()
        if sizes and isinstance(sizes[-1], bool):
            batchMode, sizes = sizes[-1], sizes[:-1]
        if len(sizes) == 1 and isinstance(sizes[0], (list, tuple, torch.Size)):
            sizes = tuple(sizes[0])
        self.size = tuple(int(s) for s in sizes)
        self.nelement = math.prod(self.size)
        self.batchMode = batchMode

    def forward(self, x):
        if self.batchMode is False or (self.batchMode is None and x.numel() == self.nelement
                                       and x.size(0) != 1):
            return x.reshape(self.size)
        return x.reshape(x.size(0), *self.size)

    def lua_args(self):
        return list(self.size), {"batchMode": self.batchMode}

    def lua_str(self):
        return f"{self.lua_class}({'x'.join(map(str, self.size))})"


class SpatialZeroPadding(LuaModule, nn.Module):
    """Port of nn.SpatialZeroPadding (torch/nn): ``(pad_l, pad_r=pad_l, pad_t=pad_l, pad_b=pad_l)``.

    Negative padding crops, as in Lua.
    """

    lua_class = "nn.SpatialZeroPadding"

    def __init__(self, pad_l, pad_r=None, pad_t=None, pad_b=None):
        super().__init__()
        self.pad_l = int(pad_l)
        self.pad_r = self.pad_l if pad_r is None else int(pad_r)
        self.pad_t = self.pad_l if pad_t is None else int(pad_t)
        self.pad_b = self.pad_l if pad_b is None else int(pad_b)

    def forward(self, x):
        return F.pad(x, (self.pad_l, self.pad_r, self.pad_t, self.pad_b))

    def lua_args(self):
        return [self.pad_l, self.pad_r, self.pad_t, self.pad_b], {}

    def lua_str(self):
        return f"{self.lua_class}(l={self.pad_l}, r={self.pad_r}, t={self.pad_t}, b={self.pad_b})"
