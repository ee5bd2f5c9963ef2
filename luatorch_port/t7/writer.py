"""Writer for Lua Torch7's binary serialization format (8-byte long).

Port of torch7's ``File.lua`` ``writeObject`` and ``Tensor.c``/``Storage.c`` ``write``
(torch7 814ea4a): each table, torch object and function gets a reference index (the first
object is 1), an object met again is written as its tag and index only, tensors write
nDimension, sizes, strides, storageOffset+1 and then their whole storage as an object.

Deviations: Python has no Lua table order, so a dict's keys are written in insertion
order (Lua's ``pairs`` order is hash-seeded per process: byte-exact output is only defined
for tables with at most one string key). A 0-dim tensor is written as a 1-element 1-D
tensor and a bool tensor as a ByteTensor (Torch7 has neither). ``None`` inside a table is
no entry, as ``nil`` is in Lua: ``{"a": None}`` is written as ``{}`` and ``[1, None, 3]`` as
``{[1]=1, [3]=3}`` (a hole), which is what Torch7 and the reader then see.
"""

from __future__ import annotations

import io
import math
import os
import struct

import numpy as np
import torch

from ..util.files import atomic_output
from .reader import (MAX_DEPTH, TYPE_BOOLEAN, TYPE_FUNCTION, TYPE_NIL, TYPE_NUMBER,
                     TYPE_STRING, TYPE_TABLE, TYPE_TORCH)
from .types import DTYPE_TENSOR_CLASS, LuaFunction, LuaObject, Storage, TableKey

_CHUNK = 1 << 24  # bytes per write() of a large storage
_HEADERS = {}  # (class name, version) -> its encoded "V n" and name strings
_TENSOR_CLASSES = frozenset(DTYPE_TENSOR_CLASS.values())


class T7WriteError(ValueError):
    """An object cannot be written as t7; the message names its path (``root.data[3]``)."""


