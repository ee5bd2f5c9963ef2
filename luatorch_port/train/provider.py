"""The starter's preprocessing: ``Provider:normalize()`` and the image ops it uses.

Port of provider.lua of the TA's starter (jakezhaojb/ds-ga-1008-a2) and of
``image.rgb2yuv``, ``image.yuv2rgb``, ``image.gaussian1D`` (torch/image 5aa1881). On 0..255
float32 pixels: RGB -> YUV; Y through ``nn.SpatialContrastiveNormalization(1,
image.gaussian1D(7))``; U and V standardised with the *training* set's mean and unbiased
std, which :func:`fit_normalization` returns so val/test/extra reuse them.

Deviations: the Lua loop normalises one image at a time; :func:`normalize` does whole
chunks (same numbers). Mean and std are accumulated in float64, as TH does for float
tensors.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch

from .. import t7
from ..util.errors import A2Error
from ..nn.normalization import SpatialContrastiveNormalization

# image.rgb2yuv / image.yuv2rgb coefficients (torch/image init.lua).
RGB2YUV = ((0.299, 0.587, 0.114),
           (-0.14713, -0.28886, 0.436),
           (0.615, -0.51499, -0.10001))
YUV2RGB_R_V = 1.13983
YUV2RGB_G_U, YUV2RGB_G_V = -0.39465, -0.58060
YUV2RGB_B_U = 2.03211
# image.gaussian1D defaults.
GAUSS_SIGMA = 0.25
GAUSS_AMPLITUDE = 1.0
GAUSS_MEAN = 0.5
# provider.lua: nn.SpatialContrastiveNormalization(1, image.gaussian1D(7)).
SCN_KERNEL_SIZE = 7
CHUNK = 256  # images per normalisation step (memory bound, not a result-changing setting)

__all__ = ["rgb2yuv", "yuv2rgb", "gaussian1D", "SpatialContrastiveNormalization", "NormStats",
           "fit_normalization", "normalize", "fit_normalize"]


def _channels(img, fn):
    if img.dim() not in (3, 4) or img.size(-3) != 3:
        raise A2Error(f"{fn}: expected 3xHxW or Nx3xHxW, got shape {tuple(img.shape)}")
    if not img.is_floating_point():
        img = img.float()
    return img


def _axpy(acc, x, coef):
    # TH's add(value, src): acc + value*src with the product rounded first (no fused
    # multiply-add, which PyTorch's add_(alpha=) uses), in the tensor's dtype.
    return acc + x * coef


def _lincomb(chans, coefs):
    # TH's zero():add(c1, a):add(c2, b):add(c3, c): accumulate in that order
    out = torch.zeros_like(chans[0])
    for c, coef in zip(chans, coefs):
        out = _axpy(out, c, coef)
    return out


def rgb2yuv(img: torch.Tensor) -> torch.Tensor:
    """Port of image.rgb2yuv: 3xHxW (or Nx3xHxW) RGB -> YUV, same dtype (uint8 -> float32)."""
    img = _channels(img, "rgb2yuv")
    r, g, b = img.unbind(-3)
    return torch.stack([_lincomb((r, g, b), row) for row in RGB2YUV], dim=-3)


def yuv2rgb(img: torch.Tensor) -> torch.Tensor:
    """Port of image.yuv2rgb: 3xHxW (or Nx3xHxW) YUV -> RGB, same dtype."""
    img = _channels(img, "yuv2rgb")
    y, u, v = img.unbind(-3)
    r = _axpy(y, v, YUV2RGB_R_V)
    g = _axpy(_axpy(y, u, YUV2RGB_G_U), v, YUV2RGB_G_V)
    b = _axpy(y, u, YUV2RGB_B_U)
    return torch.stack([r, g, b], dim=-3)


def gaussian1D(size: int, sigma: float = GAUSS_SIGMA, amplitude: float = GAUSS_AMPLITUDE,
               normalize: bool = False, mean: float = GAUSS_MEAN,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Port of image.gaussian1D: g[i] = amplitude*exp(-((i - center)/(sigma*size))²/2), i = 1..size.

    ``center = mean*size + 0.5`` (1-based), so gaussian1D(7) peaks at 1 in the middle.
    """
    if size < 1:
        raise A2Error(f"gaussian1D: size={size} must be >= 1")
    i = torch.arange(1, size + 1, dtype=torch.float64)
    center = mean * size + 0.5
    g = amplitude * torch.exp(-(((i - center) / (sigma * size)) ** 2) / 2)
    if normalize:
        g = g / g.sum()
    return g.to(dtype)


