"""Exemplar-CNN transformations: random parameters, batched affine warps, colour jitter.

Port of the surrogate-class augmentation of Dosovitskiy, Springenberg, Riedmiller and Brox,
"Discriminative Unsupervised Feature Learning with Convolutional Neural Networks"
(NIPS 2014), section 2 and 4.1. Two presets (:data:`PRESETS`):

* ``report`` (the default): the three transformations of the 2016 report (part 2.1),
  rotation in [-20, 20] degrees, scale in [0.7, 1.4], translation up to 0.1 of the patch
  in x and y; no flip, no colour.
* ``exemplar``: the paper's full set, which adds the horizontal flip and its "contrast 2" /
  "color" jitter (saturation and value raised to a power in [0.25, 4], multiplied by
  [0.7, 1.4], added [-0.1, 0.1]; hue shifted by [-0.1, 0.1]).

Geometry. A seed window is a square ``(x0, y0, size)`` in source-pixel coordinates (the
image spans ``[0, W] x [0, H]``, pixel ``i`` covers ``[i, i+1)``). A transformation maps
the output patch's centred coordinates ``u`` (in ``[-1, 1]``, ``align_corners=False``) to
the source point ``c + (size / (2 * scale)) * R(angle) @ F @ u + (size / scale) * (tx, ty)``,
where ``c`` is the window centre, ``F`` flips x when ``flip`` is set and ``R`` is the
standard rotation matrix. The patch shows ``size / scale`` source pixels, so a translation
``tx`` moves its content by ``tx`` of the patch side (``tx * P`` output pixels), as the
report measures it, at every scale. With the y axis pointing down, ``angle = +90`` gives exactly
``torch.rot90(patch, 1, dims=(-2, -1))``. All transformations of one source image share
one ``grid_sample`` call (their grids are stacked along the height axis), so the source
is never copied per transformation; grids are built by broadcasting (:func:`affine_grid`).

Colour. :func:`color_jitter_reference` is the jitter written out (RGB to HSV, jitter, back);
:class:`ColorJitter` computes the same values (to 1e-4, tested) in fused form on
``grid_sample``'s output: two per-pixel planes ``A`` and ``B`` and one trapezoid per
channel, without forming HSV (its docstring gives the algebra).

Deviations: sampling is bilinear with **reflection** padding (the paper does not say; PIL
and Lua's ``image.rotate`` fill with black, which would teach the net black corners).
The report applies its transformations after normalisation; here they are applied to the
uint8 pixels and the patches are standardised per channel when trained on, which is the
same up to the rounding to uint8 (bilinear sampling is linear in the pixel values). The
paper's "contrast 1" (scaling the projections onto the pixels' principal components)
is not implemented. Power and the scale factor are drawn log-uniformly (so that a power
of 0.25 is as likely as 4 and "no change" is the median); the rest uniformly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..util.errors import A2Error

# Paper section 4.1 / report 2.1 ranges.
ROTATION_DEG = (-20.0, 20.0)
SCALE = (0.7, 1.4)
TRANSLATE = 0.1          # fraction of the output patch side, in x and in y
FLIP = 0.5               # paper: horizontal flip with probability 1/2 (exemplar preset)
POWER = (0.25, 4.0)      # "contrast 2": saturation and value raised to this power
MULTIPLY = (0.7, 1.4)    # ... multiplied by this factor
ADD = (-0.1, 0.1)        # ... and this added
HUE = (-0.1, 0.1)        # "color": added to the hue (a full turn is 1)

# One row of parameters per transformation, in this column order (also the file's order).
COLUMNS = ("angle", "scale", "tx", "ty", "flip", "hue",
           "s_pow", "s_mul", "s_add", "v_pow", "v_mul", "v_add")
_COL = {name: i for i, name in enumerate(COLUMNS)}
IDENTITY = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0)

PADDING = "reflection"   # grid_sample padding: no black corners (see Deviations)

_HSV_EPS = 1e-8
_POW_FLOOR = 1e-30  # 0 ** p as exp(p * log 1e-30) <= 3e-8 for p >= 0.25 (float32 keeps it)


@dataclass(frozen=True)
class TransformRanges:
    """Ranges the random transformations are drawn from.

    The defaults are the ``report`` preset (rotation, scale, translation); ``flip`` is the
    probability of a horizontal flip and ``color`` switches the hue/saturation/value
    jitter on (the ``exemplar`` preset sets both, see :data:`PRESETS`).
    """

    rotation: tuple = ROTATION_DEG
    scale: tuple = SCALE
    translate: float = TRANSLATE
    flip: float = 0.0
    color: bool = False
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


# The report's three transformations, and Dosovitskiy et al.'s full set.
PRESETS = {
    "report": TransformRanges(),
    "exemplar": TransformRanges(flip=FLIP, color=True),
}
DEFAULT_PRESET = "report"


def preset(name: str, **overrides) -> TransformRanges:
    """The ranges of preset ``name`` (:data:`PRESETS`), with ``overrides`` (fields whose
    value is None are left at the preset's)."""
    if name not in PRESETS:
        raise A2Error(f"transformation preset {name!r} is not one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


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
    shown = 2.0 * half  # source pixels across the patch: translations are fractions of it
    cx = boxes[:, 0] + size / 2 + shown * params[:, _COL["tx"]]
    cy = boxes[:, 1] + size / 2 + shown * params[:, _COL["ty"]]
    theta = torch.empty(len(boxes), 2, 3, dtype=torch.float64)
    # source = c + half * R @ diag(sign, 1) @ u, then x_norm = 2 x / W - 1
    theta[:, 0, 0] = 2.0 / width * half * cos * sign
    theta[:, 0, 1] = 2.0 / width * half * -sin
    theta[:, 0, 2] = 2.0 * cx / width - 1.0
    theta[:, 1, 0] = 2.0 / height * half * sin * sign
    theta[:, 1, 1] = 2.0 / height * half * cos
    theta[:, 1, 2] = 2.0 * cy / height - 1.0
    return theta


def affine_grid(theta: torch.Tensor, patch: int, dtype=torch.float32) -> torch.Tensor:
    """``F.affine_grid(theta, (n, 1, patch, patch), align_corners=False)`` by broadcasting.

    The grid of an affine map is the outer sum of one row and one column per output axis
    (:func:`grid_terms`, :func:`compose_grid`): one broadcast add instead of
    ``affine_grid``'s batched (n, P*P, 3) x (n, 3, 2) matmul, which cost more than the
    sampling itself (docs/surrogate.md).

    Parameters
    ----------
    theta : (n, 2, 3) tensor, as from :func:`affine_thetas` (float64 keeps the terms exact
        before the one rounding to ``dtype``)
    patch : output side in pixels

    Returns
    -------
    contiguous (n, patch, patch, 2) tensor: ``grid[i, y, x] = theta[i] @ (u_x, u_y, 1)`` with
    ``u = (2 * index + 1) / patch - 1``.
    """
    n = theta.shape[0]
    along_x, along_y = grid_terms(theta, patch, dtype, theta.device)
    planes = torch.empty(n, 2, 1, patch, patch, dtype=dtype, device=theta.device)
    grid = compose_grid(along_x.unsqueeze(2), along_y.unsqueeze(2), planes)
    return grid.contiguous()


def grid_terms(theta: torch.Tensor, patch: int, dtype=torch.float32, device=None):
    """The two terms of :func:`affine_grid`: ``(along_x, along_y)``, each (n, 2, patch).

    ``grid[i, y, x, d] = along_y[i, d, y] + along_x[i, d, x]``; computed in ``theta``'s
    dtype, returned in ``dtype`` on ``device``.
    """
    u = (torch.arange(patch, dtype=theta.dtype, device=theta.device) * 2.0 + 1.0) / patch - 1.0
    along_x = theta[:, :, 0:1] * u
    along_y = theta[:, :, 1:2] * u + theta[:, :, 2:3]
    device = theta.device if device is None else device
    return along_x.to(device=device, dtype=dtype), along_y.to(device=device, dtype=dtype)


def compose_grid(along_x: torch.Tensor, along_y: torch.Tensor,
                 planes: torch.Tensor) -> torch.Tensor:
    """The tall sampling grid of ``k`` patches of each of ``b`` images.

    Parameters
    ----------
    along_x, along_y : (b, 2, k, P) terms from :func:`grid_terms` (any strides)
    planes : (b, 2, k, P, P) buffer, written: the x and y coordinates as two planes

    Returns
    -------
    (b, k * P, P, 2) view of ``planes`` for ``grid_sample`` (x/y as planes sample as fast
    as interleaved, and one contiguous add fills them faster than two strided adds).
    """
    b, _, k, patch = along_x.shape
    torch.add(along_y.unsqueeze(4), along_x.unsqueeze(3), out=planes)
    return planes.view(b, 2, k * patch, patch).permute(0, 2, 3, 1)


def warp(images: torch.Tensor, boxes: torch.Tensor, params: torch.Tensor, patch: int,
         padding_mode: str = PADDING) -> torch.Tensor:
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
    grid = affine_grid(theta.to(images.device), patch, images.dtype)
    out = sample(images, grid.view(b, k * patch, patch, 2), padding_mode)
    return out.view(b, c, k, patch, patch).transpose(1, 2)


def reach(theta: torch.Tensor, patch: int, height: int, width: int) -> int:
    """How many pixels beyond the image's edges the bilinear samples of ``theta``'s grids
    ((..., 2, 3) ``affine_grid`` matrices) reach, at most, with one pixel to spare for the
    float32 rounding of the grid (0: all inside)."""
    theta = theta.reshape(-1, 2, 3).double()
    if len(theta) == 0:
        return 0
    edge = 1.0 - 1.0 / patch                      # the grid's corner points are at +-edge
    half = edge * theta[:, :, :2].abs().sum(-1)   # (n, 2): reach around the centre
    size = torch.tensor([width, height], dtype=torch.float64)
    lo = (((theta[:, :, 2] - half) + 1.0) * size - 1.0) / 2.0   # pixels (align_corners=False)
    hi = (((theta[:, :, 2] + half) + 1.0) * size - 1.0) / 2.0
    out = torch.maximum(-torch.floor(lo), torch.floor(hi) + 2.0 - size).amax()
    return max(0, int(out) + 1)


def mirror_indices(lo: int, hi: int, size: int) -> torch.Tensor:
    """Indices ``lo..hi`` (inclusive) mirrored into ``0..size-1`` the way
    ``padding_mode="reflection"`` mirrors with ``align_corners=False``: about the outer
    pixel edges, so the edge pixel repeats (``-1 -> 0``, ``size -> size - 1``)."""
    j = torch.arange(lo, hi + 1).remainder(2 * size)
    return torch.where(j >= size, 2 * size - 1 - j, j)


def pad_mirrored(images: torch.Tensor, margin: int) -> torch.Tensor:
    """``images`` (b, C, H, W) with ``margin`` pixels on every side mirrored in as
    ``padding_mode="reflection"`` mirrors (:func:`mirror_indices`): (b, C, H + 2m, W + 2m)."""
    h, w = images.shape[-2:]
    if margin <= min(h, w):  # one mirror image each side: copies, cheaper than a gather
        m = margin
        wide = torch.cat([images[..., :m].flip(-1), images, images[..., w - m:].flip(-1)], dim=-1)
        return torch.cat([wide[..., :m, :].flip(-2), wide, wide[..., h - m:, :].flip(-2)], dim=-2)
    rows = mirror_indices(-margin, h - 1 + margin, h).to(images.device)
    cols = mirror_indices(-margin, w - 1 + margin, w).to(images.device)
    return images.index_select(2, rows).index_select(3, cols)


def theta_in_padded(theta: torch.Tensor, margin: int, height: int, width: int) -> torch.Tensor:
    """``theta`` (..., 2, 3) re-expressed in the normalised coordinates of the image padded
    by ``margin`` pixels on every side (:func:`pad_mirrored`): the same source points,
    float64.

    A pixel coordinate ``x = ((u + 1) W - 1) / 2`` is ``x + m`` in the padded image of
    width ``W' = W + 2 m``, so ``u' = (2 (x + m) + 1) / W' - 1 = u W / W'``: the centre
    stays the centre.
    """
    theta = theta.double().clone()
    for axis, size in enumerate((width, height)):
        theta[..., axis, :] *= size / (size + 2.0 * margin)
    return theta


def sample(images: torch.Tensor, grid: torch.Tensor, padding_mode: str = PADDING) -> torch.Tensor:
    """``grid_sample`` as this module uses it: bilinear, ``align_corners=False``."""
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode,
                         align_corners=False)


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
    n = torch.tensor(_SECTOR, dtype=h.dtype, device=h.device).view(3, 1, 1)
    k = torch.remainder(n + 6.0 * h.unsqueeze(-3), 6.0)
    f = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return v.unsqueeze(-3) - (v * s).unsqueeze(-3) * f


def color_jitter_reference(rgb: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The colour jitter written out: :func:`rgb_to_hsv`, jitter, :func:`hsv_to_rgb`.

    The oracle of :class:`ColorJitter` (tests, benchmark). ``rgb`` (n, 3, H, W) in [0, 1],
    ``params`` (n, len(COLUMNS)); returns (n, 3, H, W) in ``rgb``'s dtype.
    """
    p = params.to(device=rgb.device, dtype=rgb.dtype).view(-1, len(COLUMNS), 1, 1)
    col = lambda name: p[:, _COL[name]]  # noqa: E731
    h, s, v = rgb_to_hsv(rgb)
    h = torch.remainder(h + col("hue"), 1.0)
    s = (s.clamp_min(_POW_FLOOR) ** col("s_pow") * col("s_mul") + col("s_add")).clamp(0.0, 1.0)
    v = (v.clamp_min(_POW_FLOOR) ** col("v_pow") * col("v_mul") + col("v_add")).clamp(0.0, 1.0)
    return hsv_to_rgb(h, s, v)


def color_jitter(rgb: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The paper's "contrast 2" and "color" jitter, one parameter set per patch.

    Parameters
    ----------
    rgb : (n, 3, H, W) float tensor in [0, 1] (any strides; not modified)
    params : (n, len(COLUMNS)) tensor (the hue, s_* and v_* columns are read)

    Returns
    -------
    (n, 3, H, W) contiguous tensor in [0, 1]: hue shifted (mod 1), saturation and value
    each ``clamp(x ** pow * mul + add, 0, 1)``: :func:`color_jitter_reference`'s values
    (tested to 1e-4) by :class:`ColorJitter`'s fused arithmetic.
    """
    n, c, h, w = rgb.shape
    x = rgb.transpose(0, 1).reshape(1, c, n, h * w).clone()  # (1, 3, n, H*W), ColorJitter's layout
    constants = JitterConstants(params.reshape(1, n, -1), 1.0, rgb.dtype, rgb.device)
    ColorJitter(n * h * w, rgb.dtype, rgb.device).apply(x, constants)
    return x.view(c, n, h, w).transpose(0, 1).contiguous()


_SECTOR = (5.0, 3.0, 1.0)  # hsv_to_rgb offsets of R, G, B in sixths of a turn


class JitterConstants:
    """Per-patch constants of :class:`ColorJitter` for (b, k) transformations.

    ``power``, ``mul``, ``add``: (2, b, k, 1) rows for (V, S): the power (taken as
    ``exp2(power * log2 x)``), ``mul`` and ``add`` times ``scale`` (both rows are
    clamped to [0, scale] in one op); ``offset``: (b, 3, k, 1) the hue offsets ``o_x`` of
    R, G, B; ``scale``.
    """

    def __init__(self, params: torch.Tensor, scale: float = 1.0, dtype=torch.float32,
                 device="cpu", _parts=None):
        if _parts is not None:
            self.power, self.mul, self.add, self.offset, self.scale = _parts
            return
        self.scale = float(scale)
        p = params.to(device=device, dtype=torch.float64)
        col = lambda name: p[..., _COL[name]]  # noqa: E731
        rows = lambda name: (torch.stack([col("v_" + name), col("s_" + name)])  # noqa: E731
                             .unsqueeze(-1).to(dtype))
        self.power = rows("pow")
        self.mul = rows("mul") * scale
        self.add = rows("add") * scale
        sector = torch.tensor(_SECTOR, dtype=torch.float64, device=device).view(1, 3, 1)
        offset = torch.remainder(sector + 6.0 * col("hue").unsqueeze(1), 6.0) - 5.0
        self.offset = offset.unsqueeze(-1).to(dtype)

    def __getitem__(self, index):
        """Constants of ``params[index]`` for an index over (b, k), e.g. ``(slice, slice)``."""
        i, j = index
        return JitterConstants(None, _parts=(self.power[:, i, j], self.mul[:, i, j],
                                             self.add[:, i, j], self.offset[i, :, j], self.scale))


_LOG2_HSV_EPS = math.log2(_HSV_EPS)
_TINY = torch.finfo(torch.float32).tiny  # log of 0 (or of a subnormal) takes a slow path


def _log2_into(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``log2(x)`` into ``out``; on the CPU through numpy, whose SIMD float32 ``log2`` is
    several times faster than torch's and agrees to float32 rounding (``log2(0) = -inf``,
    which the jitter turns into ``0 ** p = 0``). Elsewhere torch's, with ``x`` floored at
    float32's smallest normal (``log`` of 0 takes a slow path there)."""
    if x.device.type == "cpu" and x.dtype == out.dtype and not out.requires_grad:
        with np.errstate(divide="ignore"):
            np.log2(x.numpy(), out=out.numpy())
        return out
    return torch.clamp(x, min=_TINY, out=out).log2_()


class ColorJitter:
    """:func:`color_jitter` in place on ``grid_sample``'s (b, 3, k, L) output, with work buffers.

    The arithmetic (``L`` pixels of ``k`` patches of ``b`` images; hue ``h`` in sixths of a
    turn, ``V`` the max channel, ``c`` the chroma, ``S = c / V``):

    * HSV to RGB is ``x = V - V S f(k_x)``, ``k_x = (n_x + h) mod 6`` with ``n = (5, 3, 1)``
      for (R, G, B) and the trapezoid ``f(k) = clamp(min(k, 4 - k), 0, 1)``. With the hue
      shift ``d`` (in turns), ``1 - f(k_x) = clamp(||h + o_x| - 3|, 1, 2) - 1`` where the
      per-patch, per-channel ``o_x = ((n_x + 6 d) mod 6) - 5`` keeps ``h + o_x`` in
      [-6, 6): two ``abs`` instead of a ``remainder`` per pixel and channel.
    * So each output channel is ``A + B g_x`` with ``g_x = clamp(||h + o_x| - 3|, 1, 2)``,
      ``B = V' S'`` and ``A = V' - 2 B``, where ``S' = clamp(S^p m + a)`` and
      ``V' = clamp(V^p m + a)``: all the per-pixel work except 6 ops runs on one plane
      instead of three, and the HSV triple is never formed.
    * ``V^p = exp2(p log2 V)``, ``S^p`` likewise with ``log2 S = log2 c - log2 V``; the
      S and V chains run as one op each on two adjacent planes. ``exp2`` is faster than
      ``exp`` on the CPU, and numpy's ``log2`` than torch's (:func:`_log2_into`); a tensor
      exponent takes a slow scalar path in ``pow``.
      ``S`` uses ``max(V, 1e-8)`` as in :func:`rgb_to_hsv`; ``0 ** p`` is 0 on the CPU
      (``log2 0 = -inf``); elsewhere ``V`` and ``c`` are floored at float32's smallest
      normal, so it comes out below 1e-9 for ``p >= 0.25``.
    * The hue takes the max channel as masks in float and selects with ``lerp`` by 0 or 1
      (exact; ``eq`` into a float tensor is vectorised, ``where`` with a bool mask is not).

    Every step is an in-place or ``out=`` op on preallocated planes (fresh temporaries
    cost more in page faults than the arithmetic); callers keep blocks small (a few
    hundred patches) so the planes stay in cache.
    """

    N_PLANES = 8

    def __init__(self, n_pixels: int, dtype=torch.float32, device="cpu"):
        """n_pixels: the most ``b * k * L`` this will be called on."""
        self.n_pixels = int(n_pixels)
        self.planes = torch.empty(self.N_PLANES, self.n_pixels, dtype=dtype, device=device)

    def apply(self, rgb: torch.Tensor, constants: JitterConstants,
              bias: float = 0.0) -> torch.Tensor:
        """Jitter ``rgb`` in place.

        Parameters
        ----------
        rgb : contiguous (b, 3, k, L) float tensor in [0, 1] (overwritten)
        constants : :class:`JitterConstants` of the (b, k) transformations, made with a
            ``scale``
        bias : added to the result (with scale 255, 0.5 makes truncation to uint8 a
            rounding)

        Returns
        -------
        ``rgb``, holding ``scale * jittered + bias``.
        """
        b, _, k, length = rgb.shape
        n = b * k * length
        if n > self.n_pixels:
            raise ValueError(f"ColorJitter sized for {self.n_pixels} pixels, got {n}")
        planes = self.planes[:, :n].view(self.N_PLANES, b, k, length)
        v, c, h, t, is_r, is_g = planes[:6]
        logs = planes[6:8]                      # (log2 V, log2 S), then (scale V', scale S')
        lv, ls = logs
        r, g, bl = rgb.unbind(1)
        torch.maximum(torch.maximum(r, g, out=v), bl, out=v)  # cheaper than amax over dim 1
        torch.minimum(torch.minimum(r, g, out=c), bl, out=c)
        torch.sub(v, c, out=c)                           # chroma
        torch.eq(v, r, out=is_r)
        torch.eq(v, g, out=is_g)
        # hue times chroma, in sixths: B max r - g + 4c, G max b - r + 2c, R max g - b
        torch.sub(r, g, out=h).add_(c, alpha=4.0)
        h.lerp_(torch.sub(bl, r, out=t).add_(c, alpha=2.0), is_g)  # lerp by 0 or 1: exact
        h.lerp_(torch.sub(g, bl, out=t), is_r)          # R wins ties, as in rgb_to_hsv
        h.div_(torch.clamp(c, min=_HSV_EPS, out=t))      # hue in sixths, in [-1, 5]
        _log2_into(planes[0:2], logs)                    # log2 V, log2 c (adjacent)
        ls.sub_(torch.clamp(lv, min=_LOG2_HSV_EPS, out=t))      # log2 S, S = c / max(V, 1e-8)
        scale = constants.scale
        logs.mul_(constants.power).exp2_().mul_(constants.mul).add_(constants.add) \
            .clamp_(0.0, scale)                          # scale V', scale S'
        ls.mul_(lv)                                      # scale B = scale^2 V' S'
        torch.add(lv, ls, alpha=-2.0 / scale, out=v).add_(bias)  # A = scale V' - 2 B + bias
        torch.add(h.unsqueeze(1), constants.offset, out=rgb)
        rgb.abs_().sub_(3.0).abs_().clamp_(1.0, 2.0)
        return torch.addcmul(v.unsqueeze(1), ls.unsqueeze(1), rgb, value=1.0 / scale, out=rgb)
