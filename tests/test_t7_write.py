"""t7 writer: Torch7's bytes for the 15 goldens, round trips (Hypothesis), errors, atomicity."""

from __future__ import annotations

import io
import math
import os
import stat

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from luatorch_port import t7
from luatorch_port.t7 import LuaFunction, LuaObject, Storage, TableKey
from luatorch_port.t7.writer import Writer


def arange_byte(n0, *shape):
    """lua: a torch.ByteTensor(...) whose storage holds n0, n0+1, ... (made/README.md §8)."""
    return torch.arange(n0, n0 + math.prod(shape)).reshape(shape).to(torch.uint8)


def pixels():
    t = torch.zeros(3, 96, 96, dtype=torch.uint8)
    t[0, 0, 0], t[0, 9, 89], t[1, 49, 19], t[2, 95, 95] = 255, 1, 128, 7  # 1-based in Lua
    return t


# made/README.md §8: file -> the exact Lua expression, built here from scratch.
GOLDENS = {
    "float_tensor_2x3_1to6.t7": lambda: torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.float32),
    "double_tensor_2x3_1to6.t7": lambda: torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.float64),
    "long_tensor_1to4.t7": lambda: torch.tensor([1, 2, 3, 4], dtype=torch.int64),
    "byte_tensor_3x96x96_zeros_4px.t7": pixels,
    "lua_array_1_2_3.t7": lambda: [1, 2, 3],
    "array_of_two_byte_tensors.t7": lambda: [torch.tensor([1, 2, 3], dtype=torch.uint8),
                                             torch.tensor([[4, 5], [6, 7]], dtype=torch.uint8)],
    "nested_array_course_layout.t7": lambda: [[arange_byte(1, 3, 2, 2), arange_byte(13, 3, 2, 2)],
                                              [arange_byte(25, 3, 2, 2)]],
    "table_data_nested_course_layout.t7": lambda: {
        "data": [[arange_byte(1, 3, 2, 2), arange_byte(13, 3, 2, 2)], [arange_byte(25, 3, 2, 2)]]},
    "table_data_bytetensor2.t7": lambda: {"data": torch.tensor([1, 2], dtype=torch.uint8)},
    "string_hello.t7": lambda: "hello",
    "boolean_true.t7": lambda: True,
    "boolean_false.t7": lambda: False,
    "number_3.5.t7": lambda: 3.5,
    "number_42.t7": lambda: 42,
    "nil.t7": lambda: None,
}


@pytest.mark.parametrize("name", sorted(GOLDENS))
def test_golden_bytes(oracle, name, tmp_path):
    golden = oracle("made", "t7_writer_golden", name).read_bytes()
    assert t7.dumps(GOLDENS[name]()) == golden
    t7.save(GOLDENS[name](), tmp_path / name)
    assert (tmp_path / name).read_bytes() == golden


def test_all_goldens_are_covered(oracle):
    folder = oracle("made", "t7_writer_golden")
    assert sorted(p.name for p in folder.glob("*.t7")) == sorted(GOLDENS)


@pytest.mark.parametrize("make", [
    lambda: torch.arange(12.0).reshape(3, 4).t(),  # transposed
    lambda: torch.arange(20, dtype=torch.float64).reshape(4, 5)[1:3],  # offset
    lambda: torch.arange(24, dtype=torch.int16).reshape(2, 3, 4)[:, ::2, 1:],  # strided
    lambda: torch.arange(6, dtype=torch.int32).reshape(2, 3).expand(4, 2, 3),  # stride 0
])
def test_non_contiguous_tensors_keep_storage_and_strides(make):
    t = make()
    back = t7.load(io.BytesIO(t7.dumps(t)))
    assert back.dtype == t.dtype and torch.equal(back, t)
    assert back.stride() == t.stride() and back.storage_offset() == t.storage_offset()


def test_shared_storage_and_repeated_objects_written_once():
    base = torch.arange(6.0)
    table = {"x": 1}
    obj = {"a": base.view(2, 3), "b": base[3:], "c": base, "c_again": base, "t1": table,
           "t2": table}
    data = t7.dumps(obj)
    assert data.count(b"torch.FloatStorage") == 1  # one storage, referenced three times
    back = t7.load(io.BytesIO(data))
    assert back["c"] is back["c_again"] and back["t1"] is back["t2"]
    back["c"][4] = -1
    assert back["a"][1, 1] == -1 and back["b"][1] == -1


def test_shared_storage_agrees_with_torch7(oracle):
    """Our bytes for Lua's ``{a = s:view(2,3), ...}`` load to the same values as Torch7's file."""
    theirs = t7.load(oracle("made", "misc", "edge", "table_shared_storage.t7"))
    back = t7.load(io.BytesIO(t7.dumps(theirs)))
    for k in ("a", "b", "c"):
        assert torch.equal(back[k], theirs[k]) and back[k].stride() == theirs[k].stride()
    assert back["c"] is back["c_again"]


