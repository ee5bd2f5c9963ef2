"""Port of nn.SpatialContrastiveNormalization (torch/nn SpatialContrastiveNormalization.lua).

Lua builds it from nn.SpatialSubtractiveNormalization followed by
nn.SpatialDivisiveNormalization. With ``conv`` the zero-padded 'same' correlation summed
over the planes, K the 2-D kernel (``k ⊗ k`` for a 1-D kernel k; K1 the subtractive
part's, K2 the divisive part's):

    c = x - conv(x, K1) / conv(1, K1)
    s = sqrt(conv(c², K2)) / conv(1, K2)   (divided by coef, not sqrt(coef), as Lua does)
    s = s if s > threshold else thresval
    y = c / s

Deviations: computed with tensor arithmetic in Torch7's accumulation order instead of
Lua's module tree (no SpatialConvolutionMap/Replicate objects at run time; ``to_t7``
writes the tree). The gradient of sqrt at exactly 0 is taken as 0 (those entries are
replaced by ``thresval`` anyway).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..util.errors import A2Error
from .layers import LuaModule

# nn.SpatialDivisiveNormalization's defaults (torch/nn SpatialDivisiveNormalization.lua).
SCN_THRESHOLD = 1e-4
DEFAULT_KERNEL_SIZE = 9  # torch.Tensor(9,9):fill(1) when no kernel is given


class _SafeSqrt(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.clamp_min(0).sqrt()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return torch.where(y > 0, 0.5 * g / torch.where(y > 0, y, torch.ones_like(y)),
                           torch.zeros_like(g))


def _axpy(acc, x, w):
    # TH's gemm accumulation (the vertical pass): acc + w*x with the product rounded first.
    # The horizontal pass instead emulates THVector's AVX2 cadd (Torch7's x86 path; it has no
    # AVX-512 kernels): a fused multiply-add.
    return acc + x * w


def _lua_normalise(kernel, n):
    # kernel:div(kernel:sum() * nInputPlane), the sum accumulated in double, the division in
    # the kernel's dtype (TH passes the divisor as `real`)
    total = kernel.double().sum().item() * n
    return kernel / torch.tensor(total, dtype=kernel.dtype)


class SpatialContrastiveNormalization(LuaModule, nn.Module):
    """``SpatialContrastiveNormalization(nInputPlane=1, kernel=ones(9,9), threshold=1e-4, thresval=threshold)``.

    Input nInputPlane x H x W or N x nInputPlane x H x W; output the same shape.

    As in Lua, the subtractive part's convolutions hold the kernel divided once by
    ``sum * nInputPlane`` (buffer ``kernel_sub``) and the divisive part's hold it divided
    twice (``kernel``, what Lua keeps as ``self.kernel``); in float32 the two differ in the
    last bit. The convolutions accumulate in Torch7's order and rounding (zero padding; a
    horizontal pass over kx with fused multiply-adds, as THVector cadd does; a vertical
    pass over planes and ky with separate multiply and add, as the gemm does), so float32
    results reproduce Torch7's to ~1 ulp, even in flat image regions where rounding
    noise divided by the 1e-4 threshold dominates the output.
    """

    lua_class = "nn.SpatialContrastiveNormalization"

    def __init__(self, nInputPlane=1, kernel=None, threshold=SCN_THRESHOLD, thresval=None):
        super().__init__()
        self.nInputPlane = int(nInputPlane)
        if kernel is None:
            kernel = torch.ones(DEFAULT_KERNEL_SIZE, DEFAULT_KERNEL_SIZE, dtype=torch.float64)
        kernel = torch.as_tensor(kernel).detach().clone()
        if not kernel.is_floating_point():
            kernel = kernel.double()
        if kernel.dim() not in (1, 2) or any(n % 2 == 0 for n in kernel.shape):
            raise A2Error(f"SpatialContrastiveNormalization: kernel must be 1-D or 2-D with odd "
                          f"sizes, got shape {tuple(kernel.shape)}")
        sub = _lua_normalise(kernel, self.nInputPlane)      # SpatialSubtractiveNormalization
        self.register_buffer("kernel_sub", sub)
        self.register_buffer("kernel", _lua_normalise(sub, self.nInputPlane))  # ...Divisive
        self.threshold = float(threshold)
        self.thresval = float(threshold if thresval is None else thresval)

    @staticmethod
    def _estimate(x, k):
        """meanestimator: zero padding, correlation summed over planes, replicated to every plane."""
        n, c, h, w = x.shape
        if k.dim() == 1:
            ph = pw = k.numel() // 2
            xp = F.pad(x, (pw, pw, ph, ph))
            fused = x.dtype in (torch.float32, torch.float16, torch.bfloat16)
            if fused:  # products and sums in float64, rounded to x's dtype after each step
                xp = xp.double()
            horiz = torch.zeros(n, c, h + 2 * ph, w, dtype=x.dtype, device=x.device)
            for kx in range(k.numel()):
                term = xp[:, :, :, kx:kx + w] * k[kx].item()
                horiz = (horiz.double() + term).to(x.dtype) if fused else horiz + term
            acc = torch.zeros(n, 1, h, w, dtype=x.dtype, device=x.device)
            for p in range(c):
                for ky in range(k.numel()):
                    acc = _axpy(acc, horiz[:, p:p + 1, ky:ky + h, :], k[ky])
        else:
            kh, kw = k.shape
            ph, pw = kh // 2, kw // 2
            xp = F.pad(x, (pw, pw, ph, ph))
            acc = torch.zeros(n, 1, h, w, dtype=x.dtype, device=x.device)
            for p in range(c):
                for ky in range(kh):
                    for kx in range(kw):
                        acc = _axpy(acc, xp[:, p:p + 1, ky:ky + h, kx:kx + w], k[ky, kx])
        return acc.expand(n, c, h, w)

    def forward(self, x):
        batched = x.dim() == 4
        if not batched:
            if x.dim() != 3:
                raise A2Error(f"SpatialContrastiveNormalization: expected 3-D or 4-D input, got "
                              f"shape {tuple(x.shape)}")
            x = x.unsqueeze(0)
        if x.size(1) != self.nInputPlane:
            raise A2Error(f"SpatialContrastiveNormalization: expected {self.nInputPlane} planes, "
                          f"got {x.size(1)}")
        k_sub = self.kernel_sub.to(dtype=x.dtype, device=x.device)
        k_div = self.kernel.to(dtype=x.dtype, device=x.device)
        ones = torch.ones_like(x[:1])
        centred = x - self._estimate(x, k_sub) / self._estimate(ones, k_sub)
        std = _SafeSqrt.apply(self._estimate(centred * centred, k_div)) / self._estimate(ones, k_div)
        thres = torch.tensor(self.threshold, dtype=x.dtype)
        std = torch.where(std > thres, std, torch.full_like(std, self.thresval))
        y = centred / std
        return y if batched else y.squeeze(0)

    def lua_args(self):
        return [self.nInputPlane, self.kernel.tolist(), self.threshold, self.thresval], {}

    def lua_str(self):
        return self.lua_class
