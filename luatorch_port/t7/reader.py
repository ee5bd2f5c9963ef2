"""Reader for Lua Torch7's serialization format (binary and ascii).

Port of torch7's ``File.lua`` ``readObject`` and of ``Tensor.c``/``Storage.c`` ``read``
(torch7 814ea4a), following python-torchfile 0.1.0's structure. torchfile itself is not the
parser because, as verified on the oracle files, it: crashes on any Lua array of tensors
(``invalid __array_struct__``, its list heuristic compares tensors); calls ``xrange`` on its
4-byte-long path; reads storages with ``np.fromfile`` (no BytesIO); has no ascii mode;
surfaces truncation as a bare ``struct.error``; and reads missing keys as None. Here every
read is bounds-checked against the bytes that remain, sizes are checked before anything is
allocated, and each error names the byte offset and what was expected. Binary files are
read through a buffered file with storages ``readinto`` their final arrays; ascii files are
parsed from memory.

Deviations: integral Lua numbers (|x| <= 2^53) come back as ``int`` (like torchfile's int
heuristic); an ascii integer that its type cannot hold is an error (C's fscanf would wrap it);
tag 6 functions
carry no reference index, as in ``File.lua`` (torchfile reads one). See docs/t7.md.
"""

from __future__ import annotations

import gc
import io
import math
import os
import re
import struct
import sys

import numpy as np
import torch

from .types import STORAGE_DTYPES, TENSOR_DTYPES, LuaFunction, LuaObject, Storage, TableKey

TYPE_NIL, TYPE_NUMBER, TYPE_STRING, TYPE_TABLE, TYPE_TORCH, TYPE_BOOLEAN = 0, 1, 2, 3, 4, 5
TYPE_FUNCTION, LEGACY_TYPE_RECUR_FUNCTION, TYPE_RECUR_FUNCTION = 6, 7, 8
_TYPE_NAMES = {TYPE_NIL: "nil", TYPE_NUMBER: "number", TYPE_STRING: "string",
               TYPE_TABLE: "table", TYPE_TORCH: "torch object", TYPE_BOOLEAN: "boolean",
               TYPE_FUNCTION: "function", LEGACY_TYPE_RECUR_FUNCTION: "function",
               TYPE_RECUR_FUNCTION: "function"}
# Tables, torch objects and functions nested deeper than this are refused by the reader and
# by the writer alike, so every file the port writes it reads back. An nn model nests < 20
# deep and Torch7 reads 250; at 2 Python frames per level the recursive reader stays well
# under Python's default recursion limit of 1000.
MAX_DEPTH = 256
_BUFFER = 1 << 18  # read buffer for small fields; storages bypass it with readinto


class T7FormatError(ValueError):
    """The bytes are not a valid t7 serialization; the message names the offset."""


_I32 = struct.Struct("<i")
_F64 = struct.Struct("<d")
_LONG = {8: struct.Struct("<q"), 4: struct.Struct("<i")}
_LONG_NP = {8: "<i8", 4: "<i4"}
_BIG_ENDIAN_HOST = sys.byteorder == "big"


class _Bounded:
    """What both primitive readers share: ``pos`` and ``n`` (bytes in all), and errors that
    name the offset."""

    def fail(self, what, at=None):
        at = self.pos if at is None else at
        raise T7FormatError(f"offset {at}: expected {what}")

    def need(self, nbytes, what):
        if nbytes < 0 or self.pos + nbytes > self.n:
            self.fail(f"{what} ({nbytes} bytes), but only {self.n - self.pos} bytes remain")

    def remaining(self):
        return self.n - self.pos


class _Buffer(_Bounded):
    """Bounds-checked primitive reads from an in-memory buffer (the base of the ascii reader)."""

    def __init__(self, buf, long_size=8):
        self.buf = buf
        self.n = len(buf)
        self.pos = 0
        self.long_size = long_size

    def chars(self, count, what="characters"):
        self.need(count, what)
        out = bytes(self.buf[self.pos:self.pos + count])
        self.pos += count
        return out

    def string(self):
        """A Lua string: int32 length, then the bytes."""
        return _generic_string(self)

    def array(self, dtype, count, what, out=None):
        """``count`` elements of ``dtype`` as a new numpy array (or into ``out``, a numpy view)."""
        dtype = np.dtype(dtype)
        self.need(count * dtype.itemsize, what)
        src = np.frombuffer(self.buf, dtype=dtype.newbyteorder("<"), count=count, offset=self.pos)
        self.pos += count * dtype.itemsize
        if out is not None:
            out[...] = src.reshape(out.shape)
            return out
        return src.astype(dtype, copy=True)


