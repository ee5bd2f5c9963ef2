"""Mutated t7 files for testing the reader: seeded, self-contained (no oracle pack needed).

:func:`cases` yields ``(description, bytes)``: binary and ascii serializations of a set of
seed objects (every tensor dtype, strided views, storages, nested tables, an nn-like object,
a function, shared and self references), each truncated, bit-flipped, overwritten with
extreme longs, or (ascii) with one number token replaced by a value its type cannot hold.
The ascii replacements are what found the reader's overflow crashes: storage
values such as 70000 in a ShortStorage and strides of 2^63 or 2^64.

:func:`run` loads each case and counts the outcomes; anything but a load or a
``T7FormatError`` is a failure. Used by ``tests/test_t7_fuzz.py`` (a few thousand cases) and
``benchmarks/fuzz_t7.py`` (a longer run).
"""

from __future__ import annotations

import io
import random
import re
import struct
import time

import torch

from .reader import T7FormatError, load
from .types import DTYPE_TENSOR_CLASS, LuaFunction, LuaObject, Storage
from .writer import dumps

# Values put in place of one ascii number token: just outside int16/int32/int64/uint64,
# huge, negative, non-integral, non-numeric.
ASCII_REPLACEMENTS = (b"70000", b"32768", b"-32769", b"2147483648", b"4294967296",
                      b"9223372036854775808", b"18446744073709551616", b"-9223372036854775809",
                      b"-1", b"0", b"1" + b"0" * 30, b"1e400", b"-1e400", b"nan", b"inf",
                      b"1.5", b"-", b"x", b"0x10")
# 8 bytes written over a binary file: the largest long, -1, 2^62, 2^40, zeros.
BINARY_OVERWRITES = (struct.pack("<q", 2 ** 63 - 1), b"\xff" * 8, struct.pack("<q", 2 ** 62),
                     struct.pack("<q", 2 ** 40), b"\x00" * 8, b"\x7f" * 8)
_NUMBER_LINE = re.compile(rb"-?[0-9][0-9.e+ -]*")  # one or more number tokens


def seed_objects() -> list:
    """The objects every case starts from (small, so that thousands of cases stay cheap)."""
    objs = []
    for dtype in DTYPE_TENSOR_CLASS:
        if dtype is torch.bool:
            continue
        base = (torch.arange(12) % 7).to(dtype).reshape(3, 4)
        objs.append(base)
        objs.append(base.t())  # strided view: strides (1, 4)
        objs.append(base[1:, ::2])  # offset and step
    # size-1 dimensions: any stride is legal there, so only its range can be wrong
    objs.append(torch.arange(3, dtype=torch.float32).reshape(1, 3))
    objs.append(torch.tensor([5], dtype=torch.int64))
    objs.append(Storage(torch.tensor([1, -2, 3], dtype=torch.int16)))
    objs.append(Storage(torch.tensor([2 ** 31 - 1, -2 ** 31], dtype=torch.int32)))
    objs.append(Storage(torch.tensor([2 ** 62, -5], dtype=torch.int64)))
    shared = torch.arange(6, dtype=torch.float64)
    objs.append({"a": shared[:3], "b": shared[3:], "c": shared})
    objs.append([1, 2.5, "three", True, [4, {"five": 5}], {1.5: "x"}])
    objs.append(LuaObject("nn.Linear", {"weight": torch.ones(2, 3), "bias": torch.zeros(2),
                                        "train": True, "size": Storage(torch.tensor([2, 3]))}))
    objs.append({"f": LuaFunction(b"\x1bLJ\x01\x00bytecode", {"up": 1}, 8)})
    cyclic = {"name": "self"}
    cyclic["me"] = cyclic
    objs.append(cyclic)
    return objs