class Writer:
    """Serializes one object graph to a binary file object."""

    def __init__(self, f, long_size=8):
        if long_size not in (4, 8):
            raise ValueError(f"long_size must be 4 or 8, got {long_size}")
        self.f = f
        self.index = {}  # identity key -> reference index
        self.next_index = 1
        self.alive = []  # keeps keyed objects alive so their id() is not reused
        self.depth = 0  # tables, torch objects and functions open, as the reader counts them
        self._long_code = "q" if long_size == 8 else "i"

    def _i32(self, v):
        self.f.write(struct.pack("<i", v))

    def _i64s(self, values):
        """Torch ``long`` values (sizes, strides, offsets): int64, or int32 with long_size=4."""
        try:
            self.f.write(struct.pack(f"<{len(values)}{self._long_code}", *values))
        except struct.error:
            raise T7WriteError(f"a long value out of range for {self._long_code!r}: {values}") \
                from None

    def _chars(self, b: bytes):
        self._i32(len(b))
        self.f.write(b)

    def _reference(self, tag, key, obj=None):
        """Write tag + index; True if the object was already written (nothing more to do)."""
        self._i32(tag)
        self.alive.append(obj)
        if key in self.index:
            self._i32(self.index[key])
            return True
        self.index[key] = self.next_index
        self._i32(self.next_index)
        self.next_index += 1
        return False

    def _torch_header(self, class_name, version=1):
        header = _HEADERS.get((class_name, version))
        if header is None:
            version_text, name = f"V {version}".encode(), class_name.encode()
            header = (struct.pack("<i", len(version_text)) + version_text
                      + struct.pack("<i", len(name)) + name)
            if len(_HEADERS) < 1000:
                _HEADERS[class_name, version] = header
        self.f.write(header)

    def table_header(self, n_entries):
        """Start a new table of ``n_entries`` key/value pairs, which the caller writes next
        (``write(key)`` then the value, ``n_entries`` times): for tables streamed piece by
        piece. The bytes are what :meth:`write` gives a dict of that many entries."""
        self._reference(TYPE_TABLE, ("stream", self.next_index))
        self._i32(n_entries)

    def tensor_header(self, class_name, shape) -> int:
        """Start a new contiguous tensor of ``shape`` whose storage data the caller writes.

        Writes what :meth:`write` writes for a fresh contiguous tensor up to its storage's
        raw data: the tensor's header, sizes, strides and offset, then the storage's header.
        The caller then writes exactly the returned number of elements, in the class's
        element type, little-endian (a ByteTensor's: bytes).

        Raises T7WriteError for a class name Torch7 does not have or an empty shape.
        """
        if class_name not in _TENSOR_CLASSES:
            raise T7WriteError(f"unknown tensor class {class_name!r}; expected one of "
                               f"{', '.join(sorted(_TENSOR_CLASSES))}")
        shape = [int(n) for n in shape]
        if not shape or min(shape) < 1:
            raise T7WriteError(f"a streamed tensor needs sizes >= 1, got {tuple(shape)}")
        strides, numel = [], 1
        for n in reversed(shape):
            strides.insert(0, numel)
            numel *= n
        self._reference(TYPE_TORCH, ("stream", self.next_index))
        self._torch_header(class_name)
        self._i32(len(shape))
        self._i64s([*shape, *strides, 1])
        self._reference(TYPE_TORCH, ("stream", self.next_index))
        self._torch_header(class_name.replace("Tensor", "Storage"))
        self._i64s([numel])
        return numel

    def _enter(self, path):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise T7WriteError(f"nesting deeper than {MAX_DEPTH} (t7.MAX_DEPTH, the reader's "
                               f"limit too) at {path}")

    def write(self, obj, path="root"):
        try:
            self._write(obj, path)
        except RecursionError:
            raise T7WriteError(f"nesting too deep to write at {path}") from None

    def _write(self, obj, path):
        if obj is None:
            self._i32(TYPE_NIL)
        elif isinstance(obj, (bool, np.bool_)):
            self._i32(TYPE_BOOLEAN)
            self._i32(1 if obj else 0)
        elif isinstance(obj, (int, float, np.integer, np.floating)):
            if isinstance(obj, np.integer):  # numpy compares int64 with float64 inexactly
                obj = int(obj)
            try:
                as_double = float(obj)
            except OverflowError:
                as_double = None
            if as_double is None or (isinstance(obj, (int, np.integer)) and as_double != obj):
                raise T7WriteError(f"the integer {obj} is not exactly a Lua number (a double) "
                                   f"at {path}")
            value = struct.pack("<d", as_double)
            self._i32(TYPE_NUMBER)
            self.f.write(value)
        elif isinstance(obj, (str, bytes)):
            self._i32(TYPE_STRING)
            self._chars(obj if isinstance(obj, bytes) else obj.encode("utf-8", "surrogateescape"))
        elif isinstance(obj, np.ndarray):
            try:
                tensor = torch.from_numpy(np.ascontiguousarray(obj))
            except TypeError:
                raise T7WriteError(f"Unwritable numpy array of dtype {obj.dtype} at {path}; "
                                   f"Torch7 has tensors of numbers only") from None
            self._write(tensor, path)
        elif isinstance(obj, torch.Tensor):
            self._write_tensor(obj, path)
        elif isinstance(obj, Storage):
            self._write_storage(obj.tensor, path)
        elif isinstance(obj, (list, tuple)):
            if self._reference(TYPE_TABLE, ("t", id(obj)), obj):
                return
            self._enter(path)
            self._i32(sum(v is not None for v in obj))  # None is a hole, as nil is in Lua
            for i, v in enumerate(obj, start=1):
                if v is not None:
                    self._write(i, path)
                    self._write(v, f"{path}[{i}]")
            self.depth -= 1
        elif isinstance(obj, dict):
            if self._reference(TYPE_TABLE, ("t", id(obj)), obj):
                return
            self._enter(path)
            self._i32(sum(v is not None for v in obj.values()))  # a nil value is no entry
            for k, v in obj.items():
                sub = f"{path}.{k}" if isinstance(k, str) else f"{path}[{k!r}]"
                if v is None:
                    if k is None:
                        raise T7WriteError(f"a table key cannot be None (Lua nil) at {path}")
                    continue
                self._write_key(k, path)
                self._write(v, sub)
            self.depth -= 1
        elif isinstance(obj, LuaObject):
            if self._reference(TYPE_TORCH, ("o", id(obj)), obj):
                return
            self._enter(path)
            self._torch_header(obj.class_name, obj.version)
            self._write(obj.fields, path)
            self.depth -= 1
        elif isinstance(obj, LuaFunction):
            if obj.type_tag == TYPE_FUNCTION:  # the oldest format carries no reference index
                self._i32(TYPE_FUNCTION)
            elif self._reference(obj.type_tag, ("f", id(obj)), obj):
                return
            self._enter(path)
            self._chars(obj.dumped)
            self._write(obj.upvalues, f"{path}.<upvalues>")
            self.depth -= 1
        else:
            raise T7WriteError(f"Unwritable object <{type(obj).__name__}> at {path}")

    def _write_key(self, key, path):
        if isinstance(key, TableKey):
            self._write(key.value, f"{path}.<key>")
        elif key is None:
            raise T7WriteError(f"a table key cannot be None (Lua nil) at {path}")
        elif isinstance(key, (float, np.floating)) and math.isnan(key):
            raise T7WriteError(f"a table key cannot be NaN at {path}")
        else:
            self._write(key, f"{path}.<key>")

    def _write_tensor(self, t, path):
        if t.dtype not in DTYPE_TENSOR_CLASS:
            raise T7WriteError(f"Unwritable tensor dtype {t.dtype} at {path}")
        if t.layout != torch.strided or t.is_nested or t.is_quantized:
            raise T7WriteError(f"Unwritable {t.layout} tensor at {path}; Torch7 has dense "
                               f"tensors only (call .to_dense() first)")
        if t.device.type == "meta":
            raise T7WriteError(f"Unwritable meta tensor at {path}: it has no data")
        if self._reference(TYPE_TORCH, ("T", id(t)), t):
            return
        self._enter(path)
        try:
            self._write_tensor_body(t, path)
        finally:
            self.depth -= 1

    def _write_tensor_body(self, t, path):
        t = t.detach()
        if t.device.type != "cpu" or t.is_conj() or t.is_neg():
            t = t.resolve_conj().resolve_neg().cpu()
        if t.dtype == torch.bool:
            t = t.to(torch.uint8)
        self._torch_header(DTYPE_TENSOR_CLASS[t.dtype])
        if t.numel() == 0:  # torch7's empty tensor: no dimensions, nil storage
            self._i32(0)
            self._i64s([])
            self._i64s([])
            self._i64s([1])
            self._i32(TYPE_NIL)
            return
        if t.dim() == 0:
            t = t.reshape(1)
        dim, offset = t.dim(), t.storage_offset()
        self._i32(dim)
        self._i64s([*t.shape, *t.stride(), offset + 1])  # sizes, strides, storageOffset+1
        untyped = t.untyped_storage()
        n_storage = untyped.nbytes() // t.element_size()
        if offset == 0 and t.numel() == n_storage and t.is_contiguous():
            whole = t.view(-1)  # the common case: the tensor is its whole storage
        else:
            whole = torch.empty(0, dtype=t.dtype).set_(untyped, 0, (n_storage,))
        self._write_storage(whole, path, key=("S", untyped.data_ptr(), t.dtype, untyped.nbytes()))

    def _write_storage(self, flat, path, key=None):
        if flat.dtype not in DTYPE_TENSOR_CLASS:
            raise T7WriteError(f"Unwritable storage dtype {flat.dtype} at {path}")
        if flat.layout != torch.strided or flat.device.type == "meta":
            raise T7WriteError(f"Unwritable {flat.device.type} {flat.layout} storage at {path}")
        if flat.dtype == torch.bool:
            flat = flat.to(torch.uint8)
        flat = flat.detach().cpu()
        if key is None:  # a Storage object: the same key as a tensor's when it is all of it
            untyped = flat.untyped_storage()
            whole = flat.storage_offset() == 0 and flat.numel() * flat.element_size() == \
                untyped.nbytes()
            key = ("S", untyped.data_ptr(), flat.dtype,
                   *((untyped.nbytes(),) if whole else (flat.storage_offset(), flat.numel())))
        if self._reference(TYPE_TORCH, key, flat):
            return
        self._enter(path)
        self.depth -= 1  # a storage holds no objects
        self._torch_header(DTYPE_TENSOR_CLASS[flat.dtype].replace("Tensor", "Storage"))
        self._i64s([flat.numel()])
        data = flat.contiguous().numpy().view(np.uint8).reshape(-1)
        for start in range(0, data.size, _CHUNK):
            self.f.write(memoryview(data[start:start + _CHUNK]))