class _Binary(_Bounded):
    """Primitive reads in torch7's binary format (little-endian) from a seekable binary file.

    ``n`` is the number of bytes from the start position to the end of the file: every
    read is checked against it before anything is allocated, so a size field larger than
    the bytes left is an error, not an allocation. Storage data is read with ``readinto``
    straight into its final array (no intermediate copy, no mmap pages held).
    """

    def __init__(self, f, n, long_size=8):
        self.f = f
        self.n = n
        self.pos = 0
        self.long_size = long_size
        self._long = _LONG[long_size]

    def _read(self, size, what):
        data = self.f.read(size)
        if len(data) != size:
            self.fail(f"{what} ({size} bytes), but only {len(data)} bytes remain")
        self.pos += size
        return data

    def int(self, what="int32"):
        data = self.f.read(4)
        if len(data) != 4:
            self.fail(f"{what} (4 bytes), but only {len(data)} bytes remain")
        self.pos += 4
        return _I32.unpack(data)[0]

    def long(self, what="long"):
        return self._long.unpack(self._read(self.long_size, what))[0]

    def longs(self, count, what="longs"):
        self.need(count * self.long_size, what)
        data = self._read(count * self.long_size, what)
        if count <= 16:  # tensor headers: struct beats numpy at this size
            return list(struct.unpack(f"<{count}{'q' if self.long_size == 8 else 'i'}", data))
        return np.frombuffer(data, dtype=_LONG_NP[self.long_size]).tolist()

    def double(self, what="number"):
        return _F64.unpack(self._read(8, what))[0]

    def chars(self, count, what="characters"):
        self.need(count, what)
        return self._read(count, what)

    def string(self):
        """A Lua string: int32 length, then the bytes (one call: this is the hot path)."""
        head = self.f.read(4)
        if len(head) != 4:
            self.fail(f"a string length (4 bytes), but only {len(head)} bytes remain")
        size = _I32.unpack(head)[0]
        if size < 0:
            self.fail(f"a string length >= 0, got {size}")
        self.pos += 4
        if size > self.n - self.pos:
            self.fail(f"a string of {size} bytes ({size} bytes), but only "
                      f"{self.n - self.pos} bytes remain")
        data = self.f.read(size)
        self.pos += size
        return data

    def array(self, dtype, count, what, out=None):
        """``count`` elements of ``dtype`` as a new numpy array (or into ``out``, a numpy array)."""
        dtype = np.dtype(dtype)
        nbytes = count * dtype.itemsize
        if nbytes > self.n - self.pos:
            self.need(nbytes, what)
        if out is None:
            target = np.empty(count, dtype=dtype)
        elif out.flags.c_contiguous and out.dtype == dtype:
            target = out
        else:
            target = np.empty(count, dtype=dtype)
        got = self.f.readinto(memoryview(target).cast("B")) if nbytes else 0
        if got != nbytes:
            self.fail(f"{what} ({nbytes} bytes), but only {got} bytes remain")
        self.pos += nbytes
        if _BIG_ENDIAN_HOST and dtype.itemsize > 1:
            target.byteswap(inplace=True)  # the file is little-endian
        if out is not None and target is not out:
            out[...] = target.reshape(out.shape)
            return out
        return target


_TOKEN = re.compile(rb"\s*([^\s]+)")
# (lo, hi, name) of an ascii int (4 bytes) and long (long_size bytes)
_INT_BOUNDS = {4: (-2 ** 31, 2 ** 31 - 1, "int32"), 8: (-2 ** 63, 2 ** 63 - 1, "int64")}


