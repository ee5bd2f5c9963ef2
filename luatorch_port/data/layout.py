"""The course's t7b layout <-> tensors: ``load_split``, ``scan_split``, ``save_split``.

Port of the data handling in the course starter's ``provider.lua`` (NYU DS-GA 1008, 2016,
Assignment 2), which reads ``torch.load('train.t7b').data[c][j]`` (a 3x96x96 ByteTensor,
class ``c`` = 1..10) and ``torch.load('extra.t7b').data[1][j]`` (unlabelled). The bytes are
torch7's ``File.lua`` ``writeObject`` format (torch7 814ea4a).

Labelled layout: ``{data = {c1, ..., cK}}``, ``ci`` a Lua array of 3xHxW ``torch.ByteTensor``
(K >= 2). Extra layout: ``{data = {{img1, ..., imgN}}}`` (one array under ``data[1]``).
Labels are the class table's index, 1..K in Lua and 0..K-1 here (converted only here).

Deviations: reading does not build the object graph: the t7 stream scanner
(``luatorch_port.t7.stream``) copies each image's bytes into one preallocated
N x 3 x H x W tensor, falling back to the generic t7 reader for images stored otherwise (and
for ascii files). Tables are read in file order (torch.save writes Lua arrays as 1..n), so
``images[i]`` is the i-th stored. Writing streams the same bytes with its ``CourseWriter``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch

from ..t7.stream import ByteTensorScanner, CourseWriter, scan, size_str
from ..util.errors import A2Error
from ..util.files import atomic_output

# STL-10's class order (stl10_binary/class_names.txt); class table i of the course files.
CLASS_NAMES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship",
               "truck")
LABELLED, EXTRA = "labelled", "extra"
# Optional names file beside the t7b files, one class per line (as stl10_binary/ ships one).
CLASS_NAMES_FILE = "class_names.txt"
CHANNELS = 3  # the course images are RGB


@dataclass
class Split:
    """One course split in memory.

    Attributes
    ----------
    images : torch.Tensor
        uint8, N x 3 x H x W, in file order.
    labels : torch.Tensor or None
        int64, N, values 0..K-1 (class table index - 1); None for the extra layout.
    classes : list of str
        K class names: STL-10's, or the lines of a ``class_names.txt`` beside the file
        (for extra, the classes its images come from: 10 STL-10 names by default).
    layout : str
        ``"labelled"`` or ``"extra"``.
    """

    images: torch.Tensor
    labels: Optional[torch.Tensor]
    classes: List[str]
    layout: str

    def __len__(self):
        return self.images.shape[0]

    def class_counts(self) -> List[int]:
        """Images per class (labelled) or ``[N]`` (extra: one table, labels unknown)."""
        if self.labels is None:
            return [len(self)]
        return torch.bincount(self.labels, minlength=len(self.classes)).tolist()


@dataclass
class SplitInfo:
    """What :func:`scan_split` finds without keeping pixels: layout, per-table counts, shape."""

    layout: str
    counts: List[int]
    image_shape: tuple
    classes: List[str]

    @property
    def n_images(self):
        return sum(self.counts)


def class_names(n_classes: int) -> List[str]:
    """STL-10 names for the first 10 classes, then ``class11``, ``class12``, ..."""
    return [CLASS_NAMES[i] if i < len(CLASS_NAMES) else f"class{i + 1}" for i in range(n_classes)]


def read_class_names(path, n_classes: Optional[int] = None) -> List[str]:
    """Names from ``class_names.txt`` beside ``path``, else STL-10's.

    The file is used when it has ``n_classes`` lines (any number when ``n_classes`` is None,
    as for an extra split); otherwise the STL-10 names (10 when ``n_classes`` is None).
    """
    if isinstance(path, (str, os.PathLike)):
        names_path = os.path.join(os.path.dirname(os.path.abspath(path)), CLASS_NAMES_FILE)
        if os.path.isfile(names_path):
            with open(names_path, encoding="utf-8") as f:
                names = [line.strip() for line in f if line.strip()]
            if names and (n_classes is None or len(names) == n_classes):
                return names
    return class_names(len(CLASS_NAMES) if n_classes is None else n_classes)


def round_robin(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Indices ordered first of each class, then second of each class, ... (classes 0..K-1).

    The first ``m`` of them are the most even ``m``-image subset that keeps file order
    within each class.
    """
    rank = torch.empty(len(labels), dtype=torch.int64)
    for c in range(n_classes):
        idx = torch.nonzero(labels == c).flatten()
        rank[idx] = torch.arange(len(idx))
    return torch.argsort(rank * n_classes + labels, stable=True)


