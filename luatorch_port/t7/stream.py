"""Streaming t7 for tables of ByteTensors: a scanner that reads them into one tensor, a writer.

Port of what torch7's ``File.lua`` ``writeObject`` / ``readObject`` (torch7 814ea4a) do for a
table ``{data = {t1, ..., tK}}`` whose ``ti`` are Lua arrays of fresh contiguous 3-D
``torch.ByteTensor`` (the layout of the course's t7b files), without building the object
graph. :class:`ByteTensorRecord` is the one definition of the bytes of one such array entry
(number key, tensor header, storage header; the pixels follow); the scanner checks headers
against it and :class:`CourseWriter` writes it.

The scanner (:class:`ByteTensorScanner`) copies each tensor into one preallocated
N x C x H x W tensor: runs of plainly stored records through a 4 MB staging buffer with all
their headers checked at once, single ones with ``readinto`` into their row; anything stored
otherwise (shared or strided storages, the same tensor twice, ascii files) goes through the
generic :class:`~luatorch_port.t7.reader.Reader` and is copied in too. It reads through the
reader's primitive binary source (:class:`StreamSource` adds ``seek`` and ``readinto``), so
byte order and bounds checks are the reader's. What the tables mean (classes, labels,
which layouts are wanted) is the caller's: a subclass walks the root with the primitives
here (see ``luatorch_port.data.layout``).
"""

from __future__ import annotations

import bisect
import os
import struct

import numpy as np
import torch

from ..util.errors import A2Error
from .reader import (TYPE_NUMBER, TYPE_STRING, TYPE_TABLE, TYPE_TORCH, Reader, T7FormatError,
                     _Ascii, _Binary, is_ascii)
from .types import DTYPE_TENSOR_CLASS, LuaFunction, LuaObject, Storage

_TENSOR, _STORAGE = b"torch.ByteTensor", b"torch.ByteStorage"
_VERSION = b"V 1"
BLOCK_BYTES = 4 << 20  # records fetched per readinto by the scanner's block fast path


class ByteTensorRecord:
    """The bytes ``torch.save`` writes for one array entry ``[key] = t``, ``t`` a fresh
    contiguous ByteTensor of ``shape`` (C, H, W) with its own storage, up to the pixels.

    Layout (little-endian, ``q`` a long of ``long_size`` bytes): number tag + key (double);
    torch tag, reference index, ``"V 1"``, ``"torch.ByteTensor"``, nDimension 3, sizes,
    strides, storageOffset 1; torch tag, index + 1, ``"V 1"``, ``"torch.ByteStorage"``,
    size C*H*W. Then ``nbytes`` = C*H*W pixel bytes.
    """

    def __init__(self, shape, long_size=8):
        c, h, w = (int(s) for s in shape)
        q = "q" if long_size == 8 else "i"
        self.struct = struct.Struct(f"<id ii i3s i16s i 3{q}3{q}{q} ii i3s i17s {q}")
        self.size = self.struct.size
        self.nbytes = c * h * w
        self.tensor_fields = (3, _VERSION, 16, _TENSOR, 3, c, h, w, h * w, w, 1, 1)
        self.storage_fields = (3, _VERSION, 17, _STORAGE, self.nbytes)
        # byte offsets of the key (a double) and the two reference indices (int32)
        self.key_at = 4
        self.tensor_index_at = 16  # int32 tag, double key, int32 tag
        # before "V 1", "torch.ByteStorage" and the storage size
        self.storage_index_at = self.size - (4 + 4 + 3 + 4 + 17 + long_size)

    def pack(self, key, index) -> bytes:
        """The header of entry ``key`` whose tensor gets reference index ``index``."""
        return self.struct.pack(TYPE_NUMBER, key, TYPE_TORCH, index, *self.tensor_fields,
                                TYPE_TORCH, index + 1, *self.storage_fields)


class StreamSource(_Binary):
    """The reader's binary source, plus ``seek`` back to a position and ``readinto`` a buffer.

    ``pos`` counts from where the file was when this was made (``base``).
    """

    def __init__(self, f, n, long_size=8):
        super().__init__(f, n, long_size)
        self.base = f.tell()

    def seek(self, pos):
        self.f.seek(self.base + pos)
        self.pos = pos

    def readinto(self, view, what):
        nbytes = view.nbytes
        self.need(nbytes, what)
        got = self.f.readinto(view) if nbytes else 0
        if got != nbytes:
            self.fail(f"{what} ({nbytes} bytes), but only {got} bytes remain")
        self.pos += nbytes


def size_str(shape) -> str:
    """``3x96x96``."""
    return "x".join(str(int(s)) for s in shape)