class _Ascii(_Buffer):
    """Primitive reads in torch7's ascii format (DiskFile with ``isAutoSpacing``).

    Numbers are whitespace-separated tokens; chars and bytes are raw; after each
    read of n > 0 items one trailing newline is consumed.
    """

    def _end_item(self):
        if self.pos < self.n and self.buf[self.pos:self.pos + 1] == b"\n":
            self.pos += 1

    def _tokens(self, count, what, conv, bounds=None):
        """``count`` tokens through ``conv``; integers outside ``bounds`` (lo, hi, type name)
        are errors here, as the binary format cannot hold them (fscanf would wrap them)."""
        out = []
        for _ in range(count):
            m = _TOKEN.match(self.buf, self.pos)
            if m is None:
                self.fail(f"{what}, but the file ends")
            try:
                value = conv(m.group(1))
            except ValueError:
                self.fail(f"{what}, got {bytes(m.group(1)[:20])!r}", at=m.start(1))
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                self.fail(f"{what}: a value that fits {bounds[2]}, got {value}", at=m.start(1))
            out.append(value)
            self.pos = m.end(1)
        if count:
            self._end_item()
        return out

    def int(self, what="int"):
        return self._tokens(1, what, int, _INT_BOUNDS[4])[0]

    def long(self, what="long"):
        return self._tokens(1, what, int, _INT_BOUNDS[self.long_size])[0]

    def longs(self, count, what="longs"):
        if count > self.remaining():
            self.fail(f"{count} {what}, but only {self.remaining()} bytes remain")
        return self._tokens(count, what, int, _INT_BOUNDS[self.long_size])

    def double(self, what="number"):
        return self._tokens(1, what, _ascii_float)[0]

    def chars(self, count, what="characters"):
        out = super().chars(count, what)
        if count:
            self._end_item()
        return out

    def array(self, dtype, count, what, out=None):
        dtype = np.dtype(dtype)
        if dtype.itemsize == 1:  # Byte/Char storages are raw in ascii mode
            arr = super().array(dtype, count, what, out)
            if count:
                self._end_item()
            return arr
        if count > self.remaining():
            self.fail(f"{count} elements of {what}, but only {self.remaining()} bytes remain")
        if dtype.kind == "f":
            with np.errstate(over="ignore"):  # 1e39 in a FloatStorage is inf, as in C
                arr = np.array(self._tokens(count, what, _ascii_float), dtype=dtype)
        else:
            info = np.iinfo(dtype)
            arr = np.array(self._tokens(count, what, int, (int(info.min), int(info.max), dtype.name)),
                           dtype=dtype)
        if out is not None:
            out[...] = arr.reshape(out.shape)
            return out
        return arr


def _ascii_float(token):
    text = token.decode("ascii", "replace").lower()
    if text in ("nan", "-nan", "+nan"):
        return math.nan
    return float(text)


def _generic_string(src):
    at = src.pos
    size = src.int("a string length")
    if size < 0:
        src.fail(f"a string length >= 0, got {size}", at=at)
    return src.chars(size, f"a string of {size} bytes")


_NUMPY_DTYPES = {dt: torch.empty(0, dtype=dt).numpy().dtype for dt in set(STORAGE_DTYPES.values())}
_MAX_NUMEL = 2 ** 62  # beyond any real tensor; keeps as_strided's int64 arithmetic exact


def _lua_number(x):
    if x.is_integer() and abs(x) <= 2 ** 53 and not (x == 0 and math.copysign(1, x) < 0):
        return int(x)
    return x


