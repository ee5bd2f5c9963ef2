"""Port of nn.SpatialContrastiveNormalization (torch/nn SpatialContrastiveNormalization.lua).

Lua builds it from nn.SpatialSubtractiveNormalization followed by
nn.SpatialDivisiveNormalization, both with the same (in-place normalised) kernel. With
``conv`` the zero-padded 'same' correlation summed over the planes, K the 2-D kernel
(``k ⊗ k`` for a 1-D kernel k), and coef = conv(1, K):

    c = x - conv(x, K) / coef
    s = sqrt(conv(c², K)) / coef          (divided by coef, not sqrt(coef), as Lua does)
    s = s if s > threshold else thresval
    y = c / s

Deviations: computed directly with ``F.conv2d`` instead of Lua's module tree; the result
agrees with Torch7 to ~1e-15 in double. The gradient of sqrt at exactly 0 is taken as 0
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


class SpatialContrastiveNormalization(LuaModule, nn.Module):
    """``SpatialContrastiveNormalization(nInputPlane=1, kernel=ones(9,9), threshold=1e-4, thresval=threshold)``.

    Input nInputPlane x H x W or N x nInputPlane x H x W; output the same shape.
    ``kernel`` (1-D or 2-D) is copied and normalised to sum 1/nInputPlane... as Lua does:
    divided by ``sum * nInputPlane`` (twice for sub- and divisive parts, which for one
    plane is a single normalisation to sum 1).
    """

    lua_class = "nn.SpatialContrastiveNormalization"

    def __init__(self, nInputPlane=1, kernel=None, threshold=SCN_THRESHOLD, thresval=None):
        super().__init__()
        self.nInputPlane = int(nInputPlane)
        if kernel is None:
            kernel = torch.ones(DEFAULT_KERNEL_SIZE, DEFAULT_KERNEL_SIZE, dtype=torch.float64)
        kernel = torch.as_tensor(kernel).detach().clone()
        if kernel.dim() not in (1, 2):
            raise A2Error(f"SpatialContrastiveNormalization: kernel must be 1-D or 2-D, got "
                          f"shape {tuple(kernel.shape)}")
        if kernel.dim() == 2 and (kernel.size(0) % 2 == 0 or kernel.size(1) % 2 == 0) or \
                kernel.dim() == 1 and kernel.size(0) % 2 == 0:
            raise A2Error(f"SpatialContrastiveNormalization: kernel sizes must be odd, got "
                          f"{tuple(kernel.shape)}")
        # Subtractive then divisive __init__ each divide the shared kernel by sum*nInputPlane.
        for _ in range(2):
            kernel = kernel / (kernel.sum() * self.nInputPlane)
        self.register_buffer("kernel", kernel)
        self.threshold = float(threshold)
        self.thresval = float(threshold if thresval is None else thresval)

    def _kernel2d(self, dtype, device):
        k = self.kernel.to(dtype=dtype, device=device)
        return torch.outer(k, k) if k.dim() == 1 else k

    def _conv(self, x, k2):
        # sum over planes of the 'same' correlation, replicated to every plane (nn.Replicate)
        kh, kw = k2.shape
        w = k2.expand(1, x.size(1), kh, kw)
        y = F.conv2d(x, w, padding=(kh // 2, kw // 2))
        return y.expand(-1, x.size(1), -1, -1)

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
        k2 = self._kernel2d(x.dtype, x.device)
        coef = self._conv(torch.ones_like(x[:1]), k2)
        centred = x - self._conv(x, k2) / coef
        std = _SafeSqrt.apply(self._conv(centred * centred, k2)) / coef
        std = torch.where(std > self.threshold, std, torch.full_like(std, self.thresval))
        y = centred / std
        return y if batched else y.squeeze(0)

    def lua_args(self):
        return [self.nInputPlane, self.kernel.tolist(), self.threshold, self.thresval], {}

    def lua_str(self):
        return self.lua_class
