"""A PNG grid of a split's images, each titled with its class name (``a2 data preview``).

Port of the starter's habit of looking at ``image.display(provider.trainData.data[{{1,64}}])``
(torch/image), with the class of each image written above it.

Deviations: images are picked round-robin over the classes (the first of each class, then
the second, ...) so every class shows; for the extra split, the first ``n`` images.
"""

from __future__ import annotations

import math

import torch

from ..util.errors import A2Error
from ..util.files import atomic_output
from .layout import Split, round_robin

DEFAULT_N = 64
CELL_INCHES = 1.1  # figure size per grid cell
DPI = 100


def select_preview(split: Split, n: int = DEFAULT_N) -> torch.Tensor:
    """Indices of up to ``n`` images: round-robin over classes (labelled) or the first ``n``."""
    if n < 1:
        raise A2Error(f"n={n} should be >= 1")
    if split.labels is None:
        return torch.arange(min(n, len(split)))
    order = round_robin(split.labels, len(split.classes))
    return order[:n]


def render_preview(split: Split, path, n: int = DEFAULT_N, *, columns: int = None):
    """Write a PNG grid of up to ``n`` images of ``split`` to ``path`` (atomically).

    Returns the indices shown, in grid order (row-major).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = select_preview(split, n)
    cols = columns or max(1, math.ceil(math.sqrt(len(idx))))
    rows = math.ceil(len(idx) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * CELL_INCHES, rows * CELL_INCHES * 1.15),
                             squeeze=False)
    try:
        for ax in axes.flat:
            ax.axis("off")
        for ax, i in zip(axes.flat, idx.tolist()):
            ax.imshow(split.images[i].permute(1, 2, 0).numpy(), interpolation="nearest")
            title = split.classes[int(split.labels[i])] if split.labels is not None else f"#{i + 1}"
            ax.set_title(title, fontsize=7, pad=2)
        fig.tight_layout(pad=0.3)
        with atomic_output(path, "wb") as f:
            fig.savefig(f, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return idx