@pytest.mark.parametrize("name", [
    "made/misc/edge/model_float_clearstate.t7", "fetched/2015-a2-model/model.net",
    "fetched/torchfile-tests/gmodule_with_linear_identity.t7",
    "fetched/torchfile-tests/recursive_class.t7", "fetched/torchfile-tests/recursive_kv_table.t7",
    "fetched/torchfile-tests/function_upvals.t7", "made/misc/edge/table_mixed.t7",
    "made/misc/edge/custom_class_Foo.t7", "made/models/full_size_specs.t7",
])
def test_rewrite_reload_is_a_fixed_point(oracle, name):
    """load -> save -> load -> save gives the same bytes (objects, functions, cycles kept)."""
    first = t7.dumps(t7.load(oracle(*name.split("/"))))
    assert t7.dumps(t7.load(io.BytesIO(first))) == first


def test_oldest_function_format_has_no_reference_index():
    f = LuaFunction(b"\x1bLJ\x01fake", [], type_tag=6)
    data = t7.dumps([f, f])
    back = t7.load(io.BytesIO(data))
    assert [g.dumped for g in back] == [f.dumped] * 2 and back[0].type_tag == 6
    assert data.count(b"\x1bLJ") == 2  # no index, so no reference: written twice, as File.lua


# -- Hypothesis: load(save(x)) == x --------------------------------------------------------

DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
          torch.float32, torch.float64]


@st.composite
def tensors(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    base = torch.arange(math.prod(shape) * 2).reshape([2] + shape)
    base = (base % 100).to(dtype) if dtype != torch.int8 else (base % 100 - 50).to(dtype)
    view = draw(st.sampled_from(["whole", "slice", "transpose", "step"]))
    if view == "slice":
        return base[1]
    if view == "transpose" and len(shape) >= 2:
        return base[0].transpose(0, 1)
    if view == "step":
        return base[:, ..., ::2]
    return base


numbers = st.one_of(st.integers(-2 ** 53, 2 ** 53), st.floats(allow_nan=False, width=64),
                    st.just(-0.0))
keys = st.one_of(st.text(max_size=8), st.integers(-5, 50),
                 st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12), tensors())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, min_size=1, max_size=5),
                            st.dictionaries(keys, inner.filter(lambda v: v is not None),
                                            max_size=5)),
    max_leaves=12)


def _canon(x):
    """What the reader returns for x: tables with keys exactly 1..n (or none) are arrays;
    None in a table is no entry (Lua's nil), so a list with None has holes."""
    if isinstance(x, list):
        if any(v is None for v in x):
            return _canon({i: v for i, v in enumerate(x, 1) if v is not None})
        return [_canon(v) for v in x]
    if isinstance(x, dict):
        d = {(int(k) if isinstance(k, float) and k.is_integer() else k): _canon(v)
             for k, v in x.items() if v is not None}
        if set(d) == set(range(1, len(d) + 1)) and all(type(k) is int for k in d):
            return [d[i] for i in range(1, len(d) + 1)]
        return d
    if isinstance(x, float) and x.is_integer() and abs(x) <= 2 ** 53 and str(x) != "-0.0":
        return int(x)
    return x


def _equal(a, b):
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(a, b))
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_round_trip(x):
    back = t7.load(io.BytesIO(t7.dumps(x)))
    assert _equal(back, _canon(x)), (back, x)


@settings(max_examples=50, deadline=None)
@given(tensors(), st.integers(0, 3))
def test_round_trip_keeps_shared_tensors_shared(t, n_more):
    last = t.shape[-1]
    views = [t] + [t.narrow(-1, i, last - i) for i in range(1, min(n_more + 1, last))]
    back = t7.load(io.BytesIO(t7.dumps({"views": views, "again": t})))
    assert back["again"] is back["views"][0]
    ptrs = {v.untyped_storage().data_ptr() for v in back["views"]}
    assert len(ptrs) == 1
    for mine, theirs in zip(views, back["views"]):
        assert torch.equal(mine, theirs) and mine.stride() == theirs.stride()


def test_round_trip_other_values():
    obj = {"storage": Storage(torch.tensor([1, 2, 3])), "bool_tensor": torch.tensor([True, False]),
           "module": LuaObject("nn.ReLU", {"threshold": 0, "train": True}),
           "numpy": __import__("numpy").arange(3.0), "scalar": torch.tensor(2.5),
           "empty": torch.empty(0, 3), "bytes": b"\xff\x00raw"}
    back = t7.load(io.BytesIO(t7.dumps(obj)))
    assert back["storage"] == obj["storage"] and back["storage"].class_name == "torch.LongStorage"
    assert torch.equal(back["bool_tensor"], torch.tensor([1, 0], dtype=torch.uint8))
    assert back["module"].class_name == "nn.ReLU" and back["module"].fields == {"threshold": 0,
                                                                                "train": True}
    assert torch.equal(back["numpy"], torch.arange(3.0, dtype=torch.float64))
    assert torch.equal(back["scalar"], torch.tensor([2.5]))  # torch7 has no 0-dim tensor
    assert back["empty"].numel() == 0
    assert back["bytes"].encode("utf-8", "surrogateescape") == b"\xff\x00raw"