def ascii_dumps(obj) -> bytes:
    """``obj`` in torch7's ascii format (``DiskFile:ascii()`` with auto-spacing), 8-byte longs."""
    out = []
    index = {}  # identity key -> reference index
    alive = []  # keeps written objects alive so their id() is not reused

    def num(v):
        out.append(b"%d\n" % v if isinstance(v, int) else repr(float(v)).encode() + b"\n")

    def longs(values):
        out.append(b" ".join(b"%d" % v for v in values) + b"\n")

    def string(b):
        num(len(b))
        out.append(b + b"\n" if b else b"")

    def reference(tag, o, key=None):
        num(tag)
        key = ("id", id(o)) if key is None else key
        alive.append(o)
        if key in index:
            num(index[key])
            return True
        index[key] = len(index) + 1
        num(index[key])
        return False

    def storage(flat, key):
        if reference(4, flat, key):
            return
        string(b"V 1")
        string(DTYPE_TENSOR_CLASS[flat.dtype].replace("Tensor", "Storage").encode())
        longs([flat.numel()])
        if flat.element_size() == 1:
            out.append(flat.numpy().tobytes() + b"\n")
        elif flat.is_floating_point():
            out.append(b" ".join(repr(float(v)).encode() for v in flat.tolist()) + b"\n")
        else:
            longs(flat.tolist())

    def write(o):
        if o is None:
            num(0)
        elif isinstance(o, bool):
            num(5)
            num(int(o))
        elif isinstance(o, (int, float)):
            num(1)
            num(o)
        elif isinstance(o, (str, bytes)):
            num(2)
            string(o.encode() if isinstance(o, str) else o)
        elif isinstance(o, torch.Tensor):
            if reference(4, o):
                return
            string(b"V 1")
            string(DTYPE_TENSOR_CLASS[o.dtype].encode())
            num(o.dim())
            longs(o.shape)
            longs(o.stride())
            longs([o.storage_offset() + 1])
            untyped = o.untyped_storage()
            whole = torch.empty(0, dtype=o.dtype).set_(untyped, 0,
                                                       (untyped.nbytes() // o.element_size(),))
            storage(whole, ("S", untyped.data_ptr()))
        elif isinstance(o, Storage):
            storage(o.tensor, ("id", id(o)))
        elif isinstance(o, (list, dict)):
            if reference(3, o):
                return
            items = list(enumerate(o, 1)) if isinstance(o, list) else list(o.items())
            num(len(items))
            for k, v in items:
                write(k)
                write(v)
        elif isinstance(o, LuaObject):
            if reference(4, o):
                return
            string(b"V %d" % o.version)
            string(o.class_name.encode())
            write(o.fields)
        elif isinstance(o, LuaFunction):
            if reference(o.type_tag, o):
                return
            string(o.dumped)
            write(o.upvalues)
        else:
            raise TypeError(f"ascii_dumps cannot write {type(o).__name__}")

    write(obj)
    return b"".join(out)


def _seed_files():
    files = []
    for i, obj in enumerate(seed_objects()):
        files.append((f"seed{i}.bin", dumps(obj)))
        files.append((f"seed{i}.ascii", ascii_dumps(obj)))
    return files


def _mutate_ascii(rng, data):
    lines = data.split(b"\n")
    numbers = [i for i, line in enumerate(lines) if _NUMBER_LINE.fullmatch(line)]
    kind = rng.choice(["replace", "replace", "replace", "delete", "truncate", "flip"])
    if kind == "replace" and numbers:
        # a line may hold several tokens (sizes, strides, storage values): replace one of them
        at = rng.choice(numbers)
        tokens = lines[at].split(b" ")
        which = rng.randrange(len(tokens))
        tokens[which] = rng.choice(ASCII_REPLACEMENTS)
        lines[at] = b" ".join(tokens)
        return f"line {at} token {which} := {tokens[which].decode()}", b"\n".join(lines)
    if kind == "delete" and numbers:
        at = rng.choice(numbers)
        del lines[at]
        return f"delete line {at}", b"\n".join(lines)
    return _mutate_binary(rng, data, kind)


def _mutate_binary(rng, data, kind=None):
    kind = kind or rng.choice(["truncate", "flip", "flip", "overwrite"])
    if kind == "truncate" or len(data) < 2:
        cut = rng.randrange(len(data))
        return f"truncate@{cut}", data[:cut]
    out = bytearray(data)
    if kind == "flip":
        spots = [(rng.randrange(len(data)), rng.randrange(8)) for _ in range(rng.randint(1, 3))]
        for at, bit in spots:
            out[at] ^= 1 << bit
        return f"flip{spots}", bytes(out)
    at = rng.randrange(len(data))
    filler = rng.choice(BINARY_OVERWRITES)
    out[at:at + 8] = filler[: len(out) - at]
    return f"overwrite@{at}", bytes(out)


def cases(n: int, seed: int = 1008):
    """``n`` mutated files as ``(description, bytes)``, alternating binary and ascii seeds."""
    rng = random.Random(seed)
    files = _seed_files()
    for case in range(n):
        name, data = files[case % len(files)]
        mutate = _mutate_ascii if name.endswith(".ascii") else _mutate_binary
        how, mutated = mutate(rng, data)
        yield f"{name} {how}", mutated


def run(n: int, seed: int = 1008) -> dict:
    """Load ``n`` cases; returns counts and the slowest case.

    ``{"cases", "loaded", "T7FormatError", "other": [(case, "Type: message"), ...],
    "messages": {kind: count} (the T7FormatError kinds, by the words after "expected"),
    "slowest_s", "slowest_case", "seconds"}``.
    """
    out = {"cases": 0, "loaded": 0, "T7FormatError": 0, "other": [], "messages": {},
           "slowest_s": 0.0, "slowest_case": None}
    began = time.perf_counter()
    for how, data in cases(n, seed):
        start = time.perf_counter()
        try:
            load(io.BytesIO(data))
            out["loaded"] += 1
        except T7FormatError as err:
            out["T7FormatError"] += 1
            kind = "fits a type" if "a value that fits" in str(err) else "other"
            out["messages"][kind] = out["messages"].get(kind, 0) + 1
        except Exception as err:  # noqa: BLE001 - counting these is the point
            out["other"].append((how, f"{type(err).__name__}: {err}"[:300]))
        elapsed = time.perf_counter() - start
        out["cases"] += 1
        if elapsed > out["slowest_s"]:
            out["slowest_s"], out["slowest_case"] = elapsed, how
    out["seconds"] = time.perf_counter() - began
    return out
