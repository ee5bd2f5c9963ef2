"""Exemplar-CNN transformations: random parameters, batched affine warps, colour jitter.

Port of the surrogate-class augmentation of Dosovitskiy, Springenberg, Riedmiller and Brox,
"Discriminative Unsupervised Feature Learning with Convolutional Neural Networks"
(NIPS 2014), section 2 and 4.1, with the ranges of the 2016 report (part 2.1): rotation in
[-20, 20] degrees, scale in [0.7, 1.4], translation up to 0.1 of the patch in x and y, plus
the paper's horizontal flip and its "contrast 2" / "color" jitter (saturation and value
raised to a power in [0.25, 4], multiplied by [0.7, 1.4], added [-0.1, 0.1]; hue shifted
by [-0.1, 0.1]).

Geometry. A seed window is a square ``(x0, y0, size)`` in source-pixel coordinates (the
image spans ``[0, W] x [0, H]``, pixel ``i`` covers ``[i, i+1)``). A transformation maps
the output patch's centred coordinates ``u`` (in ``[-1, 1]``, ``align_corners=False``) to
the source point ``c + (size / (2 * scale)) * R(angle) @ F @ u + size * (tx, ty)``, where
``c`` is the window centre, ``F`` flips x when ``flip`` is set and ``R`` is the standard
rotation matrix: with the y axis pointing down, ``angle = +90`` gives exactly
``torch.rot90(patch, 1, dims=(-2, -1))``. All transformations of one source image share
one ``grid_sample`` call (their grids are stacked along the height axis), so the source
is never copied per transformation.

Deviations: sampling is bilinear with **reflection** padding (the paper does not say; PIL
and Lua's ``image.rotate`` fill with black, which would teach the net black corners).
The paper's "contrast 1" (scaling the projections onto the pixels' principal components)
is not implemented. Power and the scale factor are drawn log-uniformly (so that a power
of 0.25 is as likely as 4 and "no change" is the median); the rest uniformly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..errors import A2Error

# Paper section 4.1 / report 2.1 defaults.
ROTATION_DEG = (-20.0, 20.0)
SCALE = (0.7, 1.4)
TRANSLATE = 0.1          # fraction of the seed patch side, in x and in y
POWER = (0.25, 4.0)      # "contrast 2": saturation and value raised to this power
MULTIPLY = (0.7, 1.4)    # ... multiplied by this factor
ADD = (-0.1, 0.1)        # ... and this added
HUE = (-0.1, 0.1)        # "color": added to the hue (a full turn is 1)

# One row of parameters per transformation, in this column order (also the file's order).
COLUMNS = ("angle", "scale", "tx", "ty", "flip", "hue",
           "s_pow", "s_mul", "s_add", "v_pow", "v_mul", "v_add")
_COL = {name: i for i, name in enumerate(COLUMNS)}
IDENTITY = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0)

_HSV_EPS = 1e-8
_POW_FLOOR = 1e-30  # 0 ** p as exp(p * log 1e-30) <= 3e-8 for p >= 0.25 (float32 keeps it)


@dataclass(frozen=True)
class TransformRanges:
    """Ranges the random transformations are drawn from (defaults: the paper / report).

    ``flip`` is the probability of a horizontal flip; ``color=False`` leaves hue,
    saturation and value unchanged.
    """

    rotation: tuple = ROTATION_DEG
    scale: tuple = SCALE
    translate: float = TRANSLATE
    flip: float = 0.5
    color: bool = True
    power: tuple = POWER
    multiply: tuple = MULTIPLY
    add: tuple = ADD
    hue: tuple = HUE

    def __post_init__(self):
        for name in ("rotation", "scale", "power", "multiply", "add", "hue"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise A2Error(f"transform range {name}=({lo}, {hi}): expected low <= high")
        if self.scale[0] <= 0 or self.power[0] <= 0 or self.multiply[0] < 0:
            raise A2Error(f"scale {self.scale} and power {self.power} must be > 0, "
                          f"multiply {self.multiply} >= 0")
        if not 0 <= self.translate:
            raise A2Error(f"translate={self.translate}: expected >= 0")
        if not 0 <= self.flip <= 1:
            raise A2Error(f"flip={self.flip}: expected a probability in [0, 1]")

    def as_dict(self) -> dict:
        return asdict(self)


def _uniform(n, lo, hi, gen):
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def _log_uniform(n, lo, hi, gen):
    return torch.exp(_uniform(n, math.log(lo), math.log(hi), gen))


def sample_params(n: int, ranges: TransformRanges, generator: torch.Generator) -> torch.Tensor:
    """Draw ``n`` random transformations.

    Returns
    -------
    float64 tensor (n, len(COLUMNS)), columns in :data:`COLUMNS` order. All twelve
    columns are always drawn (identity colour values when ``ranges.color`` is False), so
    the geometry for a seed does not depend on the colour switch.
    """
    r = ranges
    cols = [
        _uniform(n, *r.rotation, generator),
        _log_uniform(n, *r.scale, generator),
        _uniform(n, -r.translate, r.translate, generator),
        _uniform(n, -r.translate, r.translate, generator),
        (torch.rand(n, generator=generator, dtype=torch.float64) < r.flip).double(),
        _uniform(n, *r.hue, generator),
        _log_uniform(n, *r.power, generator),
        _uniform(n, *r.multiply, generator),
        _uniform(n, *r.add, generator),
        _log_uniform(n, *r.power, generator),
        _uniform(n, *r.multiply, generator),
        _uniform(n, *r.add, generator),
    ]
    params = torch.stack(cols, dim=1)
    if not r.color:
        params[:, _COL["hue"]:] = torch.tensor(IDENTITY[_COL["hue"]:], dtype=torch.float64)
    return params


def affine_thetas(boxes: torch.Tensor, params: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``affine_grid`` matrices for transformations of seed windows.

    Parameters
    ----------
    boxes : (n, 3) tensor of ``(x0, y0, size)`` seed windows in source pixels
    params : (n, len(COLUMNS)) tensor from :func:`sample_params` (only the geometric
        columns angle, scale, tx, ty, flip are read)
    height, width : source image size in pixels

    Returns
    -------
    float64 tensor (n, 2, 3) in ``grid_sample``'s normalised coordinates.
    """
    boxes = boxes.double()
    params = params.double()
    size = boxes[:, 2]
    angle = torch.deg2rad(params[:, _COL["angle"]])
    half = size / (2.0 * params[:, _COL["scale"]])
    sign = 1.0 - 2.0 * params[:, _COL["flip"]]
    cos, sin = torch.cos(angle), torch.sin(angle)
    cx = boxes[:, 0] + size / 2 + size * params[:, _COL["tx"]]
    cy = boxes[:, 1] + size / 2 + size * params[:, _COL["ty"]]
    theta = torch.empty(len(boxes), 2, 3, dtype=torch.float64)
    # source = c + half * R @ diag(sign, 1) @ u, then x_norm = 2 x / W - 1
    theta[:, 0, 0] = 2.0 / width * half * cos * sign
    theta[:, 0, 1] = 2.0 / width * half * -sin
    theta[:, 0, 2] = 2.0 * cx / width - 1.0
    theta[:, 1, 0] = 2.0 / height * half * sin * sign
    theta[:, 1, 1] = 2.0 / height * half * cos
    theta[:, 1, 2] = 2.0 * cy / height - 1.0
    return theta


