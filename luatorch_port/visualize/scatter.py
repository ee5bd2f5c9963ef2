"""The t-SNE scatter (report 3.2): 2-D points coloured by class, drawn with Pillow.

Drawn without matplotlib on purpose: importing matplotlib costs more than the whole drawing
(docs/visualize.md), and ``a2 tsne`` draws one figure. The look follows
matplotlib's scatter of the same points: ``tab10`` colours, axes autoscaled with a 5 %
margin on each side (independently per axis), no ticks, a framed legend of class names in the
corner of the axes that covers the fewest points (matplotlib's ``loc="best"`` criterion,
restricted to the four corners), the title wrapped above the axes. Points are drawn in class
order (class 1 first, so later classes lie on top), at twice the size, then downsampled with a
box filter for anti-aliasing.
"""

from __future__ import annotations

import textwrap

import numpy as np

from ..util.errors import A2Error
from ..util.files import atomic_output

# matplotlib's "tab10" (Vega category10), the colours of the scatter's classes 1..10
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MARGIN = 0.05          # matplotlib's axes.xmargin / axes.ymargin
SUPERSAMPLE = 2        # drawn at this scale, then box-filtered down
MARKER_DIAMETER = 3.4  # pixels at 100 dpi: matplotlib's s=6 (points²) marker, sqrt(6) pt wide
TITLE_WIDTH = 90       # characters per title line
TITLE_SIZE = 12        # pixels (matplotlib's fontsize 9 at 100 dpi)
LEGEND_SIZE = 11       # pixels (fontsize 8 at 100 dpi)


def axes_box(width: int, height: int, title_lines: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) pixel box of the axes in a ``width``×``height`` figure."""
    pad = round(0.02 * min(width, height)) + 2
    top = pad + title_lines * (TITLE_SIZE + 4) + (4 if title_lines else 0)
    return pad, top, width - pad - 1, height - pad - 1


def data_to_pixels(coords: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """N×2 data coordinates -> N×2 float pixel positions (x right, y down) inside ``box``.

    Each axis spans its data range plus :data:`MARGIN` of it on both sides (a zero range is
    widened to ±0.5, as matplotlib does for a single value)."""
    coords = np.asarray(coords, dtype=np.float64)
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    span = hi - lo
    lo = np.where(span > 0, lo - MARGIN * span, lo - 0.5)
    hi = np.where(span > 0, hi + MARGIN * span, hi + 0.5)
    left, top, right, bottom = box
    u = (coords - lo) / (hi - lo)
    return np.stack([left + u[:, 0] * (right - left), bottom - u[:, 1] * (bottom - top)], axis=1)


def best_corner(pixels: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> str:
    """The corner of ``box`` ("upper right", "upper left", "lower left", "lower right", in that
    order of preference on ties) where a legend of ``size`` (w, h) covers the fewest points."""
    left, top, right, bottom = box
    w, h = size
    best, best_count = None, None
    for name, (x0, y0) in (("upper right", (right - w, top)), ("upper left", (left, top)),
                           ("lower left", (left, bottom - h)), ("lower right", (right - w, bottom - h))):
        inside = ((pixels[:, 0] >= x0) & (pixels[:, 0] <= x0 + w)
                  & (pixels[:, 1] >= y0) & (pixels[:, 1] <= y0 + h))
        count = int(inside.sum())
        if best_count is None or count < best_count:
            best, best_count = name, count
    return best


def _hex(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def draw_scatter(coords: np.ndarray, labels=None, class_names=None, title: str = "",
                 size: tuple[int, int] = (700, 600)):
    """The scatter as a Pillow RGB image of ``size`` (width, height) pixels.

    ``coords`` N×2; ``labels`` N class indices (0-based; colour ``TAB10[label % 10]``) or None
    (one colour, no legend); ``class_names`` names the legend entries (default ``label + 1``).
    """
    from PIL import Image, ImageDraw, ImageFont

    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) == 0:
        raise A2Error(f"scatter: expected N×2 coordinates, got shape {coords.shape}")
    if labels is not None:
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        if len(labels) != len(coords):
            raise A2Error(f"scatter: {len(coords)} points but {len(labels)} labels")
    s = SUPERSAMPLE
    width, height = size
    lines = textwrap.wrap(title, TITLE_WIDTH) if title else []
    box = axes_box(width, height, len(lines))
    pixels = data_to_pixels(coords, box)

    image = Image.new("RGB", (width * s, height * s), "white")
    draw = ImageDraw.Draw(image)
    title_font = ImageFont.load_default(size=TITLE_SIZE * s)
    for i, line in enumerate(lines):
        y = (box[1] - 4 - (len(lines) - i) * (TITLE_SIZE + 4)) * s
        draw.text((width * s / 2, y), line, fill="black", font=title_font, anchor="ma")

    r = MARKER_DIAMETER * s / 2
    order = np.argsort(labels, kind="stable") if labels is not None else np.arange(len(coords))
    for i in order:
        colour = TAB10[int(labels[i]) % 10] if labels is not None else TAB10[0]
        x, y = pixels[i] * s
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    left, top, right, bottom = box
    draw.rectangle((left * s, top * s, right * s, bottom * s), outline="black", width=s)

    if labels is not None:
        classes = sorted(set(labels.tolist()))         # (np.unique would import numpy.ma)
        names = [class_names[c] if class_names is not None and c < len(class_names) else str(c + 1)
                 for c in classes]
        font = ImageFont.load_default(size=LEGEND_SIZE * s)
        row = LEGEND_SIZE + 5
        text_w = max(draw.textlength(n, font=font) for n in names) / s
        legend = (int(text_w) + 30, row * len(classes) + 8)
        corner = best_corner(pixels, box, (legend[0] + 8, legend[1] + 8))
        x0 = left + 5 if "left" in corner else right - 5 - legend[0]
        y0 = top + 5 if "upper" in corner else bottom - 5 - legend[1]
        draw.rounded_rectangle((x0 * s, y0 * s, (x0 + legend[0]) * s, (y0 + legend[1]) * s), radius=3 * s,
                               fill="white", outline=(204, 204, 204), width=s)
        for k, (c, name) in enumerate(zip(classes, names)):
            cy = y0 + 4 + row * k + row / 2
            cx = x0 + 12
            draw.ellipse(((cx - 3) * s, (cy - 3) * s, (cx + 3) * s, (cy + 3) * s), fill=_hex(TAB10[c % 10]))
            draw.text(((cx + 10) * s, cy * s), name, fill="black", font=font, anchor="lm")
    return image.resize((width, height), Image.Resampling.BOX)


def save_scatter(path, coords: np.ndarray, labels=None, class_names=None, title: str = "",
                 size=(7.0, 6.0), dpi: int = 100) -> tuple[int, int]:
    """Write :func:`draw_scatter` as a PNG (atomically): ``size`` in inches at ``dpi``.

    Returns the written (width, height) in pixels."""
    import os

    width, height = round(size[0] * dpi), round(size[1] * dpi)
    image = draw_scatter(coords, labels, class_names, title=title, size=(width, height))
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    with atomic_output(path, "wb") as f:
        image.save(f, format="PNG")
    return width, height