class Reader:
    """One pass over a serialized object graph; ``read()`` returns the root object.

    Subclasses may override :meth:`read_storage_data` to place storage bytes somewhere
    other than a new array (the data layer streams images straight into one tensor).
    """

    def __init__(self, source):
        self.src = source
        self.objects = {}
        self.depth = 0
        self._open_tables = {}  # id of each table being read -> referenced from inside it yet
        string = getattr(source, "string", None)  # sources from elsewhere may lack it
        self._string = string if string is not None else lambda: _generic_string(source)

    # -- storages and tensors (Storage.c / Tensor.c ``read``) ------------------------------
    def read_storage_data(self, class_name, dtype, size, start):
        """The ``size`` elements of a storage as a 1-D tensor (the source is positioned on them)."""
        return torch.from_numpy(self.src.array(_NUMPY_DTYPES[dtype], size,
                                               f"{size} elements of {class_name}"))

    def read_storage(self, class_name):
        start = self.src.pos
        size = self.src.long(f"{class_name} size")
        dtype = STORAGE_DTYPES[class_name]
        itemsize = _NUMPY_DTYPES[dtype].itemsize
        if size < 0:
            self.src.fail(f"a storage size >= 0, got {size}", at=start)
        if isinstance(self.src, _Ascii):  # a number is a digit and a separator at least
            min_bytes = size if itemsize == 1 else size * 2 - 1
        else:
            min_bytes = size * itemsize
        if min_bytes > self.src.remaining():
            self.src.fail(f"{size} elements of {class_name} ({min_bytes} bytes), but only "
                          f"{self.src.remaining()} bytes remain", at=start)
        return Storage._wrap(self.read_storage_data(class_name, dtype, size, start))

    def read_tensor(self, class_name):
        src = self.src
        start = src.pos
        ndim = src.int(f"{class_name} nDimension")
        if ndim < 0 or ndim * 4 > src.remaining():  # sizes + strides: 2 bytes each at least
            src.fail(f"a tensor nDimension that fits the file, got {ndim}", at=start)
        header = src.longs(2 * ndim + 1, f"{ndim} sizes, {ndim} strides and a storageOffset")
        sizes, strides = header[:ndim], header[ndim:2 * ndim]
        offset = header[-1] - 1  # 0-indexing
        offset_at = src.pos - src.long_size
        storage = self.read_object()
        dtype = TENSOR_DTYPES[class_name]
        if ndim == 0 or storage is None:  # torch7's empty tensor
            return torch.empty(0, dtype=dtype)
        if not isinstance(storage, Storage) or storage.dtype != dtype:
            src.fail(f"a {class_name.replace('Tensor', 'Storage')} for the tensor, got "
                     f"{getattr(storage, 'class_name', type(storage).__name__)}", at=offset_at)
        if min(sizes) < 0 or min(strides) < 0 or offset < 0:
            src.fail(f"non-negative sizes/strides/offset, got {sizes}/{strides}/{offset + 1}",
                     at=start)
        last = offset  # the storage element holding the tensor's last element
        numel = 1
        for size, stride in zip(sizes, strides):
            last += (size - 1) * stride
            numel *= size
        if numel == 0 or numel >= _MAX_NUMEL:
            if numel >= _MAX_NUMEL or math.prod(s for s in sizes if s) >= _MAX_NUMEL:
                src.fail(f"a tensor of fewer than 2^62 elements, got sizes {sizes}", at=start)
            return torch.empty(sizes, dtype=dtype)
        if last >= storage.tensor.numel():
            src.fail(f"a tensor inside its storage: sizes {sizes} strides {strides} offset "
                     f"{offset + 1} reach element {last + 1} of a storage of {len(storage)}",
                     at=start)
        return torch.as_strided(storage.tensor, sizes, strides, offset)

    # -- File.lua readObject -----------------------------------------------------------------
    def read_object(self):
        src = self.src
        at = src.pos
        tag = src.int("a type tag")
        if tag == TYPE_NIL:
            return None
        if tag == TYPE_NUMBER:
            return _lua_number(src.double())
        if tag == TYPE_BOOLEAN:
            value = src.int("a boolean")
            if value not in (0, 1):
                src.fail(f"a boolean 0 or 1, got {value}", at=at + 4)
            return value == 1
        if tag == TYPE_STRING:
            return self._read_string().decode("utf-8", "surrogateescape")
        if tag == TYPE_FUNCTION:  # File.lua's oldest function format: no reference index
            index = None
        elif tag in (TYPE_TABLE, TYPE_TORCH, TYPE_RECUR_FUNCTION, LEGACY_TYPE_RECUR_FUNCTION):
            index = src.int("an object reference index")
            if index in self.objects:
                obj = self.objects[index]
                if type(obj) is dict and id(obj) in self._open_tables:
                    self._open_tables[id(obj)] = True  # referenced from inside itself
                return obj
        else:
            src.fail(f"a type tag 0..8, got {tag}", at=at)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            src.fail(f"nesting at most {MAX_DEPTH} deep", at=at)
        try:
            if tag == TYPE_TORCH:
                return self._read_torch(index)
            if tag == TYPE_TABLE:
                return self._read_table(index)
            return self._read_function(index, tag)
        finally:
            self.depth -= 1

    def _read_string(self):
        return self._string()

    def _read_torch(self, index):
        version = self._read_string()
        version_number = _version_number(version)
        if version_number is not None:
            class_name = self._read_string()
        else:  # written before versioning: the string was the class name
            class_name, version_number = version, 0
        class_name = class_name.decode("utf-8", "replace")
        if class_name in TENSOR_DTYPES:
            obj = self.read_tensor(class_name)
        elif class_name in STORAGE_DTYPES:
            obj = self.read_storage(class_name)
        elif class_name == "tds.Vec":
            obj = self._read_tds_vec()
        elif class_name == "tds.Hash":
            obj = self._read_tds_hash()
        else:
            obj = LuaObject(class_name, None, version_number)
            self.objects[index] = obj  # before the payload: it may refer to itself
            obj.fields = self.read_object()
            return obj
        self.objects[index] = obj
        return obj

    def _read_tds_vec(self):
        size = self.src.int("tds.Vec size")
        self.read_object()
        return [self.read_object() for _ in range(self._count(size, 4, "tds.Vec elements"))]

    def _read_tds_hash(self):
        size = self.src.int("tds.Hash size")
        self.read_object()
        out = {}
        for _ in range(self._count(size, 8, "tds.Hash entries")):
            key = self.read_object()
            out[_hashable(key)] = self.read_object()
        return out

    def _count(self, size, min_bytes_each, what):
        if size < 0 or size * min_bytes_each > self.src.remaining():
            self.src.fail(f"{what} that fit the file, got a count of {size}", at=self.src.pos - 4)
        return size

    def _read_table(self, index):
        size = self._count(self.src.int("a table size"), 8, "table entries")
        table = {}
        self.objects[index] = table
        self._open_tables[id(table)] = False
        try:
            for _ in range(size):
                key_at = self.src.pos
                key = self.read_object()
                if key is None:
                    self.src.fail("a non-nil table key", at=key_at)
                table[_hashable(key)] = self.read_object()
        finally:
            self_referenced = self._open_tables.pop(id(table))
        if all(type(k) is int for k in table) and set(table) == set(range(1, len(table) + 1)):
            as_list = [table[i] for i in range(1, len(table) + 1)]
            self.objects[index] = as_list
            if self_referenced:  # the references read so far point at the dict: repoint them
                _replace_references(as_list, table, as_list)
            return as_list
        return table

    def _read_function(self, index, tag):
        size = self.src.int("a function's bytecode size")
        dumped = self.src.chars(size, f"{size} bytes of function bytecode") if size >= 0 else \
            self.src.fail(f"a bytecode size >= 0, got {size}")
        func = LuaFunction(dumped, None, tag)
        if index is not None:
            self.objects[index] = func
        func.upvalues = self.read_object()
        return func