class _CourseScanner(ByteTensorScanner):
    """Walks ``{data = ...}`` (labelled or extra) into one images tensor and its labels."""

    expected_entry = "a 3xHxW torch.ByteTensor"

    def __init__(self, source, *, name, limit=None, keep_pixels=True, expect=None,
                 balanced=False, progress=None):
        super().__init__(source, name=name, limit=limit, keep_pixels=keep_pixels, progress=progress)
        self.balanced = balanced  # a limit on a labelled split takes every class evenly
        self.balanced_limit = None
        self.expect = expect
        self.segments = []  # (class index 0-based, count) in file order
        self.counts = []
        self.layout = None

    def check_shape(self, shape, where):
        if len(shape) != 3 or shape[0] != CHANNELS:
            self.fail(f"{where} is {size_str(shape)}, expected 3xHxW (RGB)")

    def capacity(self, n_in_table):
        return n_in_table if self.layout == EXTRA else super().capacity(n_in_table)

    def read_root(self):
        n_root = self.table_header("the file", "a table {data = ...} (the course layout)")
        found = False
        for _ in range(n_root):
            key = self.read_object()
            if key == "data" and not found:
                found = True
                self._read_data()
                if self.limit is not None and self.n >= self.limit:
                    break
            else:
                self.read_object()
        if not found:
            self.fail("has no 'data' field; expected the course layout {data = {c1, ..., c10}} "
                      "or {data = {{img1, ..., imgN}}}")

    def _read_data(self):
        what = ("a table of class tables {c1, ..., c10} (labelled) or of one image table "
                "{{img1, ..., imgN}} (extra)")
        k_tables = self.table_header("data", what)
        if k_tables == 0:
            self.fail("data is an empty table; expected " + what)
        self.layout = EXTRA if k_tables == 1 else LABELLED
        self.k_tables = k_tables
        if self.balanced and self.layout == LABELLED and self.limit is not None:
            self.balanced_limit, self.limit = self.limit, None  # read all, pick in result()
        if self.expect is not None and self.expect != self.layout:
            if self.layout == EXTRA:
                self.fail("is an extra (unlabelled) split: data holds one image table, so every "
                          "image would get label 1; a labelled split (train/val/test) is needed")
            self.fail(f"is a labelled split (data holds {k_tables} class tables); an unlabelled "
                      "extra split {data = {{img1, ..., imgN}}} is needed")
        seen = np.zeros(k_tables, dtype=bool)
        for _ in range(k_tables):
            c = self.array_key("data", k_tables, seen)
            where = f"data[{c}]"
            n = self.table_header(where, "a Lua array of 3xHxW torch.ByteTensor images")
            if n == 0:
                self.fail(f"{where} is an empty table; every class table needs at least one image")
            self.counts.append(n)
            self.segments.append((c - 1, self.read_array(where, n)))
            if self.limit is not None and self.n >= self.limit:
                return

    def result(self) -> Split:
        if self.n == 0 or self.shape is None:
            self.fail("holds no images")
        images = self.images_read()
        if self.layout == EXTRA:
            return Split(images, None, class_names(len(CLASS_NAMES)), EXTRA)
        labels = torch.cat([torch.full((m,), c, dtype=torch.int64) for c, m in self.segments])
        if self.balanced_limit is not None and self.balanced_limit < len(labels):
            keep = torch.sort(round_robin(labels, self.k_tables)[:self.balanced_limit]).values
            images, labels = images[keep], labels[keep]
        return Split(images, labels, class_names(self.k_tables), LABELLED)


def _scan(path_or_file, *, long_size=None, **kwargs) -> _CourseScanner:
    return scan(path_or_file, lambda src, name: _CourseScanner(src, name=name, **kwargs),
                long_size=long_size, what="a t7 course split")


