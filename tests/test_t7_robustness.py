"""t7 robustness: ascii values that do not fit their type, and round trips Torch7 reads
differently (numpy integers, None keys and values, unwritable tensors, nesting limits,
self-referencing lists). The ascii reproducers are rebuilt byte for byte (helpers.py); one
test also reads ../shared/repro/t7/ when it is present."""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from luatorch_port import t7
from luatorch_port.t7 import MAX_DEPTH, T7FormatError, T7WriteError

from helpers import ASCII_REPROS as REPROS, ascii_tensor as _ascii_tensor

REPRO = Path(__file__).resolve().parents[1].parent / "shared" / "repro" / "t7"


@pytest.mark.parametrize("name,data,offset,value,fits", REPROS, ids=[r[0] for r in REPROS])
def test_ascii_value_that_does_not_fit_is_a_format_error(name, data, offset, value, fits):
    with pytest.raises(T7FormatError) as err:
        t7.load(io.BytesIO(data))
    message = str(err.value)
    assert message.startswith(f"offset {offset}: "), message
    assert f"a value that fits {fits}, got {value}" in message


@pytest.mark.parametrize("name,data,offset,value,fits", REPROS, ids=[r[0] for r in REPROS])
def test_shared_reproducers(name, data, offset, value, fits):
    path = REPRO / name
    if not path.exists():
        pytest.skip(f"reproducer not present: {path}")
    assert path.read_bytes() == data  # the rebuilt bytes above are the reproducer's
    with pytest.raises(T7FormatError, match=f"{path}: offset {offset}: .*got {value}"):
        t7.load(path)


def test_ascii_values_at_the_limits_still_load():
    data = _ascii_tensor("Short", "2", "1", "-32768 32767", 2)
    assert t7.load(io.BytesIO(data)).tolist() == [-32768, 32767]
    data = _ascii_tensor("Long", "1", str(2 ** 63 - 1), str(-2 ** 63), 1)
    assert t7.load(io.BytesIO(data)).tolist() == [-2 ** 63]
    with np.errstate(all="raise"):  # 1e39 is inf in a FloatStorage, as C's fscanf gives
        assert t7.load(io.BytesIO(_ascii_tensor("Float", "1", "1", "1e39", 1))).item() == np.inf


# -- numbers the writer must refuse ----------------------------------------------------------

@pytest.mark.parametrize("value", [np.int64(2 ** 53 + 1), np.uint64(2 ** 64 - 1),
                                   np.int64(-2 ** 53 - 1), 2 ** 53 + 1],
                         ids=["int64 2^53+1", "uint64 2^64-1", "int64 -2^53-1", "int 2^53+1"])
def test_integers_that_are_not_exact_doubles_are_refused(value):
    with pytest.raises(T7WriteError, match=f"{int(value)} is not exactly a Lua number .* at "
                                           r"root\.x\[2\]"):
        t7.dumps({"x": [1, value]})


@pytest.mark.parametrize("value", [np.int64(2 ** 53), np.uint64(2 ** 60), np.int32(-7),
                                   np.uint8(255)])
def test_numpy_integers_that_are_doubles_round_trip(value):
    assert t7.load(io.BytesIO(t7.dumps(value))) == int(value)


# -- None: a key is an error; a value is no entry, as nil is in Lua --------------------------

def test_none_key_is_refused():
    with pytest.raises(T7WriteError, match=r"table key cannot be None .* at root\.t"):
        t7.dumps({"t": {None: 1}})
    with pytest.raises(T7WriteError, match="table key cannot be None"):
        t7.dumps({None: None})


def test_none_values_are_dropped_as_torch7_drops_nil():
    back = t7.load(io.BytesIO(t7.dumps({"a": None, "b": 2})))
    assert back == {"b": 2}
    assert t7.load(io.BytesIO(t7.dumps([1, None, 3]))) == {1: 1, 3: 3}  # a hole at 2
    assert t7.load(io.BytesIO(t7.dumps([1, 2, None]))) == [1, 2]  # Lua's {1, 2, nil}
    assert t7.load(io.BytesIO(t7.dumps(None))) is None  # a nil root is still nil
    # the bytes are those of the table without the entry
    assert t7.dumps({"a": None, "b": 2}) == t7.dumps({"b": 2})
    assert t7.dumps([1, None, 3]) == t7.dumps({1: 1, 3: 3})


