"""The course's data: t7b splits as tensors, STL-10 conversion and download, the sample set.

``load_split``/``save_split`` read and write the course layout (``layout``); ``convert_stl10``
turns the official STL-10 binaries into it (``stl10``), ``fetch_stl10`` downloads and
verifies them (``fetch``); ``build_sample`` makes the embedded digits dataset (``sample``);
``render_preview`` draws a grid of images (``preview``).
"""

from ..t7.stream import CourseWriter
from .layout import (CLASS_NAMES, CLASS_NAMES_FILE, EXTRA, LABELLED, Split, SplitInfo,
                     class_names, load_split, read_class_names, round_robin, save_split,
                     scan_split)

__all__ = ["CLASS_NAMES", "CLASS_NAMES_FILE", "LABELLED", "EXTRA", "Split", "SplitInfo",
           "CourseWriter", "class_names", "read_class_names", "round_robin", "load_split", "save_split",
           "scan_split", "build_sample",
           "convert_stl10", "fetch_stl10", "render_preview", "pixel_stats"]


def __getattr__(name):
    # The heavier parts (sklearn, matplotlib, urllib) load on first use, not at import.
    if name == "build_sample":
        from .sample import build_sample
        return build_sample
    if name == "convert_stl10":
        from .stl10 import convert_stl10
        return convert_stl10
    if name == "fetch_stl10":
        from .fetch import fetch_stl10
        return fetch_stl10
    if name == "render_preview":
        from .preview import render_preview
        return render_preview
    if name == "pixel_stats":
        from .info import pixel_stats
        return pixel_stats
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