def _replace_references(root, old, new):
    """Make every reference to ``old`` reachable from ``root`` (values, table keys, object
    fields, upvalues) a reference to ``new``: a self-referencing array table becomes one
    self-referencing list (``l = {1, l}`` reads as ``l[1] is l``)."""
    seen = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, list):
            for i, v in enumerate(obj):
                if v is old:
                    obj[i] = new
                elif isinstance(v, (list, dict, LuaObject, LuaFunction)):
                    stack.append(v)
        elif isinstance(obj, dict):
            items = list(obj.items())
            obj.clear()
            for k, v in items:
                if isinstance(k, TableKey):
                    if k.value is old:
                        k = TableKey(new)
                    else:
                        stack.append(k.value)
                if v is old:
                    v = new
                elif isinstance(v, (list, dict, LuaObject, LuaFunction)):
                    stack.append(v)
                obj[k] = v
        elif isinstance(obj, LuaObject):
            if obj.fields is old:
                obj.fields = new
            else:
                stack.append(obj.fields)
        elif isinstance(obj, LuaFunction):
            if obj.upvalues is old:
                obj.upvalues = new
            else:
                stack.append(obj.upvalues)


def _version_number(text: bytes):
    """File.lua's ``tonumber(string.match(version, '^V (.*)$'))`` (None when it is not one)."""
    if text == b"V 1":
        return 1
    if not text.startswith(b"V "):
        return None
    try:
        return int(float(text[2:]))
    except (ValueError, OverflowError):
        return None


def _hashable(key):
    if isinstance(key, (list, dict)):
        return TableKey(key)
    return key