@dataclass(frozen=True)
class NormStats:
    """The training set's U and V statistics (provider.lua's trainData.mean_u, std_u, ...)."""

    mean_u: float
    std_u: float
    mean_v: float
    std_v: float

    def as_dict(self):
        return asdict(self)


def _yuv_chunks(images):
    if images.dim() != 4 or images.size(1) != 3:
        raise A2Error(f"provider: expected Nx3xHxW images, got shape {tuple(images.shape)}")
    for start in range(0, images.size(0), CHUNK):
        yield start, rgb2yuv(images[start:start + CHUNK].float())


def fit_normalization(images: torch.Tensor) -> NormStats:
    """U and V mean and unbiased std over all pixels of the training images (N x 3 x H x W,
    uint8 or 0..255 float)."""
    if images.size(0) < 1 or images.numel() < 6:
        raise A2Error(f"fit_normalization: need at least one image with 2+ pixels, got "
                      f"shape {tuple(images.shape)}")
    n = s_u = s_v = 0.0
    for _, yuv in _yuv_chunks(images):
        n += yuv[:, 1].numel()
        s_u += yuv[:, 1].double().sum().item()
        s_v += yuv[:, 2].double().sum().item()
    mean_u, mean_v = s_u / n, s_v / n
    q_u = q_v = 0.0
    for _, yuv in _yuv_chunks(images):
        q_u += ((yuv[:, 1].double() - mean_u) ** 2).sum().item()
        q_v += ((yuv[:, 2].double() - mean_v) ** 2).sum().item()
    return NormStats(mean_u, (q_u / (n - 1)) ** 0.5, mean_v, (q_v / (n - 1)) ** 0.5)


def normalize(images: torch.Tensor, stats: NormStats, *, progress=None) -> torch.Tensor:
    """Provider:normalize for one split: N x 3 x H x W (uint8 or 0..255 float) -> float32 YUV.

    Y is contrast-normalised per image, U and V standardised with ``stats`` (the training
    set's, from :func:`fit_normalization`). ``progress(n)`` is called after each chunk.
    """
    # provider.lua runs under torch.setdefaulttensortype("torch.FloatTensor"): a float32 kernel
    scn = SpatialContrastiveNormalization(1, gaussian1D(SCN_KERNEL_SIZE, dtype=torch.float32))
    out = torch.empty(images.shape, dtype=torch.float32)
    with torch.no_grad():
        for start, yuv in _yuv_chunks(images):
            yuv[:, :1] = scn(yuv[:, :1])
            yuv[:, 1].add_(-stats.mean_u).div_(stats.std_u)
            yuv[:, 2].add_(-stats.mean_v).div_(stats.std_v)
            out[start:start + yuv.size(0)] = yuv
            if progress is not None:
                progress(yuv.size(0))
    return out


def fit_normalize(train: torch.Tensor, *others: torch.Tensor):
    """``(train_out, stats, [other_out, ...])``: the starter's normalize() on train and val/test."""
    stats = fit_normalization(train)
    return normalize(train, stats), stats, [normalize(o, stats) for o in others]


# -- the statistics on disk: norm.t7 beside model.net ----------------------------------------

NORM_NAME = "norm.t7"
NORM_KEYS = ("mean_u", "std_u", "mean_v", "std_v")


def save_norm(stats, path) -> None:
    t7.save({k: float(getattr(stats, k)) for k in NORM_KEYS}, path)


def load_norm(path):
    """``NormStats`` from a ``norm.t7`` table or the starter's ``provider.t7`` (trainData.mean_u...)."""
    obj = t7.load(path)
    table = _field(obj, "trainData") if _has(obj, "trainData") else obj
    values = {}
    for key in NORM_KEYS:
        if not _has(table, key):
            raise A2Error(f"{os.fspath(path)}: no field {key!r}; expected a table "
                          f"{{mean_u, std_u, mean_v, std_v}} (norm.t7) or a provider.t7")
        values[key] = float(_field(table, key))
    return NormStats(**values)


def _has(obj, key):
    fields = getattr(obj, "fields", obj)
    return isinstance(fields, dict) and key in fields


def _field(obj, key):
    return getattr(obj, "fields", obj)[key]
