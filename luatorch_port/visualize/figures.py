"""Report part 3.1: figures made of image grids, and the training curves.

Port of image.minmax / image.toDisplayTensor (torch/image init.lua), of Coates' show_centroids.m
(kmeans_demo) and of optim.Logger's file format (torch/optim Logger.lua) for reading ``val.log``.
Every function here returns the numbers behind a figure (a tensor or a dict); writing the PNG
is a separate, last step (:func:`save_image`, :func:`save_curves`).

Deviations: ``to_display_tensor`` returns a new tensor and never writes into its input (image's
``minmax{inplace=true}`` is not offered). ``centroid_grid`` can un-whiten the centroids before
display (Coates shows them in whitened space, where they look like edges; un-whitened they look
like the image patches they summarise), see its docstring.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from ..util.errors import A2Error
from ..util.files import atomic_output

# image.toDisplayTensor's defaults (torch/image init.lua, dok.unpack of toDisplayTensor).
DISPLAY_PADDING = 0
MAX_ZOOM = 64  # nearest-neighbour upscaling beyond this only makes huge PNGs
DISPLAY_NROW = 6
# show_centroids.m: the background value (100, "pixel values 0-255") and the fixed display range.
CENTROID_BACKGROUND = 100.0
CENTROID_RANGE = (-1.5, 1.5)
# zlib level of the PNGs written by save_image: level 1 writes the t-SNE image map (1024² of
# photographs) faster than Pillow's default 6, for a file a few per cent larger (docs/visualize.md).
PNG_COMPRESS_LEVEL = 1


def minmax(tensor: torch.Tensor, min=None, max=None, symmetric=False, saturate=True) -> torch.Tensor:
    """Port of image.minmax: rescale ``tensor`` to [0, 1] (a new float64 tensor).

    ``min``/``max`` default to the tensor's own; ``symmetric`` uses [-m, m] with
    m = max(|min|, |max|); ``saturate`` clamps to [0, 1] and applies only when ``min`` or
    ``max`` was given (as in image.minmax).
    """
    out = tensor.detach().to(torch.float64).clone()
    if min is None and max is None:
        saturate = False
    fmin = 0.0
    if min is None:
        if symmetric:
            fmin = builtin_max(abs(out.min().item()), abs(out.max().item()))
            min = -fmin
        else:
            min = out.min().item()
    if min != 0:
        out.sub_(min)
    if max is None:
        max = 2 * fmin if symmetric else out.max().item()
    else:
        max = max - min
    if max != 0:
        out.div_(max)
    if saturate:
        out.clamp_(0.0, 1.0)
    return out


builtin_max = max  # ``minmax`` keeps image.minmax's argument names, which shadow max().


def to_display_tensor(input, padding: int = DISPLAY_PADDING, nrow: int = DISPLAY_NROW,
                      scale_each: bool = False, min=None, max=None, symmetric: bool = False,
                      saturate: bool = True) -> torch.Tensor:
    """Port of image.toDisplayTensor: a grid of images, min-max scaled to [0, 1].

    Parameters
    ----------
    input : tensor or list of tensors
        K×C×H×W with C in {1, 3} (colour grid), K×H×W (one map per channel), H×W or C×H×W
        (a single image, only rescaled), or a list of same-sized images.
    padding : int, default 0
        Pixels after each cell; ``padding // 2`` of them come before it (Lua's ``padding/2``
        truncated by ``narrow``). Padding pixels take the input's maximum.
    nrow : int, default 6
        Images per row.
    scale_each : bool, default False
        For a list input only: min-max each image on its own first.

    Returns
    -------
    float64 tensor, C×(rows·(H+padding))×(nrow·(W+padding)) (or 2-D for K×H×W input).
    """
    kw = dict(min=min, max=max, symmetric=symmetric, saturate=saturate)
    if isinstance(input, (list, tuple)):
        if not input:
            raise A2Error("to_display_tensor: the list of images is empty")
        first = input[0]
        ndim = first.dim()
        channels = 1 if ndim == 2 else first.shape[0]
        packed = torch.empty(len(input), channels, first.shape[-2], first.shape[-1], dtype=torch.float64)
        for i, img in enumerate(input):
            if tuple(img.shape[-2:]) != tuple(first.shape[-2:]):
                raise A2Error(f"to_display_tensor: image {i} is {tuple(img.shape)}, "
                              f"expected the size of image 0, {tuple(first.shape)}")
            src = minmax(img, **kw) if scale_each else img.detach().to(torch.float64)
            packed[i].copy_(src.reshape(channels, *first.shape[-2:]))
        return to_display_tensor(packed, padding=padding, nrow=nrow, **kw)
    if not torch.is_tensor(input):
        raise A2Error(f"to_display_tensor: expected a tensor or a list of tensors, got {type(input).__name__}")
    x = input.detach().to(torch.float64)
    if x.dim() == 4 and x.shape[1] in (1, 3):
        return minmax(_grid(x, padding, nrow), **kw)
    if x.dim() == 2 or (x.dim() == 3 and x.shape[0] in (1, 3)):
        return minmax(x, **kw)
    if x.dim() == 3:
        return minmax(_grid(x.unsqueeze(1), padding, nrow)[0], **kw)
    raise A2Error(f"to_display_tensor: input must be H×W, K×H×W or K×3×H×W, got shape {tuple(x.shape)}")


def _grid(x: torch.Tensor, padding: int, nrow: int, pad_value=None) -> torch.Tensor:
    """K×C×H×W -> C×(ymaps·(H+p))×(xmaps·(W+p)), cells placed as Lua does.

    The rest is ``pad_value`` (default x.max(), as Lua)."""
    nmaps, channels, h, w = x.shape
    xmaps = min(nrow, nmaps)
    ymaps = math.ceil(nmaps / xmaps)
    height, width = h + padding, w + padding
    fill = x.max().item() if pad_value is None else float(pad_value)
    grid = torch.full((channels, height * ymaps, width * xmaps), fill, dtype=x.dtype)
    off = padding // 2
    for k in range(nmaps):
        y, xx = divmod(k, xmaps)
        grid[:, y * height + off:y * height + off + h, xx * width + off:xx * width + off + w] = x[k]
    return grid


def first_conv_weight(model: torch.nn.Module) -> torch.Tensor:
    """The weight (nOut×nIn×kH×kW) of the first 2-D convolution in ``model`` (depth-first order)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            return module.weight.detach().cpu()
    raise A2Error(f"model {type(model).__name__} has no 2-D convolution, so it has no filters to show")