def load_split(path, limit: Optional[int] = None, *, expect: Optional[str] = None,
               long_size: Optional[int] = None, progress=None) -> Split:
    """Read a course t7b file (``train/val/test/extra.t7b``) into one uint8 tensor.

    Parameters
    ----------
    path : str, PathLike or binary file object
    limit : int, optional
        At most ``limit`` images, for quick experiments. Extra split: the first ``limit``
        in file order (the rest of the file is not read). Labelled split (class-sorted, so
        its first images are all class 1): the first images of every class, as evenly as
        the class sizes allow (round-robin), kept in file order.
    expect : {None, "labelled", "extra"}
        Raise if the file has the other layout (an extra file where labels are needed
        would label every image 1).
    long_size : {None, 4, 8}
        Bytes per serialized long; None tries 8 then 4.
    progress : :class:`~luatorch_port.util.progress.Progress`, optional
        Sees the bytes read (``reading <file>``).

    Returns
    -------
    Split
        ``images`` uint8 N x 3 x H x W, ``labels`` int64 0..K-1 (None for extra),
        ``classes`` (STL-10 order, or ``class_names.txt`` beside the file), ``layout``.

    Raises
    ------
    A2Error
        Not the course layout; the message names the place, e.g.
        ``data[4][17] is 3x32x32, expected 3x96x96`` (1-based, as in Lua).
    T7FormatError
        The bytes are not a t7 serialization.
    """
    if limit is not None and limit < 1:
        raise A2Error(f"limit={limit} should be >= 1")
    if expect not in (None, LABELLED, EXTRA):
        raise ValueError(f"expect must be None, {LABELLED!r} or {EXTRA!r}, got {expect!r}")
    split = _scan(path, long_size=long_size, limit=limit, expect=expect, balanced=True,
                  progress=progress).result()
    split.classes = read_class_names(path, None if split.labels is None else len(split.classes))
    return split


def scan_split(path, *, expect: Optional[str] = None, limit: Optional[int] = None) -> SplitInfo:
    """Layout, images per table and image shape of a course file, without keeping pixels.

    ``limit`` stops after that many images (``limit=1`` reads just enough for the layout and
    the image shape; ``counts`` then holds the declared sizes of the tables reached).
    """
    s = _scan(path, keep_pixels=False, expect=expect, limit=limit)
    if s.shape is None:
        s.fail("holds no images")
    classes = read_class_names(path, None if s.layout == EXTRA else len(s.counts))
    return SplitInfo(s.layout, list(s.counts), s.shape, classes)


def check_images(images, what="images") -> torch.Tensor:
    """``images`` as a uint8 torch tensor N x 3 x H x W, or an A2Error saying what it is."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise A2Error(f"{what} should be a uint8 tensor N x 3 x H x W, got {type(images).__name__}")
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != CHANNELS:
        raise A2Error(f"{what} should be a uint8 tensor N x 3 x H x W, got {images.dtype} "
                      f"{size_str(images.shape)}")
    if images.shape[0] == 0:
        raise A2Error(f"{what} is empty; a course split needs at least one image")
    return images


def save_split(path, images, labels=None, *, n_classes: Optional[int] = None) -> None:
    """Write ``images`` in the course layout, loadable by Lua Torch and by torchfile.

    Parameters
    ----------
    path : str or PathLike
        Written atomically (temp file + rename).
    images : uint8 tensor or array, N x 3 x H x W
    labels : int tensor or array of N values 0..K-1, or None
        None writes the extra layout ``{data = {{img1, ..., imgN}}}``; otherwise images are
        grouped (stably) into class tables ``{data = {c1, ..., cK}}``.
    n_classes : int, optional
        K, the number of class tables; default 10 (STL-10). Every class needs an image.
    """
    images = check_images(images)
    if images.device.type != "cpu":
        images = images.cpu()
    if labels is None:
        counts, order = [images.shape[0]], None
    else:
        labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor)
                                 else labels).cpu()
        if labels.dim() != 1 or labels.shape[0] != images.shape[0] or labels.is_floating_point():
            raise A2Error(f"labels should be {images.shape[0]} integers (one per image), got "
                          f"{labels.dtype} {size_str(labels.shape)}")
        labels = labels.to(torch.int64)
        lo, hi = int(labels.min()), int(labels.max())
        k = n_classes if n_classes is not None else len(CLASS_NAMES)
        if lo < 0 or hi >= k:
            raise A2Error(f"labels should be in 0..{k - 1}, got values {lo}..{hi}")
        counts = torch.bincount(labels, minlength=k).tolist()
        names = class_names(k)
        for c, m in enumerate(counts):
            if m == 0:
                raise A2Error(f"class {c} ({names[c]}, data[{c + 1}] in Lua) has no images; every class table of the "
                              "course layout needs at least one")
        order = torch.sort(labels, stable=True).indices
        if torch.equal(order, torch.arange(len(order))):
            order = None
    images = images.contiguous()
    with atomic_output(path, "wb") as f:
        writer = CourseWriter(f, counts, images.shape[1:])
        chunk = 1024
        for start in range(0, images.shape[0], chunk):
            sel = slice(start, start + chunk)
            writer.write(images[sel] if order is None else images[order[sel]])
        writer.close()