# -- tensors Torch7 has no counterpart for --------------------------------------------------

UNWRITABLE = [
    ("meta tensor", lambda: torch.empty(3, device="meta"), "meta tensor"),
    ("sparse COO", lambda: torch.eye(2).to_sparse(), "sparse_coo tensor"),
    ("numpy str", lambda: np.array(["a", "b"]), "numpy array of dtype <U1"),
    ("numpy object", lambda: np.array([{}, 1], dtype=object), "numpy array of dtype object"),
    ("meta storage", lambda: t7.Storage(torch.empty(2, device="meta")), "meta"),
]


@pytest.mark.parametrize("make,words", [(m, w) for _, m, w in UNWRITABLE],
                         ids=[u[0] for u in UNWRITABLE])
def test_unwritable_values_name_their_path(make, words):
    with pytest.raises(T7WriteError) as err:
        t7.dumps({"model": [0, {"w": make()}]})
    assert words in str(err.value)
    assert re.search(r"at root\.model\[2\]\.w($|[;:])", str(err.value)), err.value


# -- nesting: the writer and the reader share one limit -------------------------------------

def _nested_lists(levels):
    """``levels`` tables, one inside the other, the innermost holding the number 7."""
    x = 7
    for _ in range(levels):
        x = [x]
    return x


def _raw_nested_tables(levels) -> bytes:
    """The bytes of ``levels`` nested one-entry tables, built without the writer."""
    i32 = struct.Struct("<i").pack
    one = i32(1) + struct.pack("<d", 1.0)  # the key 1
    head = b"".join(i32(3) + i32(i + 1) + i32(1) + one for i in range(levels))
    return head + i32(1) + struct.pack("<d", 7.0)


def test_max_depth_is_written_and_read_back():
    data = t7.dumps(_nested_lists(MAX_DEPTH))
    assert data == _raw_nested_tables(MAX_DEPTH)
    back = t7.load(io.BytesIO(data))
    for _ in range(MAX_DEPTH):
        back = back[0]
    assert back == 7


def test_one_level_more_is_refused_by_both():
    with pytest.raises(T7WriteError, match=f"nesting deeper than {MAX_DEPTH}"):
        t7.dumps(_nested_lists(MAX_DEPTH + 1))
    with pytest.raises(T7FormatError, match=f"nesting at most {MAX_DEPTH} deep"):
        t7.load(io.BytesIO(_raw_nested_tables(MAX_DEPTH + 1)))


def test_tensor_and_storage_count_as_levels_for_both():
    # a tensor is a torch object holding a storage object: two levels for reader and writer
    fits = _nested_lists(MAX_DEPTH - 2)
    inner = fits
    for _ in range(MAX_DEPTH - 3):
        inner = inner[0]
    inner[0] = torch.ones(2)
    assert torch.equal(_innermost(t7.load(io.BytesIO(t7.dumps(fits))), MAX_DEPTH - 2),
                       torch.ones(2))
    inner[0] = [torch.ones(2)]
    with pytest.raises(T7WriteError, match="nesting deeper"):
        t7.dumps(fits)


def _innermost(x, levels):
    for _ in range(levels):
        x = x[0]
    return x


# -- self-references -------------------------------------------------------------------------

def test_self_referencing_list_reads_back_as_one_list():
    a = [1]
    a.append(a)
    back = t7.load(io.BytesIO(t7.dumps(a)))
    assert isinstance(back, list) and back[0] == 1 and back[1] is back


def test_self_reference_from_a_nested_list_dict_key_and_object():
    a = [1]
    a.append([2, a])
    a.append({"up": a})
    a.append(t7.LuaObject("nn.Module", {"owner": a}))
    back = t7.load(io.BytesIO(t7.dumps({"root": a})))["root"]
    assert back[1][1] is back
    assert back[2]["up"] is back
    assert back[3].owner is back
    keyed = [1]
    keyed.append({t7.TableKey(keyed): "me"})
    back = t7.load(io.BytesIO(t7.dumps(keyed)))
    (key,) = back[1].keys()
    assert key.value is back and back[1][t7.TableKey(back)] == "me"