def test_table_keys_round_trip():
    inner = [1, 2]
    obj = {TableKey(inner): "value", "also": inner}
    back = t7.load(io.BytesIO(t7.dumps(obj)))
    (key,) = [k for k in back if isinstance(k, TableKey)]
    assert key.value == [1, 2] and key.value is back["also"]


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("obj,path", [
    ({"data": [1, 2, object()]}, r"root\.data\[3\]"),
    ([{"w": {1, 2}}], r"root\[1\]\.w"),
    ({"t": torch.zeros(2, dtype=torch.complex64)}, r"root\.t"),
    ({"big": 10 ** 400}, r"root\.big"),
    ({"seed": 2 ** 53 + 1}, r"not exactly a Lua number .*root\.seed"),
    (LuaObject("nn.Linear", {"weight": lambda: 0}), r"root\.weight"),
])
def test_writer_errors_name_the_path(obj, path):
    with pytest.raises(t7.T7WriteError, match=path):
        t7.dumps(obj)


def test_nan_key_is_refused():
    with pytest.raises(t7.T7WriteError, match="NaN"):
        t7.dumps({float("nan"): 1})


def test_interrupted_save_leaves_no_file(tmp_path):
    class Boom:
        pass

    target = tmp_path / "out.t7"
    big = torch.zeros(1 << 20, dtype=torch.uint8)  # written before the failure
    with pytest.raises(t7.T7WriteError):
        t7.save({"a": big, "b": [big + 1, Boom()]}, target)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_save_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.t7"
    t7.save([1, 2, 3], target)
    before = target.read_bytes()
    with pytest.raises(t7.T7WriteError):
        t7.save([4, object()], target)
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["out.t7"]


def test_keyboard_interrupt_mid_write_leaves_no_file(tmp_path, monkeypatch):
    calls = []

    def interrupt(self, values):
        calls.append(values)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, values)

    original = Writer._i64s
    monkeypatch.setattr(Writer, "_i64s", interrupt)
    with pytest.raises(KeyboardInterrupt):
        t7.save([torch.ones(4), torch.ones(5)], tmp_path / "x.t7")
    assert list(tmp_path.iterdir()) == []


def test_saved_file_has_ordinary_permissions(tmp_path):
    t7.save(1, tmp_path / "one.t7")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "one.t7").stat().st_mode) == 0o666 & ~mask


def test_long_size_4_writes_int32_longs():
    assert len(t7.dumps(torch.zeros(2, 3))) - len(t7.dumps(torch.zeros(2, 3), long_size=4)) == \
        4 * (2 + 2 + 1 + 1)  # sizes, strides, offset, storage size
    with pytest.raises(ValueError, match="long_size"):
        t7.dumps(1, long_size=2)


def test_storage_and_tensor_on_it_are_written_once():
    flat = torch.arange(6.0)
    obj = {"s": Storage(flat), "t": flat.view(2, 3)}
    data = t7.dumps(obj)
    assert data.count(b"torch.FloatStorage") == 1
    back = t7.load(io.BytesIO(data))
    assert back["s"].tensor.untyped_storage().data_ptr() == back["t"].untyped_storage().data_ptr()


def test_streamed_table_and_tensor_headers_give_save_bytes():
    """table_header + tensor_header + the raw data, piece by piece, is t7.dumps' file."""
    data = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    labels = torch.tensor([3, 1], dtype=torch.int64)
    buf = io.BytesIO()
    w = Writer(buf)
    w.table_header(3)
    w.write("data")
    assert w.tensor_header("torch.FloatTensor", data.shape) == data.numel()
    buf.write(data.numpy().tobytes())
    w.write("labels")
    w.write(labels)  # objects written after a streamed one keep their reference numbers
    w.write("name")
    w.write("streamed")
    assert buf.getvalue() == t7.dumps({"data": data, "labels": labels, "name": "streamed"})


@pytest.mark.parametrize("class_name, shape, message", [
    ("torch.CudaTensor", (2,), "unknown tensor class 'torch.CudaTensor'"),
    ("torch.ByteTensor", (), r"sizes >= 1, got \(\)"),
    ("torch.ByteTensor", (3, 0), r"sizes >= 1, got \(3, 0\)"),
])
def test_tensor_header_refuses_what_it_cannot_stream(class_name, shape, message):
    with pytest.raises(t7.T7WriteError, match=message):
        Writer(io.BytesIO()).tensor_header(class_name, shape)
