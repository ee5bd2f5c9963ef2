"""Port of nn.SpatialContrastiveNormalization (torch/nn SpatialContrastiveNormalization.lua).

Lua builds it from nn.SpatialSubtractiveNormalization followed by
nn.SpatialDivisiveNormalization, both with the same (in-place normalised) kernel. With
``conv`` the zero-padded 'same' correlation summed over the planes, K the 2-D kernel
(``k ⊗ k`` for a 1-D kernel k), and coef = conv(1, K):

    c = x - conv(x, K) / coef
    s = sqrt(conv(c², K)) / coef          (divided by coef, not sqrt(coef), as Lua does)
    s = s if s > threshold else thresval
    y = c / s

Deviations: computed with tensor arithmetic in Lua's accumulation order instead of Lua's
module tree (no SpatialConvolutionMap/Replicate objects). The gradient of sqrt at exactly 0 is taken as 0
(those entries are replaced by ``thresval`` anyway).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import A2Error
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
    # THVector cadd: acc + w*x, product rounded before the sum (no fused multiply-add)
    return acc + x * w


class SpatialContrastiveNormalization(LuaModule, nn.Module):
    """``SpatialContrastiveNormalization(nInputPlane=1, kernel=ones(9,9), threshold=1e-4, thresval=threshold)``.

    Input nInputPlane x H x W or N x nInputPlane x H x W; output the same shape.
    ``kernel`` (1-D or 2-D) is copied and, as Lua's two constructors do in place, divided
    by ``sum * nInputPlane`` twice, in its own dtype. The convolutions accumulate in Lua's
    order (zero padding, then a horizontal pass over kx and a vertical pass over planes and
    ky for a 1-D kernel; planes, ky, kx for a 2-D one), so float32 results track Torch7's
    float32 rounding, which dominates the output in flat image regions.
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
        for _ in range(2):  # subtractive, then divisive __init__ (same tensor)
            total = kernel.double().sum().item() * self.nInputPlane
            kernel = kernel / torch.tensor(total, dtype=kernel.dtype)
        self.register_buffer("kernel", kernel)
        self.threshold = float(threshold)
        self.thresval = float(threshold if thresval is None else thresval)

    def _estimate(self, x, k):
        """meanestimator: zero padding, correlation summed over planes, replicated to every plane."""
        n, c, h, w = x.shape
        if k.dim() == 1:
            ph = pw = k.numel() // 2
            xp = F.pad(x, (pw, pw, ph, ph))
            horiz = torch.zeros(n, c, h + 2 * ph, w, dtype=x.dtype, device=x.device)
            for kx in range(k.numel()):
                horiz = _axpy(horiz, xp[:, :, :, kx:kx + w], k[kx])
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
        k = self.kernel.to(dtype=x.dtype, device=x.device)
        coef = self._estimate(torch.ones_like(x[:1]), k)
        centred = x - self._estimate(x, k) / coef
        std = _SafeSqrt.apply(self._estimate(centred * centred, k)) / coef
        thres = torch.tensor(self.threshold, dtype=x.dtype)
        std = torch.where(std > thres, std, torch.full_like(std, self.thresval))
        y = centred / std
        return y if batched else y.squeeze(0)

    def lua_args(self):
        return [self.nInputPlane, self.kernel.tolist(), self.threshold, self.thresval], {}

    def lua_str(self):
        return self.lua_class