def describe(obj) -> str:
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
        return f"a {name} of size {size_str(obj.shape)}" if obj.dim() else f"an empty {name}"
    if isinstance(obj, Storage):
        return f"a {obj.class_name} of {len(obj)} elements"
    if isinstance(obj, (list, dict)):
        return f"a table of {len(obj)} entries"
    if isinstance(obj, LuaObject):
        return f"a {obj.class_name}"
    if isinstance(obj, LuaFunction):
        return "a function"
    return type(obj).__name__


class _ObjectTable(dict):
    """Reference index -> object, where tensors copied by the fast path are resolved lazily.

    The fast path does not create objects for the tensors and storages it copies; a later
    reference to one of them (the same tensor twice in a file) is answered from the buffer.
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


class ByteTensorScanner(Reader):
    """Reads Lua arrays of same-shape 3-D ByteTensors into one preallocated tensor.

    A subclass defines :meth:`read_root`, which walks the tables from the file's start with
    :meth:`table_header`, :meth:`array_key`, :meth:`read_object` and :meth:`read_array`, and
    may refine :meth:`check_shape`, :meth:`capacity` and ``expected_entry``. Layout errors raise
    :class:`~luatorch_port.util.errors.A2Error` ``"NAME: message"`` (:meth:`fail`); bytes
    that are not t7 raise :class:`T7FormatError` with the offset.

    Parameters
    ----------
    source : :class:`StreamSource` (binary: fast paths on) or the reader's ascii source
    name : str
        The file's name, first in every error.
    limit : int, optional
        Stop after this many tensors (``read_array`` returns early).
    keep_pixels : bool
        False counts and checks without allocating the images tensor.
    progress : :class:`~luatorch_port.util.progress.Progress`, optional
        Sees the bytes read of the file as the arrays are read (stage ``reading <name>``).

    Attributes
    ----------
    images : torch.Tensor or None
        uint8 (capacity, C, H, W); rows ``[:n]`` hold the tensors read, in file order.
    n : int
        Tensors read. ``n_fast``: how many of them the fast paths copied.
    shape : tuple or None
        (C, H, W) of the first tensor.
    """

    expected_entry = "a 3-D torch.ByteTensor"  # what an array entry should be (error messages)

    def __init__(self, source, *, name, limit=None, keep_pixels=True, progress=None):
        super().__init__(source)
        self.progress = progress
        self.objects = _ObjectTable(self)
        self.name = name
        self.limit = limit
        self.keep_pixels = keep_pixels
        self.shape = None
        self.images = None  # torch uint8 (capacity, C, H, W)
        self.flat = None  # its numpy view (capacity, C*H*W)
        self.n = 0
        # Tensors copied by the fast paths, as runs: first tensor reference index (increasing),
        # number of tensors (indices step by 2: tensor, storage), first slot in ``images``.
        self._run_tidx, self._run_len, self._run_k = [], [], []
        self.n_fast = 0
        self._staging = None
        self._binary = isinstance(source, StreamSource)
        self.record = None  # ByteTensorRecord of the first shape (binary sources only)

    def read_root(self):
        """Walk the file from its root object (the subclass's layout)."""
        raise NotImplementedError

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
        if self._binary:
            self.src.seek(at)
        else:
            self.src.pos = at

    # -- tables --------------------------------------------------------------------------
    def table_header(self, where, what):
        """Read a fresh table's header; returns its entry count. Anything else fails with
        ``"{where} is <what was there>, expected {what}"``."""
        at = self.src.pos
        tag = self.src.int("a type tag")
        if tag != TYPE_TABLE:
            self._rewind(at)
            obj = self.read_object()
            self.fail(f"{where} is {describe(obj)}, expected {what}")
        index = self.src.int("an object reference index")
        if index in self.objects:
            self.fail(f"{where} refers to a table read earlier; expected {what}")
        self.objects[index] = {}
        return self._count(self.src.int("a table size"), 8, "table entries")

    def array_key(self, where, n, seen):
        """Read a key of a Lua array of ``n`` entries (``seen``: bool array of keys met)."""
        key = self.read_object()
        if type(key) is not int or not 1 <= key <= n or seen[key - 1]:
            self.fail(f"{where} has the key {key!r}; expected each of 1..{n} once (a Lua array)")
        seen[key - 1] = True
        return key

    def read_array(self, where, n):
        """Read the ``n`` entries of the array ``where`` (its header read), each a tensor, into
        ``images``; stops early at ``limit``. Returns how many it read."""
        seen = np.zeros(n, dtype=bool)
        start = self.n
        done = 0
        while done < n:
            if self.limit is not None and self.n >= self.limit:
                break
            taken = self._fast_block(n, seen, done)
            if taken:
                done += taken
            else:
                if not self._fast_image(n, seen):
                    key = self.array_key(where, n, seen)
                    self.put(self.read_object(), f"{where}[{key}]", n)
                done += 1
            if self.progress is not None:
                self.progress(self.src.pos, self.src.n, stage=f"reading {os.path.basename(self.name)}", unit="B")
        return self.n - start

    # -- tensors -------------------------------------------------------------------------
    def _fast_image(self, n, seen):
        """Copy one plainly stored tensor (fresh contiguous ByteTensor + storage); False if not."""
        rec, src = self.record, self.src
        if rec is None or src.pos + rec.size > src.n:
            return False
        at = src.pos
        t = rec.struct.unpack(src.chars(rec.size, "an image header"))
        key = t[1]
        if (t[0] != TYPE_NUMBER or t[2] != TYPE_TORCH or t[4:16] != rec.tensor_fields
                or t[16] != TYPE_TORCH or t[18:23] != rec.storage_fields
                or t[3] <= self.objects.hi or t[17] != t[3] + 1
                or not (key.is_integer() and 1 <= key <= n) or seen[int(key) - 1]
                or src.pos + t[22] > src.n):
            src.seek(at)  # the generic reader takes it (and reports any error with its offset)
            return False
        seen[int(key) - 1] = True
        k = self._slots(1)
        if self.flat is not None:
            src.readinto(memoryview(self.flat[k]), "image pixels")
        else:
            src.seek(src.pos + t[22])
        self._add_run(t[3], 1, k)
        return True

    def _fast_block(self, n, seen, done):
        """Copy a run of plainly stored tensors with consecutive keys (done+1, done+2, ...).

        One ``readinto`` fetches up to BLOCK_BYTES of records (header + pixels) into a
        staging buffer; the headers are checked against the bytes ``torch.save`` writes for
        those keys and indices, all at once; the pixels are copied to their rows. Returns
        how many tensors it took (0: the per-tensor path goes on).
        """
        rec, src = self.record, self.src
        if rec is None:
            return 0
        size = rec.size + rec.nbytes
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
        expect = np.empty((m, rec.size), dtype=np.uint8)
        expect[:] = np.frombuffer(self._template, dtype=np.uint8)
        first = self.objects.hi + 1
        expect[:, rec.key_at:rec.key_at + 8] = (np.arange(done + 1, done + m + 1, dtype="<f8")
                                                .view(np.uint8).reshape(m, 8))
        tidx = np.arange(first, first + 2 * m, 2, dtype="<i4")
        t_at, s_at = rec.tensor_index_at, rec.storage_index_at
        expect[:, t_at:t_at + 4] = tidx.view(np.uint8).reshape(m, 4)
        expect[:, s_at:s_at + 4] = (tidx + 1).view(np.uint8).reshape(m, 4)
        bad = (stage[:, :rec.size] != expect).any(axis=1)
        good = m if not bad.any() else int(np.argmax(bad))
        if good < m:
            src.seek(at + good * size)
        if good == 0:
            return 0
        seen[done:done + good] = True
        k = self._slots(good)
        if self.flat is not None:
            self.flat[k:k + good] = stage[:good, rec.size:]
        self._add_run(first, good, k)
        return good

    def put(self, obj, where, n_in_table):
        """Copy the tensor ``obj`` (read by the generic reader) into the next row."""
        if not isinstance(obj, torch.Tensor):
            self.fail(f"{where} is {describe(obj)}, expected {self.expected_entry}")
        if obj.dtype != torch.uint8:
            self.fail(f"{where} is {describe(obj)}, expected a torch.ByteTensor")
        if self.shape is None:
            self.check_shape(tuple(obj.shape), where)
            self._set_shape(tuple(obj.shape), n_in_table)
        elif tuple(obj.shape) != self.shape:
            self.fail(f"{where} is {size_str(obj.shape)}, expected {size_str(self.shape)}")
        k = self._slots(1)
        if self.images is not None:
            self.images[k] = obj

    def check_shape(self, shape, where):
        """Fail unless ``shape``, the first tensor's, is one this file may hold."""
        if len(shape) != 3:
            self.fail(f"{where} is {size_str(shape)}, expected CxHxW")

    def capacity(self, n_in_table):
        """Rows to allocate when the first tensor is met in a table of ``n_in_table``: each
        tensor needs at least its pixel bytes in the file."""
        return max(n_in_table, self.src.remaining() // int(np.prod(self.shape)) + 1)

    def _set_shape(self, shape, n_in_table):
        self.shape = shape
        if self._binary:
            self.record = ByteTensorRecord(shape, self.src.long_size)
            # a record's header bytes, key and indices zeroed (the block path fills them in)
            self._template = self.record.pack(0.0, 0)
        if not self.keep_pixels:
            return
        capacity = self.capacity(n_in_table)
        if self.limit is not None:
            capacity = min(capacity, self.limit)
        self._allocate(capacity)

    def _allocate(self, capacity):
        old = self.images
        self.images = torch.empty((capacity,) + self.shape, dtype=torch.uint8)
        self.flat = self.images.numpy().reshape(capacity, -1)
        if old is not None:
            self.images[:self.n] = old[:self.n]

    def _slots(self, count):
        """Reserve ``count`` rows of ``images``; returns the first."""
        k = self.n
        if self.images is not None and k + count > self.images.shape[0]:
            grown = max(2 * self.images.shape[0], k + count)
            self._allocate(grown if self.limit is None else min(grown, self.limit))
        self.n += count
        return k

    def images_read(self) -> torch.Tensor:
        """``images[:n]`` (a copy when far fewer rows were used than allocated)."""
        images = self.images[:self.n]
        if self.images.shape[0] > self.n + self.n // 8:  # a file with shared storages
            images = images.clone()
        return images


def scan(path_or_file, make_scanner, *, long_size=None, what="a t7 file"):
    """Run ``make_scanner(source, name).read_root()`` over a t7 file; returns the scanner.

    ``path_or_file``: a path or a seekable binary file object (read from its position).
    Binary files are tried with 8-byte longs, then 4 (``long_size`` forces one); ascii
    files are scanned from memory. ``what`` names the expected content in the empty-file
    error. A :class:`T7FormatError` is re-raised with the file's name first.
    """
    if hasattr(path_or_file, "read"):
        return _scan_file(path_or_file, getattr(path_or_file, "name", "<file>"), make_scanner,
                          long_size, what)
    name = os.fspath(path_or_file)
    with open(name, "rb") as f:
        return _scan_file(f, name, make_scanner, long_size, what)


def _scan_file(f, name, make_scanner, long_size, what):
    start = f.tell()
    n = f.seek(0, os.SEEK_END) - start
    f.seek(start)
    if n <= 0:
        raise A2Error(f"{name}: the file is empty; expected {what}")
    if long_size not in (None, 4, 8):
        raise ValueError(f"long_size must be None, 4 or 8, got {long_size}")
    try:
        if is_ascii(f.read(2)):
            f.seek(start)
            scanner = make_scanner(_Ascii(f.read()), name)
            scanner.read_root()
            return scanner
        first_error = None
        for ls in [long_size] if long_size else [8, 4]:
            f.seek(start)
            scanner = make_scanner(StreamSource(f, n, ls), name)
            try:
                scanner.read_root()
                return scanner
            except (T7FormatError, A2Error) as err:
                first_error = first_error or err
        raise first_error
    except T7FormatError as err:
        raise T7FormatError(f"{name}: {err}") from None


class CourseWriter:
    """Streams ``{data = {t1, ..., tK}}`` to a binary file: table headers first, then tensors.

    Port of what ``torch.save`` (``File.lua`` ``writeObject``) writes for that table when
    each ``ti`` is a Lua array of fresh contiguous ByteTensors of one shape: reference
    indices numbered in writing order, each tensor with its own storage
    (:class:`ByteTensorRecord`), 8-byte longs.

    Parameters
    ----------
    f : binary file object
    counts : list of int
        Tensors per array ``ti`` (one entry: ``{data = {{...}}}``).
    shape : (C, H, W)
    """

    def __init__(self, f, counts, shape):
        self.f = f
        self.counts = [int(c) for c in counts]
        self.shape = tuple(int(s) for s in shape)
        self.record = ByteTensorRecord(self.shape)
        self.nbytes = self.record.nbytes
        self.table = 0  # 1-based index of the current array; 0 before the first
        self.in_table = 0
        self.index = 3  # root table 1, data table 2
        f.write(struct.pack("<iii", TYPE_TABLE, 1, 1))
        f.write(struct.pack("<ii4s", TYPE_STRING, 4, b"data"))
        f.write(struct.pack("<iii", TYPE_TABLE, 2, len(self.counts)))

    def write(self, images):
        """Append tensors (uint8 numpy or torch, n x C x H x W) in file order."""
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
            self.f.write(self.record.pack(self.in_table, self.index))
            self.f.write(np.ascontiguousarray(img).data)
            self.index += 2

    def close(self):
        done = sum(self.counts[:self.table - 1]) + self.in_table if self.table else 0
        if done != sum(self.counts):
            raise A2Error(f"wrote {done} images, but the tables declare {sum(self.counts)}")