def warp(images: torch.Tensor, boxes: torch.Tensor, params: torch.Tensor, patch: int,
         padding_mode: str = "reflection") -> torch.Tensor:
    """Cut ``k`` transformed patches from each of ``b`` source images in one ``grid_sample``.

    Parameters
    ----------
    images : (b, C, H, W) float tensor (any range; the device used for the work)
    boxes : (b, 3) seed windows ``(x0, y0, size)``, one per image
    params : (b, k, len(COLUMNS)) transformations, ``k`` per image
    patch : output side in pixels

    Returns
    -------
    float tensor (b, k, C, patch, patch) on ``images.device``, bilinear samples: a
    transposed view of ``grid_sample``'s (b, C, k * patch, patch) output (no copy).
    """
    b, c, h, w = images.shape
    k = params.shape[1]
    theta = affine_thetas(boxes.repeat_interleave(k, dim=0), params.reshape(b * k, -1), h, w)
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, (b * k, 1, patch, patch), align_corners=False)
    grid = grid.reshape(b, k * patch, patch, 2)  # one tall grid per source image
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode,
                        align_corners=False)  # (b, C, k*patch, patch)
    return out.view(b, c, k, patch, patch).transpose(1, 2)


def rgb_to_hsv(rgb: torch.Tensor):
    """(…, 3, H, W) RGB in [0, 1] -> (h, s, v), each (…, H, W); h in [0, 1)."""
    r, g, b = rgb.unbind(-3)
    v = rgb.amax(-3)
    c = v - rgb.amin(-3)
    s = c / v.clamp_min(_HSV_EPS)
    cc = c.clamp_min(_HSV_EPS)
    h = torch.where(v == r, torch.remainder((g - b) / cc, 6.0),
                    torch.where(v == g, (b - r) / cc + 2.0, (r - g) / cc + 4.0))
    return h / 6.0, s, v


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`: (…, H, W) each -> (…, 3, H, W)."""
    n = torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype, device=h.device).view(3, 1, 1)
    k = torch.remainder(n + 6.0 * h.unsqueeze(-3), 6.0)
    f = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return v.unsqueeze(-3) - (v * s).unsqueeze(-3) * f


def color_jitter(rgb: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The paper's "contrast 2" and "color" jitter, one parameter set per patch.

    Parameters
    ----------
    rgb : (n, 3, H, W) float tensor in [0, 1] (any strides)
    params : (n, len(COLUMNS)) tensor (the hue, s_* and v_* columns are read)

    Returns
    -------
    (n, 3, H, W) contiguous tensor in [0, 1]: hue shifted (mod 1), saturation and value
    each ``clamp(x ** pow * mul + add, 0, 1)``. The same values as :func:`rgb_to_hsv`,
    jitter, :func:`hsv_to_rgb` (tested), in fewer passes.
    """
    n, c, h, w = rgb.shape
    out = torch.empty(n, c, 1, h, w, dtype=rgb.dtype, device=rgb.device)
    ColorJitter((n, 1, h, w), rgb.dtype, rgb.device)(rgb.unsqueeze(2), params.view(n, 1, -1), out)
    return out.view(n, c, h, w)


_SECTOR = (5.0, 3.0, 1.0)  # hsv_to_rgb offsets of R, G, B in sixths of a turn


class ColorJitter:
    """:func:`color_jitter` on (B, 3, K, H, W) blocks with reusable work buffers.

    Works in the layout ``grid_sample`` produces for B source images with K patches each,
    so no copy is needed before or after. Each step is an in-place or ``out=`` op on
    preallocated buffers (fresh temporaries per op cost more in page faults than the
    arithmetic), and each op covers a whole block (few ops: each parallel op is a
    thread barrier, ruinous on a shared machine).
    """

    def __init__(self, shape, dtype=torch.float32, device="cpu"):
        """shape: (B, K, H, W), the largest block this will be called on."""
        plane = lambda: torch.empty(shape, dtype=dtype, device=device)  # noqa: E731
        self.v, self.c, self.h6, self.s, self.t1, self.t2 = (plane() for _ in range(6))
        self.is_r = torch.empty(shape, dtype=torch.bool, device=device)
        self.is_g = torch.empty_like(self.is_r)
        bsz, k, h, w = shape
        self.k = torch.empty(bsz, 3, k, h, w, dtype=dtype, device=device)
        self.f = torch.empty_like(self.k)
        self.sector = torch.tensor(_SECTOR, dtype=dtype, device=device).view(1, 3, 1, 1, 1)

    def __call__(self, rgb, params, out):
        """rgb (b, 3, k, H, W) in [0, 1], params (b, k, 12), out (b, 3, k, H, W); b <= B."""
        b, _, k = rgb.shape[:3]
        p = params.to(device=rgb.device, dtype=rgb.dtype)
        col = lambda name: p[:, :, _COL[name]].view(b, k, 1, 1)  # noqa: E731
        v, c, h6, s, t1, t2, is_r, is_g = (
            x[:b, :k] for x in (self.v, self.c, self.h6, self.s, self.t1, self.t2,
                                self.is_r, self.is_g))
        kk, f = self.k[:b, :, :k], self.f[:b, :, :k]
        r, g, bl = rgb.unbind(1)
        torch.maximum(r, g, out=v)
        torch.maximum(v, bl, out=v)
        torch.minimum(r, g, out=c)
        torch.minimum(c, bl, out=c)
        torch.sub(v, c, out=c)                       # chroma
        torch.eq(v, r, out=is_r)
        torch.eq(v, g, out=is_g)
        # hue in sixths of a turn, in [-1, 5): sector offset + (difference / chroma)
        torch.sub(r, g, out=h6)
        torch.sub(bl, r, out=t1)
        torch.where(is_g, t1, h6, out=h6)
        torch.sub(g, bl, out=t1)
        torch.where(is_r, t1, h6, out=h6)
        h6.div_(torch.clamp(c, min=_HSV_EPS, out=t2))
        t1.fill_(4.0).masked_fill_(is_g, 2.0).masked_fill_(is_r, 0.0)
        h6.add_(t1)
        torch.div(c, torch.clamp(v, min=_HSV_EPS, out=t2), out=s)
        # x ** pow as exp(pow * log x): a tensor exponent takes a slow scalar path in pow
        s.clamp_(_POW_FLOOR, 1.0).log_().mul_(col("s_pow")).exp_().mul_(col("s_mul")) \
            .add_(col("s_add")).clamp_(0.0, 1.0)
        v.clamp_(_POW_FLOOR, 1.0).log_().mul_(col("v_pow")).exp_().mul_(col("v_mul")) \
            .add_(col("v_add")).clamp_(0.0, 1.0)
        s.mul_(v)                                    # v * s
        torch.add(h6.unsqueeze(1), self.sector, out=kk)
        kk.add_((6.0 * p[:, :, _COL["hue"]]).view(b, 1, k, 1, 1))
        torch.div(kk, 6.0, out=f).floor_().mul_(6.0)
        kk.sub_(f)                                   # mod 6
        torch.sub(kk, 4.0, out=f).neg_()
        torch.minimum(kk, f, out=f).clamp_(0.0, 1.0)
        torch.addcmul(v.unsqueeze(1), s.unsqueeze(1), f, value=-1.0, out=out)
        return out
