"""Bad t7 input: every failure is a T7FormatError naming the byte offset, found quickly and
before anything larger than the file is allocated. Includes a seeded fuzz test over the
oracle files (truncations and bit flips)."""

from __future__ import annotations

import io
import random
import struct
import tracemalloc

import pytest
import torch

from luatorch_port import t7
from luatorch_port.t7 import T7FormatError

from helpers import oracle_file, oracle_files

I32, I64 = struct.Struct("<i").pack, struct.Struct("<q").pack


def _string(s: bytes) -> bytes:
    return I32(len(s)) + s


def _torch_header(index: int, class_name: bytes) -> bytes:
    return I32(4) + I32(index) + _string(b"V 1") + _string(class_name)


def _byte_tensor(sizes, strides, offset1, storage_size, payload=b"") -> bytes:
    """A torch.ByteTensor exactly as File.lua lays it out (8-byte longs)."""
    return (_torch_header(1, b"torch.ByteTensor") + I32(len(sizes))
            + b"".join(map(I64, sizes)) + b"".join(map(I64, strides)) + I64(offset1)
            + _torch_header(2, b"torch.ByteStorage") + I64(storage_size) + payload)


GOOD = _byte_tensor([2, 3], [3, 1], 1, 6, bytes(range(6)))
TENSOR_AT = 35  # after tag, index, "V 1" and the class name
STORAGE_SIZE_AT = len(GOOD) - 6 - 8

# (name, bytes, offset the message must name, words the message must contain)
CASES = [
    ("empty file", b"", 0, "type tag"),
    ("unknown type tag", I32(9), 0, "type tag 0..8, got 9"),
    ("negative type tag", I32(-1), 0, "got -1"),
    ("text file", b"hello, this is a text file\n", 0, "type tag"),
    ("half a tag", b"\x03\x00", 0, "a type tag (4 bytes), but only 2 bytes remain"),
    ("truncated number", I32(1) + b"\x00\x00\x00", 4, "number"),
    ("boolean 7", I32(5) + I32(7), 4, "boolean 0 or 1, got 7"),
    ("string longer than the file", I32(2) + I32(1000) + b"abc", 8, "1000 bytes"),
    ("negative string length", I32(2) + I32(-5), 4, "string length >= 0"),
    ("table size larger than the file", I32(3) + I32(1) + I32(2 ** 30), 8, "table entries"),
    ("nil table key", I32(3) + I32(1) + I32(1) + I32(0) + I32(0), 12, "non-nil table key"),
    ("storage larger than the file", GOOD[:STORAGE_SIZE_AT] + I64(2 ** 40) + bytes(6),
     STORAGE_SIZE_AT, "1099511627776 elements of torch.ByteStorage"),
    ("negative storage size", GOOD[:STORAGE_SIZE_AT] + I64(-1) + bytes(6),
     STORAGE_SIZE_AT, "storage size >= 0"),
    ("truncated storage", GOOD[:-2], STORAGE_SIZE_AT, "6 elements"),
    ("tensor past its storage", _byte_tensor([2, 4], [4, 1], 1, 6, bytes(6)), TENSOR_AT,
     "inside its storage"),
    ("tensor offset past its storage", _byte_tensor([2, 3], [3, 1], 3, 6, bytes(6)), TENSOR_AT,
     "inside its storage"),
    ("negative tensor size", _byte_tensor([-2, 3], [3, 1], 1, 6, bytes(6)), TENSOR_AT,
     "non-negative"),
    ("huge nDimension", _torch_header(1, b"torch.ByteTensor") + I32(2 ** 30), TENSOR_AT,
     "nDimension"),
    ("tensor of 2^70 elements", _byte_tensor([2 ** 35, 2 ** 35], [0, 0], 1, 6, bytes(6)),
     TENSOR_AT,
     "fewer than 2^62"),
    ("tensor on a table", _torch_header(1, b"torch.ByteTensor") + I32(1) + I64(1) + I64(1)
     + I64(1) + I32(3) + I32(2) + I32(0), TENSOR_AT + 20, "ByteStorage for the tensor, got list"),
    ("ascii truncated", b"4\n1\n3\nV 1\n17\ntorch.FloatTensor\n2\n2 3\n3 1\n1\n4\n2\n3\nV 1\n18\n"
     b"torch.FloatStorage\n6\n1 2 3", None, "elements"),
    ("ascii not a number", b"1\nabc\n", 2, "number, got b'abc'"),
    ("deep nesting", b"".join(I32(3) + I32(i) + I32(1) + I32(1) + struct.pack("<d", 1)
                              for i in range(1, 500)) + I32(0), None, "nesting at most"),
]