def is_ascii(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) looks like torch7's ascii format."""
    return bool(re.match(rb"[0-8]\n", head[:2]))


def _read_all(f, long_size, reader_cls):
    """Parse one object from the seekable binary file ``f`` (from its current position)."""
    was_enabled = gc.isenabled()
    gc.disable()  # tens of thousands of new container objects, none of them garbage yet
    try:
        return _parse(f, long_size, reader_cls)
    finally:
        if was_enabled:
            gc.enable()


def _parse(f, long_size, reader_cls):
    start = f.tell()
    n = f.seek(0, os.SEEK_END) - start
    f.seek(start)
    if n <= 0:
        raise T7FormatError("offset 0: expected a type tag (int32), but the file is empty")
    head = f.read(2)
    f.seek(start)
    if is_ascii(head):  # ascii files are small: parse them from memory
        src = _Ascii(f.read())
        obj = reader_cls(src).read_object()
        f.seek(start + src.pos)
        return obj
    if long_size not in (None, 4, 8):
        raise ValueError(f"long_size must be None, 4 or 8, got {long_size}")
    results = []  # (parsed object or the error, where the parse ended)
    for ls in [long_size] if long_size else [8, 4]:
        f.seek(start)
        src = _Binary(f, n, ls)
        try:
            obj = reader_cls(src).read_object()
        except T7FormatError as err:
            results.append((err, None))
            continue
        if long_size or src.pos == n:
            return obj
        results.append((obj, start + src.pos))  # trailing bytes: a 4-byte-long file may parse
    obj, end = results[0]
    if end is None:  # an 8-byte reading that fails is only rescued by a 4-byte one that
        raise obj    # explains every byte (returned above)
    f.seek(end)  # trailing bytes after an 8-byte reading: torch.load ignores them too
    return obj


def read_buffer(buf, *, long_size=None, reader_cls=Reader):
    """Parse one object from the bytes-like ``buf``; ``long_size`` None detects it (8 or 4)."""
    return _read_all(io.BytesIO(bytes(buf)), long_size, reader_cls)


def load(path_or_file, *, long_size=None, reader_cls=Reader):
    """Read a t7 file (binary or ascii) written by Lua Torch7's ``torch.save``.

    Parameters
    ----------
    path_or_file : str, os.PathLike or binary file object (``BytesIO`` works; read from its
        current position)
    long_size : {None, 4, 8}
        Bytes in a serialized ``long``: 8 on Linux/macOS, 4 for Lua Torch on Windows.
        None (default) detects it: 8, unless the file only parses with 4, and then to
        its last byte (an 8-byte reading that ends early loses to a 4-byte one that does not).
    reader_cls : a :class:`Reader` subclass (the data layer's streaming reader).

    Returns
    -------
    The root object: Lua tables with keys exactly 1..n as lists, other tables as dicts,
    tensors as ``torch.Tensor`` (views sharing memory where the file shares a storage),
    storages as :class:`Storage`, functions as :class:`LuaFunction` (never run), other
    torch classes as :class:`LuaObject`.

    Raises
    ------
    T7FormatError
        The bytes are not a t7 serialization; the message names the file (when it has a
        name), the byte offset and what was expected there.
    """
    if hasattr(path_or_file, "read"):
        name = getattr(path_or_file, "name", None)
        try:
            if isinstance(path_or_file, io.TextIOBase):
                raise TypeError("t7.load needs a binary file object, got a text one")
            f = path_or_file if _seekable(path_or_file) else io.BytesIO(path_or_file.read())
            return _read_all(f, long_size, reader_cls)
        except T7FormatError as err:
            if isinstance(name, str):
                raise T7FormatError(f"{name}: {err}") from None
            raise
        except RecursionError:
            raise T7FormatError(f"{name or '<file>'}: nesting too deep to read") from None
    path = os.fspath(path_or_file)
    try:
        with open(path, "rb", buffering=_BUFFER) as f:
            return _read_all(f, long_size, reader_cls)
    except T7FormatError as err:
        raise T7FormatError(f"{path}: {err}") from None
    except RecursionError:
        raise T7FormatError(f"{path}: nesting too deep to read") from None


def _seekable(f):
    try:
        return f.seekable()
    except (AttributeError, ValueError, OSError):
        return False