def filter_grid(weight: torch.Tensor, padding: int = 1, nrow: int | None = None) -> torch.Tensor:
    """First-layer filters as a display grid, each filter min-max scaled on its own.

    ``weight`` is nOut×nIn×kH×kW. With nIn = 3 the filters are drawn in colour; otherwise each
    input channel of each filter is its own grey cell (nOut·nIn cells). ``nrow`` defaults to
    ceil(sqrt(cells)). Returns a float64 C×H×W tensor in [0, 1].
    """
    if weight.dim() != 4:
        raise A2Error(f"filter_grid: expected a nOut×nIn×kH×kW weight, got shape {tuple(weight.shape)}")
    w = weight.detach().to(torch.float64)
    cells = list(w) if w.shape[1] == 3 else list(w.reshape(-1, 1, *w.shape[2:]))
    nrow = nrow or math.ceil(math.sqrt(len(cells)))
    grid = to_display_tensor(cells, padding=padding, nrow=nrow, scale_each=True)
    return grid if grid.dim() == 3 else grid.unsqueeze(0)


def augmentation_grid(examples: torch.Tensor, padding: int = 2) -> torch.Tensor:
    """The report's Figure 3.1: one row per seed, its untransformed patch first.

    ``examples`` uint8 (n_seeds, 1 + per_seed, C, p, p) (from
    ``surrogate.augmentation_examples``) -> float64 C×H×W in [0, 1]; pixel values are kept
    (range 0..255 mapped to 0..1, not stretched), padding is white.
    """
    if examples.dim() != 5:
        raise A2Error(f"augmentation_grid: expected (seeds, 1 + per_seed, C, p, p), got {tuple(examples.shape)}")
    s, k = examples.shape[:2]
    flat = examples.reshape(s * k, *examples.shape[2:]).to(torch.float64) / 255.0
    return _grid(flat, padding, k, pad_value=1.0)