@pytest.mark.parametrize("name,data,offset,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_the_offset(name, data, offset, words):
    with pytest.raises(T7FormatError) as info:
        t7.load(io.BytesIO(data))
    message = str(info.value)
    assert words in message, message
    if offset is not None:
        assert message.startswith(f"offset {offset}: expected"), message
    assert "\n" not in message


def test_the_good_tensor_used_above_loads():
    assert torch.equal(t7.load(io.BytesIO(GOOD)), torch.arange(6, dtype=torch.uint8).reshape(2, 3))


def test_error_names_the_file(tmp_path):
    path = tmp_path / "broken.t7b"
    path.write_bytes(GOOD[:-2])
    with pytest.raises(T7FormatError, match=rf"^{path}: offset {STORAGE_SIZE_AT}: expected"):
        t7.load(path)


def test_empty_path(tmp_path):
    (tmp_path / "empty.t7").write_bytes(b"")
    with pytest.raises(T7FormatError, match="empty"):
        t7.load(tmp_path / "empty.t7")


@pytest.mark.parametrize("name", ["storage larger than the file", "table size larger than the file",
                                  "string longer than the file", "tensor of 2^70 elements"])
def test_no_allocation_larger_than_the_file(name):
    data = dict((c[0], c[1]) for c in CASES)[name]
    src = io.BytesIO(data)
    tracemalloc.start()
    try:
        with pytest.raises(T7FormatError):
            t7.load(src)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < len(data) + 64 * 1024, peak  # (numpy's allocations are traced too)


def test_random_bytes():
    rng = random.Random(20160301)
    for _ in range(200):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
        for prefix in (b"", I32(3) + I32(1) + I32(3)):  # raw, and behind a valid table header
            try:
                t7.load(io.BytesIO(prefix + data))
            except T7FormatError as err:
                assert str(err).startswith("offset "), err


# -- fuzz: truncations and bit flips of real Torch7 files ------------------------------------

FUZZ_SEED = 1008
FUZZ_CASES = 1200
FUZZ_MAX_BYTES = 25_000  # the oracle files small enough to mutate many times quickly
READ_CALLS_SLACK = 64  # header reads; beyond that, no more read calls than the file has bytes


def _fuzz_sources():
    paths = [(name, oracle_file(*name.split("/"))) for name in oracle_files()]
    return [(name, p.read_bytes()) for name, p in paths if p.stat().st_size <= FUZZ_MAX_BYTES]


class _CountingBytes(io.BytesIO):
    """A BytesIO that counts read/readinto calls: a reader looping on a corrupt count without
    consuming input shows as more calls than the file has bytes (a count, not a timing)."""

    def __init__(self, data):
        super().__init__(data)
        self.calls = 0

    def read(self, *args):
        self.calls += 1
        return super().read(*args)

    def readinto(self, buffer):
        self.calls += 1
        return super().readinto(buffer)


def _mutate(rng, data):
    kind = rng.choice(["truncate", "flip", "flip", "overwrite"])
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
    filler = rng.choice([b"\xff" * 8, b"\x7f" * 8, b"\x00" * 8, I64(2 ** 40)])
    out[at:at + 8] = filler[: len(out) - at]
    return f"overwrite@{at}", bytes(out)


def test_fuzz_oracle_files():
    sources = _fuzz_sources()
    assert len(sources) >= 40
    rng = random.Random(FUZZ_SEED)
    outcomes = {"loaded": 0, "T7FormatError": 0}
    most_reads = (0, None)  # read calls beyond the file's size, and the case
    for case in range(FUZZ_CASES):
        name, data = sources[case % len(sources)]
        how, mutated = _mutate(rng, data)
        src = _CountingBytes(mutated)
        try:
            t7.load(src)
            outcomes["loaded"] += 1
        except T7FormatError as err:
            assert "offset" in str(err), (name, how, err)
            outcomes["T7FormatError"] += 1
        except Exception as err:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{name} {how}: {type(err).__name__}: {err}")
        if src.calls - len(mutated) > most_reads[0]:
            most_reads = (src.calls - len(mutated), f"{name} {how}")
    assert sum(outcomes.values()) == FUZZ_CASES
    assert outcomes["T7FormatError"] > FUZZ_CASES // 3, outcomes  # the mutations do bite
    assert most_reads[0] <= READ_CALLS_SLACK, most_reads
