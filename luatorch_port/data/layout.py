"""The course's t7b layout <-> tensors: ``load_split``, ``scan_split``, ``save_split``.

Port of the data handling in the course starter's ``provider.lua`` (NYU DS-GA 1008, 2016,
Assignment 2), which reads ``torch.load('train.t7b').data[c][j]`` (a 3x96x96 ByteTensor,
class ``c`` = 1..10) and ``torch.load('extra.t7b').data[1][j]`` (unlabelled). The bytes are
torch7's ``File.lua`` ``writeObject`` format (torch7 814ea4a).

Labelled layout: ``{data = {c1, ..., cK}}``, ``ci`` a Lua array of 3xHxW ``torch.ByteTensor``
(K >= 2). Extra layout: ``{data = {{img1, ..., imgN}}}`` (one array under ``data[1]``).
Labels are the class table's index, 1..K in Lua and 0..K-1 here (converted only here).

Deviations: reading does not build the object graph: a scanner walks the tables and copies
each image's bytes into one preallocated N x 3 x H x W tensor -- runs of plainly stored
images through a 4 MB staging buffer with all their headers checked at once, single ones
with ``readinto`` into their row; images stored otherwise (shared or strided storages, the
same tensor twice, ascii files) go through the generic t7 reader and are copied in too. No
mmap and no per-image arrays, so peak memory stays near the pixel payload. Tables are read
in file order (torch.save writes Lua arrays as 1..n), so ``images[i]`` is the i-th stored.
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch

from ..util.errors import A2Error
from ..t7.reader import (TYPE_NUMBER, TYPE_STRING, TYPE_TABLE, TYPE_TORCH, Reader,
                         T7FormatError, _Ascii, is_ascii)
from ..t7.types import DTYPE_TENSOR_CLASS, LuaFunction, LuaObject, Storage
from ..util.files import atomic_output

# STL-10's class order (stl10_binary/class_names.txt); class table i of the course files.
CLASS_NAMES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship",
               "truck")
LABELLED, EXTRA = "labelled", "extra"
# Optional names file beside the t7b files, one class per line (as stl10_binary/ ships one).
CLASS_NAMES_FILE = "class_names.txt"
CHANNELS = 3  # the course images are RGB
_TENSOR, _STORAGE = b"torch.ByteTensor", b"torch.ByteStorage"
_VERSION = b"V 1"
_I32, _F64 = struct.Struct("<i"), struct.Struct("<d")
BLOCK_BYTES = 4 << 20  # image records fetched per readinto by the block fast path


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


def _size_str(shape):
    return "x".join(str(int(s)) for s in shape)


def _describe(obj) -> str:
    """A Lua-flavoured one-phrase description of a value read from a t7 file."""
    if obj is None:
        return "nil"
    if isinstance(obj, bool):
        return "a boolean"
    if isinstance(obj, (int, float)):
        return f"the number {obj}"
    if isinstance(obj, str):
        return f"the string {obj[:30]!r}"
    if isinstance(obj, torch.Tensor):
        name = DTYPE_TENSOR_CLASS.get(obj.dtype, str(obj.dtype))
        return f"a {name} of size {_size_str(obj.shape)}" if obj.dim() else f"an empty {name}"
    if isinstance(obj, Storage):
        return f"a {obj.class_name} of {len(obj)} elements"
    if isinstance(obj, (list, dict)):
        return f"a table of {len(obj)} entries"
    if isinstance(obj, LuaObject):
        return f"a {obj.class_name}"
    if isinstance(obj, LuaFunction):
        return "a function"
    return type(obj).__name__


class _FileSource:
    """Primitive reads of torch7's binary format from a seekable binary file.

    The same interface as the t7 reader's sources (``int``, ``long``, ``longs``, ``double``,
    ``chars``, ``array``, ``fail``, ``need``, ``remaining``, ``pos``, ``n``), so the generic
    reader can take over at any object; ``readinto`` lets the scanner put pixels straight
    into their final tensor. ``n`` counts the bytes from the start to the end of the file.
    """

    def __init__(self, f, n, long_size):
        self.f = f
        self.n = n
        self.pos = 0
        self.base = f.tell()
        self.long_size = long_size
        self._long = struct.Struct("<q" if long_size == 8 else "<i")

    def fail(self, what, at=None):
        raise T7FormatError(f"offset {self.pos if at is None else at}: expected {what}")

    def need(self, nbytes, what):
        if nbytes < 0 or self.pos + nbytes > self.n:
            self.fail(f"{what} ({nbytes} bytes), but only {self.n - self.pos} bytes remain")

    def remaining(self):
        return self.n - self.pos

    def seek(self, pos):
        self.f.seek(self.base + pos)
        self.pos = pos

    def read(self, size, what):
        self.need(size, what)
        data = self.f.read(size)
        if len(data) != size:
            self.fail(f"{what} ({size} bytes), but only {len(data)} bytes remain")
        self.pos += size
        return data

    def readinto(self, view, what):
        nbytes = view.nbytes
        self.need(nbytes, what)
        got = self.f.readinto(view) if nbytes else 0
        if got != nbytes:
            self.fail(f"{what} ({nbytes} bytes), but only {got} bytes remain")
        self.pos += nbytes

    def int(self, what="int32"):
        return _I32.unpack(self.read(4, what))[0]

    def long(self, what="long"):
        return self._long.unpack(self.read(self.long_size, what))[0]

    def longs(self, count, what="longs"):
        data = self.read(count * self.long_size, what)
        return np.frombuffer(data, dtype="<i8" if self.long_size == 8 else "<i4").tolist()

    def double(self, what="number"):
        return _F64.unpack(self.read(8, what))[0]

    def chars(self, count, what="characters"):
        return self.read(count, what)

    def array(self, dtype, count, what, out=None):
        dtype = np.dtype(dtype).newbyteorder("<")
        target = np.empty(count, dtype=dtype)
        self.readinto(memoryview(target).cast("B"), what)
        target = target.astype(dtype.newbyteorder("="), copy=False)
        if out is not None:
            out[...] = target.reshape(out.shape)
            return out
        return target


class _ObjectTable(dict):
    """Reference index -> object, where images copied by the fast path are resolved lazily.

    The fast path does not create objects for the tensors and storages it copies; a later
    reference to one of them (the same image twice in a file) is answered from the buffer.
    """

    def __init__(self, scanner):
        super().__init__()
        self.scanner = scanner
        self.hi = 0  # highest index seen: torch.save numbers new objects 1, 2, 3, ...

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if key > self.hi:
            self.hi = key

    def __contains__(self, key):
        return dict.__contains__(self, key) or self.scanner._fast_lookup(key) is not None

    def __getitem__(self, key):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        found = self.scanner._fast_lookup(key)
        if found is None:
            raise KeyError(key)
        k, is_storage = found
        image = self.scanner._image_view(k)
        return Storage(image.reshape(-1)) if is_storage else image


class _CourseScanner(Reader):
    """Walks ``{data = ...}`` and copies each image into one preallocated tensor."""

    def __init__(self, source, *, name, limit=None, keep_pixels=True, expect=None,
                 balanced=False):
        super().__init__(source)
        self.balanced = balanced  # a limit on a labelled split takes every class evenly
        self.balanced_limit = None
        self.objects = _ObjectTable(self)
        self.name = name
        self.limit = limit
        self.keep_pixels = keep_pixels
        self.expect = expect
        self.shape = None
        self.images = None  # torch uint8 (capacity, C, H, W)
        self.flat = None  # its numpy view (capacity, C*H*W)
        self.n = 0
        self.segments = []  # (class index 0-based, count) in file order
        self.counts = []
        self.layout = None
        # Images copied by the fast paths, as runs: first tensor reference index (increasing),
        # number of images (indices step by 2: tensor, storage), first slot in ``images``.
        self._run_tidx, self._run_len, self._run_k = [], [], []
        self.n_fast = 0
        self._staging = None
        binary = type(source) is _FileSource
        self._hdr = None
        if binary:
            q = "q" if source.long_size == 8 else "i"
            self._hdr = struct.Struct(f"<id ii i3s i16s i 3{q}3{q}{q} ii i3s i17s {q}")

    # -- errors -------------------------------------------------------------------------
    def fail(self, message):
        raise A2Error(f"{self.name}: {message}")

    # -- fast-path object references ------------------------------------------------------
    def _fast_lookup(self, index):
        i = bisect.bisect_right(self._run_tidx, index) - 1
        if i < 0:
            return None
        offset = index - self._run_tidx[i]
        if offset >= 2 * self._run_len[i]:
            return None
        return self._run_k[i] + offset // 2, offset % 2 == 1

    def _add_run(self, tidx, count, k):
        if self._run_tidx and self._run_tidx[-1] + 2 * self._run_len[-1] == tidx \
                and self._run_k[-1] + self._run_len[-1] == k:
            self._run_len[-1] += count
        else:
            self._run_tidx.append(tidx)
            self._run_len.append(count)
            self._run_k.append(k)
        self.objects.hi = tidx + 2 * count - 1
        self.n_fast += count

    def _image_view(self, k):
        if self.images is None:
            return torch.zeros(self.shape, dtype=torch.uint8)
        return self.images[k]

    def _rewind(self, at):
        if isinstance(self.src, _FileSource):
            self.src.seek(at)
        else:
            self.src.pos = at

    # -- tables --------------------------------------------------------------------------
    def _table_header(self, where, what):
        """Read a fresh table's header; returns its entry count."""
        at = self.src.pos
        tag = self.src.int("a type tag")
        if tag != TYPE_TABLE:
            self._rewind(at)
            obj = self.read_object()
            self.fail(f"{where} is {_describe(obj)}, expected {what}")
        index = self.src.int("an object reference index")
        if index in self.objects:
            self.fail(f"{where} refers to a table read earlier; expected {what}")
        self.objects[index] = {}
        return self._count(self.src.int("a table size"), 8, "table entries")

    def _array_key(self, where, n, seen):
        key = self.read_object()
        if type(key) is not int or not 1 <= key <= n or seen[key - 1]:
            self.fail(f"{where} has the key {key!r}; expected each of 1..{n} once (a Lua array)")
        seen[key - 1] = True
        return key

    def read_split(self):
        n_root = self._table_header("the file", "a table {data = ...} (the course layout)")
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
        k_tables = self._table_header("data", what)
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
            c = self._array_key("data", k_tables, seen)
            self._read_class(c, k_tables)
            if self.limit is not None and self.n >= self.limit:
                return

    def _read_class(self, c, k_tables):
        where = f"data[{c}]"
        n = self._table_header(where, "a Lua array of 3xHxW torch.ByteTensor images")
        if n == 0:
            self.fail(f"{where} is an empty table; every class table needs at least one image")
        self.counts.append(n)
        seen = np.zeros(n, dtype=bool)
        start = self.n
        done = 0
        while done < n:
            if self.limit is not None and self.n >= self.limit:
                break
            taken = self._fast_block(n, seen, done)
            if taken:
                done += taken
                continue
            if not self._fast_image(where, n, seen):
                key = self._array_key(where, n, seen)
                self._put(self.read_object(), f"{where}[{key}]", n)
            done += 1
        self.segments.append((c - 1, self.n - start))

    # -- images --------------------------------------------------------------------------
    def _fast_image(self, where, n, seen):
        """Copy one plainly stored image (fresh contiguous ByteTensor + storage); False if not."""
        hdr, src = self._hdr, self.src
        if hdr is None or self.shape is None or src.pos + hdr.size > src.n:
            return False
        at = src.pos
        t = hdr.unpack(src.read(hdr.size, "an image header"))
        key = t[1]
        if (t[0] != TYPE_NUMBER or t[2] != TYPE_TORCH or t[4:16] != self._expect_tensor
                or t[16] != TYPE_TORCH or t[18:23] != self._expect_storage
                or t[3] <= self.objects.hi or t[17] != t[3] + 1
                or not (key.is_integer() and 1 <= key <= n) or seen[int(key) - 1]
                or src.pos + t[22] > src.n):
            src.seek(at)  # the generic reader takes it (and reports any error with its offset)
            return False
        seen[int(key) - 1] = True
        k = self._slot()
        if self.flat is not None:
            src.readinto(memoryview(self.flat[k]), "image pixels")
        else:
            src.seek(src.pos + t[22])
        self._add_run(t[3], 1, k)
        return True

    def _fast_block(self, n, seen, done):
        """Copy a run of plainly stored images with consecutive keys (done+1, done+2, ...).

        One ``readinto`` fetches up to BLOCK_BYTES of records (header + pixels) into a
        staging buffer; the headers are checked against the bytes ``torch.save`` writes for
        those keys and indices, all at once; the pixels are copied to their rows. Returns
        how many images it took (0: the per-image path goes on).
        """
        hdr, src = self._hdr, self.src
        if hdr is None or self.shape is None:
            return 0
        size = hdr.size + self._nbytes
        m = min(n - done, max(1, BLOCK_BYTES // size), (src.n - src.pos) // size)
        if self.limit is not None:
            m = min(m, self.limit - self.n)
        if m < 2 or seen[done:done + m].any():
            return 0
        if self._staging is None or self._staging.shape[0] < m:
            self._staging = np.empty((max(m, BLOCK_BYTES // size), size), dtype=np.uint8)
        stage = self._staging[:m]
        at = src.pos
        src.readinto(memoryview(stage).cast("B"), "image records")
        expect = np.empty((m, hdr.size), dtype=np.uint8)
        expect[:] = np.frombuffer(self._template, dtype=np.uint8)
        first = self.objects.hi + 1
        expect[:, 4:12] = (np.arange(done + 1, done + m + 1, dtype="<f8")
                           .view(np.uint8).reshape(m, 8))
        tidx = np.arange(first, first + 2 * m, 2, dtype="<i4")
        expect[:, self._tidx_at:self._tidx_at + 4] = tidx.view(np.uint8).reshape(m, 4)
        expect[:, self._sidx_at:self._sidx_at + 4] = (tidx + 1).view(np.uint8).reshape(m, 4)
        bad = (stage[:, :hdr.size] != expect).any(axis=1)
        good = m if not bad.any() else int(np.argmax(bad))
        if good < m:
            src.seek(at + good * size)
        if good == 0:
            return 0
        seen[done:done + good] = True
        k = self._slots(good)
        if self.flat is not None:
            self.flat[k:k + good] = stage[:good, hdr.size:]
        self._add_run(first, good, k)
        return good

    def _put(self, obj, where, n_in_table):
        if not isinstance(obj, torch.Tensor):
            self.fail(f"{where} is {_describe(obj)}, expected a 3xHxW torch.ByteTensor")
        if obj.dtype != torch.uint8:
            self.fail(f"{where} is {_describe(obj)}, expected a torch.ByteTensor")
        if self.shape is None:
            if obj.dim() != 3 or obj.shape[0] != CHANNELS:
                self.fail(f"{where} is {_size_str(obj.shape)}, expected 3xHxW (RGB)")
            self._set_shape(tuple(obj.shape), n_in_table)
        elif tuple(obj.shape) != self.shape:
            self.fail(f"{where} is {_size_str(obj.shape)}, expected {_size_str(self.shape)}")
        k = self._slot()
        if self.images is not None:
            self.images[k] = obj

    def _set_shape(self, shape, n_in_table):
        self.shape = shape
        c, h, w = shape
        self._expect_tensor = (3, _VERSION, 16, _TENSOR, 3, c, h, w, h * w, w, 1, 1)
        self._expect_storage = (3, _VERSION, 17, _STORAGE, c * h * w)
        self._nbytes = c * h * w
        if self._hdr is not None:  # an image record's header bytes, key and indices zeroed
            self._template = self._hdr.pack(TYPE_NUMBER, 0.0, TYPE_TORCH, 0, *self._expect_tensor,
                                            TYPE_TORCH, 0, *self._expect_storage)
            self._tidx_at = 16  # int32 tag, double key, int32 tag -> the tensor's index
            # ... and the storage's index: before "V 1", "torch.ByteStorage" and its size
            self._sidx_at = self._hdr.size - (4 + 4 + 3 + 4 + 17 + self.src.long_size)
        if not self.keep_pixels:
            return
        if self.layout == EXTRA:
            capacity = n_in_table
        else:  # each image needs at least its pixel bytes in the file
            capacity = max(n_in_table, self.src.remaining() // (c * h * w) + 1)
        if self.limit is not None:
            capacity = min(capacity, self.limit)
        self._allocate(capacity)

    def _allocate(self, capacity):
        old = self.images
        self.images = torch.empty((capacity,) + self.shape, dtype=torch.uint8)
        self.flat = self.images.numpy().reshape(capacity, -1)
        if old is not None:
            self.images[:self.n] = old[:self.n]

    def _slot(self):
        return self._slots(1)

    def _slots(self, count):
        """Reserve ``count`` rows of ``images``; returns the first."""
        k = self.n
        if self.images is not None and k + count > self.images.shape[0]:
            grown = max(2 * self.images.shape[0], k + count)
            self._allocate(grown if self.limit is None else min(grown, self.limit))
        self.n += count
        return k

    # -- result --------------------------------------------------------------------------
    def result(self) -> Split:
        if self.n == 0 or self.shape is None:
            self.fail("holds no images")
        images = self.images[:self.n]
        if self.images.shape[0] > self.n + self.n // 8:  # a file with shared storages
            images = images.clone()
        if self.layout == EXTRA:
            return Split(images, None, class_names(len(CLASS_NAMES)), EXTRA)
        labels = torch.cat([torch.full((m,), c, dtype=torch.int64) for c, m in self.segments])
        if self.balanced_limit is not None and self.balanced_limit < len(labels):
            keep = torch.sort(round_robin(labels, self.k_tables)[:self.balanced_limit]).values
            images, labels = images[keep], labels[keep]
        return Split(images, labels, class_names(self.k_tables), LABELLED)


def _scan(path_or_file, *, long_size=None, **kwargs) -> _CourseScanner:
    if hasattr(path_or_file, "read"):
        return _scan_file(path_or_file, getattr(path_or_file, "name", "<file>"), long_size, kwargs)
    name = os.fspath(path_or_file)
    with open(name, "rb") as f:
        return _scan_file(f, name, long_size, kwargs)


def _scan_file(f, name, long_size, kwargs) -> _CourseScanner:
    start = f.tell()
    n = f.seek(0, os.SEEK_END) - start
    f.seek(start)
    if n <= 0:
        raise A2Error(f"{name}: the file is empty; expected a t7 course split")
    if long_size not in (None, 4, 8):
        raise ValueError(f"long_size must be None, 4 or 8, got {long_size}")
    try:
        if is_ascii(f.read(2)):
            f.seek(start)
            scanner = _CourseScanner(_Ascii(f.read()), name=name, **kwargs)
            scanner.read_split()
            return scanner
        first_error = None
        for ls in [long_size] if long_size else [8, 4]:
            f.seek(start)
            scanner = _CourseScanner(_FileSource(f, n, ls), name=name, **kwargs)
            try:
                scanner.read_split()
                return scanner
            except (T7FormatError, A2Error) as err:
                first_error = first_error or err
        raise first_error
    except T7FormatError as err:
        raise T7FormatError(f"{name}: {err}") from None


def load_split(path, limit: Optional[int] = None, *, expect: Optional[str] = None,
               long_size: Optional[int] = None) -> Split:
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
    split = _scan(path, long_size=long_size, limit=limit, expect=expect, balanced=True).result()
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


# -- writing ---------------------------------------------------------------------------------
class CourseWriter:
    """Streams the course layout to a binary file: table headers first, then images in order.

    Port of what ``torch.save`` (``File.lua`` ``writeObject``) writes for
    ``{data = {c1, ..., cK}}`` or ``{data = {{...}}}`` of fresh contiguous ByteTensors:
    reference indices numbered in writing order, each image with its own storage.

    Parameters
    ----------
    f : binary file object
    counts : list of int
        Images per class table (one entry for the extra layout).
    shape : (C, H, W)
    """

    def __init__(self, f, counts, shape):
        self.f = f
        self.counts = [int(c) for c in counts]
        self.shape = tuple(int(s) for s in shape)
        c, h, w = self.shape
        self.nbytes = c * h * w
        self._image_hdr = struct.Struct("<id ii i3s i16s i 3q3qq ii i3s i17s q")
        self._fixed = (3, _VERSION, 16, _TENSOR, 3, c, h, w, h * w, w, 1, 1)
        self._fixed2 = (3, _VERSION, 17, _STORAGE, self.nbytes)
        self.table = 0  # 1-based index of the current class table; 0 before the first
        self.in_table = 0
        self.index = 3  # root table 1, data table 2
        f.write(struct.pack("<iii", TYPE_TABLE, 1, 1))
        f.write(struct.pack("<ii4s", TYPE_STRING, 4, b"data"))
        f.write(struct.pack("<iii", TYPE_TABLE, 2, len(self.counts)))

    def write(self, images):
        """Append images (uint8 numpy or torch, n x C x H x W) in file order."""
        arr = images.numpy() if isinstance(images, torch.Tensor) else images
        for img in arr:
            while self.table == 0 or self.in_table == self.counts[self.table - 1]:
                if self.table == len(self.counts):
                    raise A2Error(f"more images than the {sum(self.counts)} declared")
                self.table += 1
                self.in_table = 0
                self.f.write(struct.pack("<idiii", TYPE_NUMBER, self.table, TYPE_TABLE,
                                         self.index, self.counts[self.table - 1]))
                self.index += 1
            self.in_table += 1
            self.f.write(self._image_hdr.pack(TYPE_NUMBER, self.in_table, TYPE_TORCH, self.index,
                                              *self._fixed, TYPE_TORCH, self.index + 1,
                                              *self._fixed2))
            self.f.write(np.ascontiguousarray(img).data)
            self.index += 2

    def close(self):
        done = sum(self.counts[:self.table - 1]) + self.in_table if self.table else 0
        if done != sum(self.counts):
            raise A2Error(f"wrote {done} images, but the tables declare {sum(self.counts)}")


def check_images(images, what="images") -> torch.Tensor:
    """``images`` as a uint8 torch tensor N x 3 x H x W, or an A2Error saying what it is."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise A2Error(f"{what} should be a uint8 tensor N x 3 x H x W, got {type(images).__name__}")
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != CHANNELS:
        raise A2Error(f"{what} should be a uint8 tensor N x 3 x H x W, got {images.dtype} "
                      f"{_size_str(images.shape)}")
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
                          f"{labels.dtype} {_size_str(labels.shape)}")
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