def centroid_grid(centroids: torch.Tensor, patch_size: int, channels: int = 3, *,
                  layout: str = "chw", value_range=CENTROID_RANGE) -> torch.Tensor:
    """Port of Coates' show_centroids.m: K centroids as a grid, H×W×C float64 in [0, 1].

    ``round(sqrt(K))`` columns, one background pixel (value 100 before scaling, so white) after
    each cell, values mapped from ``value_range`` (−1.5..1.5) to 0..1 and clipped as imshow does.
    ``layout`` says how a centroid row is laid out: ``"chw"`` (C-order C×H×W, as torch unfold
    gives) or ``"matlab"`` (MATLAB column-major H×W×C, as Coates' im2col gives).
    Returned channels-first (C×H×W) for :func:`save_image`.
    """
    k, d = centroids.shape
    if d != channels * patch_size * patch_size:
        raise A2Error(f"centroid_grid: centroids have {d} values each, expected "
                      f"{channels}×{patch_size}×{patch_size} = {channels * patch_size * patch_size}")
    c = centroids.detach().to(torch.float64)
    if layout == "chw":
        cells = c.reshape(k, channels, patch_size, patch_size)
    elif layout == "matlab":
        cells = c.reshape(k, channels, patch_size, patch_size).transpose(2, 3)
    else:
        raise A2Error(f"centroid_grid: layout must be 'chw' or 'matlab', got {layout!r}")
    cols = round(math.sqrt(k))
    rows = math.ceil(k / cols)
    h = w = patch_size
    image = torch.full((channels, rows * (h + 1), cols * (w + 1)), CENTROID_BACKGROUND, dtype=torch.float64)
    for i in range(k):
        r, col = divmod(i, cols)
        image[:, r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = cells[i]
    lo, hi = value_range
    return ((image - lo) / (hi - lo)).clamp_(0.0, 1.0)


def unwhiten(centroids: torch.Tensor, whitening: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Undo ZCA whitening, ``x = c·P⁻¹ + M``, for display (Coates whitens with ``(x − M)·P``).

    Then each centroid is brought to zero mean and unit standard deviation, the scale of a
    contrast-normalised patch, so :data:`CENTROID_RANGE` suits it.
    """
    c = centroids.detach().to(torch.float64)
    p = whitening.detach().to(torch.float64)
    if p.shape != (c.shape[1], c.shape[1]):
        raise A2Error(f"unwhiten: whitening matrix is {tuple(p.shape)}, expected "
                      f"{c.shape[1]}×{c.shape[1]} for centroids of {c.shape[1]} values")
    x = torch.linalg.solve(p.T, c.T).T + mean.detach().to(torch.float64).reshape(1, -1)
    x = x - x.mean(dim=1, keepdim=True)
    return x / x.std(dim=1, keepdim=True).clamp_min(1e-12)


def centroids_figure(path, space: str = "unwhitened", max_count: int | None = None):
    """Read a centroids.t7 (``a2 kmeans fit``) and draw it with :func:`centroid_grid`.

    ``space="unwhitened"`` undoes the ZCA whitening stored in the file first (:func:`unwhiten`);
    ``"whitened"`` shows the centroids as learned, as Coates' demo does (also what a file
    fitted without whitening shows). ``max_count`` keeps the first centroids only. Returns
    ``(C×H×W float64 image, info dict)``.
    """
    from ..kmeans import CoatesKMeans

    if space not in ("unwhitened", "whitened"):
        raise A2Error(f"space must be 'unwhitened' or 'whitened', got {space!r}")
    km = CoatesKMeans.load(path)
    cents = km.centroids_[:max_count] if max_count else km.centroids_
    shown = space
    if space == "unwhitened":
        if km.zca_matrix_ is None:
            shown = "whitened"  # fitted with --no-whiten: nothing to undo
        else:
            cents = unwhiten(cents, km.zca_matrix_, km.zca_mean_)
    image = centroid_grid(cents, km.rf, km.channels_)
    return image, {"k": int(km.centroids_.shape[0]), "shown": int(cents.shape[0]), "rf": km.rf,
                   "channels": km.channels_, "space": shown}


def draw_image_map(coords: torch.Tensor, images: torch.Tensor, map_size: int = 512,
                   background: float = 0.0) -> torch.Tensor:
    """Port of manifold.draw_image_map: thumbnails pasted at their 2-D embedded positions.

    ``coords`` N×2 are min-max normalised per axis; image n (C×h×w) goes to row
    ``floor(x1·(map_size − h))`` and column ``floor(x2·(map_size − w))``, later images on top.
    Returns a float64 C×map_size×map_size tensor.
    """
    coords = torch.as_tensor(coords, dtype=torch.float64)
    if coords.dim() != 2 or coords.shape[1] != 2:
        raise A2Error(f"draw_image_map: expected N×2 coordinates, got shape {tuple(coords.shape)}")
    if images.dim() != 4 or images.shape[0] != coords.shape[0]:
        raise A2Error(f"draw_image_map: expected {coords.shape[0]}×C×H×W images, got shape {tuple(images.shape)}")
    n, ch, h, w = images.shape
    if h > map_size or w > map_size:
        raise A2Error(f"draw_image_map: thumbnails of {h}×{w} do not fit a {map_size}×{map_size} map")
    x = coords - coords.min(dim=0).values
    span = x.max(dim=0).values
    x = x / torch.where(span > 0, span, torch.ones_like(span))
    canvas = torch.full((ch, map_size, map_size), float(background), dtype=torch.float64)
    rows = torch.floor(x[:, 0] * (map_size - h)).long()
    cols = torch.floor(x[:, 1] * (map_size - w)).long()
    imgs = images.detach().to(torch.float64)
    for i in range(n):
        r, c = int(rows[i]), int(cols[i])
        canvas[:, r:r + h, c:c + w] = imgs[i]
    return canvas


def to_uint8_hwc(image: torch.Tensor) -> np.ndarray:
    """C×H×W (or H×W) float in [0, 1] -> H×W×3 (or H×W) uint8, rounded."""
    if image.dim() == 3 and image.shape[0] not in (1, 3):
        raise A2Error(f"to_uint8_hwc: expected 1 or 3 channels, got shape {tuple(image.shape)}")
    if image.dim() not in (2, 3):
        raise A2Error(f"to_uint8_hwc: expected C×H×W or H×W, got shape {tuple(image.shape)}")
    # one float copy, scaled in place, then channels last on the 8-bit result
    x = image.detach().to(torch.float64).clamp(0, 1).mul_(255).round_().to(torch.uint8)
    if x.dim() == 3:
        x = x[0] if x.shape[0] == 1 else x.permute(1, 2, 0).contiguous()
    return x.numpy()


def save_image(path, image: torch.Tensor, zoom: int = 1) -> tuple[int, int]:
    """Write a C×H×W image in [0, 1] as PNG (atomically), nearest-neighbour upscaled by ``zoom``.

    Compressed at zlib level :data:`PNG_COMPRESS_LEVEL`. Returns the written (width, height).
    """
    from PIL import Image

    arr = to_uint8_hwc(image)
    if zoom > 1:
        arr = arr.repeat(zoom, axis=0).repeat(zoom, axis=1)
    _ensure_parent(path)
    with atomic_output(path, "wb") as f:
        Image.fromarray(arr).save(f, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return arr.shape[1], arr.shape[0]


def read_logger(path) -> dict[str, list[float]]:
    """An optim.Logger file (``val.log``) as ``{name: [value per row]}``, in file order.

    Parsed by :func:`luatorch_port.train.read_log`; a cell that is not a number raises A2Error
    naming the file, line and column.
    """
    from ..train.logger import read_log

    names, rows = read_log(path)
    columns = {n: [] for n in names}
    for lineno, row in enumerate(rows, start=2):
        for name, value in zip(names, row):
            if not isinstance(value, float):
                raise A2Error(f"{path}:{lineno}: {value!r} in column {name!r} is not a number")
            columns[name].append(value)
    return columns


def save_curves(path, columns: dict[str, list[float]], title: str = "", ylabel: str = "accuracy (%)",
                size=(6.4, 4.0), dpi: int = 100) -> tuple[int, int]:
    """Plot each column against epoch (1, 2, ...) and write a PNG atomically; returns (width, height).

    Columns that are nan throughout (``val.log`` of a run without validation) are left out.
    Drawn on a bare ``Figure`` with the Agg canvas: no pyplot, no global figure state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, values in columns.items():
        if all(v != v for v in values):  # an all-nan column (no validation set) has nothing to draw
            continue
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi)


def save_figure(fig, path, dpi) -> tuple[int, int]:
    """Write a matplotlib figure as a PNG, atomically; return its (width, height) in pixels."""
    _ensure_parent(path)
    with atomic_output(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    w, h = fig.canvas.get_width_height()
    return w, h


def _ensure_parent(path) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