def dumps(obj, *, long_size=8) -> bytes:
    """The t7 bytes of ``obj`` (see :func:`save`)."""
    buf = io.BytesIO()
    Writer(buf, long_size).write(obj)
    return buf.getvalue()


def save(obj, path_or_file, *, long_size=8):
    """Write ``obj`` as a binary t7 file that Lua Torch7's ``torch.load`` reads.

    Accepts None, bool, int/float (written as Lua numbers, i.e. doubles), str/bytes,
    list/tuple (Lua arrays), dict (tables), ``torch.Tensor`` and numpy arrays of any
    Torch7 dtype (non-contiguous ones too: the storage and strides are written),
    :class:`Storage`, :class:`LuaObject` (nn modules) and :class:`LuaFunction`. An object
    met twice is written once and referenced. A path is written atomically: a temp file
    in the same folder, renamed into place, so an interrupted save leaves no partial file.
    ``long_size=4`` writes sizes/strides/offsets as int32, as Lua Torch on Windows does.

    Raises
    ------
    T7WriteError
        For an object Torch7 cannot hold; the message names its path in ``obj``.
    """
    if hasattr(path_or_file, "write"):
        Writer(path_or_file, long_size).write(obj)
        return
    path = os.fspath(path_or_file)
    with atomic_output(path) as f:
        Writer(f, long_size).write(obj)
