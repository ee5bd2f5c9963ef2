"""t7 reader against files written by a real Lua Torch7: the pack's made/ (vendored in
tests/fixtures/torch7/) and fetched/ (read in place from ../shared/t7-oracle/ where present).

Values are checked against the pack's manifest (made/README.md, lua/edge_cases.lua,
lua/save_stl_like.lua, fetched/*/README.md); every binary file is also cross-checked
tensor by tensor against ``torchfile.load(path, use_list_heuristic=False)``.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from luatorch_port import t7
from luatorch_port.t7 import LuaFunction, LuaObject, Storage, TableKey

from helpers import oracle_files, shared_pack_present

ALL_FILES = oracle_files()
ASCII_FILES = [f for f in ALL_FILES if f.startswith("made/ascii/")
               or f.startswith("made/misc/edge/ascii_") or f.endswith("_ascii.t7")]
BINARY_FILES = [f for f in ALL_FILES if f not in ASCII_FILES]


def arange(dtype, *shape, start=1):
    n = math.prod(shape)
    return torch.arange(start, start + n).reshape(shape).to(dtype)


# -- every file loads -------------------------------------------------------------------------

def test_the_pack_is_all_there():
    # made/README.md's 53, misc/ 3, misc/edge/ 23 (vendored); fetched/: model 2, stl10 3,
    # torchfile-tests 15 (only beside ../shared)
    made = [f for f in ALL_FILES if f.startswith("made/")]
    assert len(made) == 53 + 3 + 23
    assert len(ASCII_FILES) == 6
    if not shared_pack_present():
        pytest.skip("fetched half of the oracle pack absent")
    assert len(ALL_FILES) - len(made) == 2 + 3 + 15


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_oracle_file_loads(oracle, name):
    obj = t7.load(oracle(*name.split("/")))
    assert obj is not None or name.endswith("nil.t7")


# -- tensors of every type, views, shared storages (made/misc/edge, lua/edge_cases.lua) ------

@pytest.mark.parametrize("kind,dtype", [
    ("byte", torch.uint8), ("char", torch.int8), ("short", torch.int16), ("int", torch.int32),
    ("long", torch.int64), ("float", torch.float32), ("double", torch.float64)])
def test_tensor_of_each_type(oracle, kind, dtype):
    t = t7.load(oracle("made", "misc", "edge", f"tensor_{kind}_2x3x4_arange.t7"))
    assert t.dtype == dtype
    assert torch.equal(t, arange(dtype, 2, 3, 4))


def test_transposed_tensor_keeps_its_strides(oracle):
    t = t7.load(oracle("made", "misc", "edge", "tensor_double_transposed_4x3.t7"))
    assert t.shape == (4, 3) and t.stride() == (1, 4) and not t.is_contiguous()
    assert torch.equal(t, arange(torch.float64, 3, 4).t())


def test_narrowed_tensor_keeps_its_offset(oracle):
    t = t7.load(oracle("made", "misc", "edge", "tensor_double_narrow_offset.t7"))
    assert t.storage_offset() == 5 and t.untyped_storage().nbytes() == 20 * 8
    assert torch.equal(t, arange(torch.float64, 4, 5)[1:3])


def test_shared_storage_is_shared_after_loading(oracle):
    d = t7.load(oracle("made", "misc", "edge", "table_shared_storage.t7"))
    assert d["c"] is d["c_again"]  # the same tensor object, referenced twice
    assert torch.equal(d["a"], arange(torch.float64, 2, 3))
    assert torch.equal(d["b"], torch.tensor([4.0, 5.0, 6.0], dtype=torch.float64))
    d["c"][3] = -1  # one storage: writing through c shows in a and b
    assert d["a"][1, 0] == -1 and d["b"][0] == -1


@pytest.mark.parametrize("name,expected", [
    ("tensor_empty.t7", torch.empty(0, dtype=torch.float64)),
    ("tensor_scalar_like.t7", torch.tensor([3.5], dtype=torch.float64)),
    ("labels_byte_1to10.t7", torch.arange(1, 11, dtype=torch.uint8)),
])
def test_small_tensors(oracle, name, expected):
    t = t7.load(oracle("made", "misc", "edge", name))
    assert t.dtype == expected.dtype and torch.equal(t, expected)


@pytest.mark.parametrize("name,count", [("list_of_1_tensor.t7", 1), ("list_of_2_tensors.t7", 2)])
def test_lists_of_tensors_that_crash_default_torchfile(oracle, name, count):
    obj = t7.load(oracle("made", "misc", "edge", name))
    assert isinstance(obj, list) and len(obj) == count
    assert all(isinstance(t, torch.Tensor) for t in obj)


def test_list_of_2_tensors_values(oracle):
    a, b = t7.load(oracle("made", "misc", "edge", "list_of_2_tensors.t7"))
    assert torch.equal(a, torch.tensor([1, 1], dtype=torch.uint8))
    assert torch.equal(b, torch.tensor([2, 2], dtype=torch.uint8))


# -- tables ----------------------------------------------------------------------------------

def test_mixed_table(oracle):
    d = t7.load(oracle("made", "misc", "edge", "table_mixed.t7"))
    assert d == {"str": "hello", "num": 1.5, "int": 42, "neg": -7, "yes": True, "no": False,
                 "list": [10, 20, 30], "sparse": {1: "a", 3: "c"},
                 "nested": {"x": {"y": {"z": "deep"}}}, 5: "five", 2.5: "two and a half"}
    assert type(d["int"]) is int and type(d["num"]) is float and type(d["yes"]) is bool


@pytest.mark.parametrize("name,expected", [
    ("hello=123.t7", {"hello": 123}),
    ("list_table.t7", ["hello", "world", "third item", 123]),
    ("map_table1.t7", {0: "zero", 1: "hello", 2: "world", 3: "third item", 4: 123}),
    ("map_table2.t7", {1: "hello", 2: "world", 3: "third item", 4: 123, "a": "non number key"}),
    ("tds_vec.t7", [123, 456]),
    ("tds_hash.t7", {1: 2, 2: 3, 10: 11}),
])
def test_torchfile_test_tables(oracle, name, expected):
    assert t7.load(oracle("fetched", "torchfile-tests", name)) == expected


def test_recursive_kv_table(oracle):
    d = t7.load(oracle("fetched", "torchfile-tests", "recursive_kv_table.t7"))
    (key, value), = d.items()
    assert isinstance(key, TableKey) and key.value is d and value is d


# -- torch classes, functions -----------------------------------------------------------------

def test_custom_class(oracle):
    foo = t7.load(oracle("made", "misc", "edge", "custom_class_Foo.t7"))
    assert isinstance(foo, LuaObject) and foo.class_name == "Foo" and foo.version == 1
    assert foo.x == 3 and foo["x"] == 3
    assert torch.equal(foo.w, torch.tensor([1.0, 2.0]))
    with pytest.raises(AttributeError, match="no field 'y'"):
        foo.y  # missing keys raise, never read as None
    with pytest.raises(KeyError):
        foo["y"]


def test_recursive_class(oracle):
    a = t7.load(oracle("fetched", "torchfile-tests", "recursive_class.t7"))
    assert a.class_name == "A" and a.a is a


def test_class_with_empty_payload(oracle):
    blah = t7.load(oracle("fetched", "torchfile-tests", "custom_class.t7"))
    assert blah.class_name == "Blah" and blah.fields == []


@pytest.mark.parametrize("name,upvalues", [
    ("function.t7", []),
    ("function_upvals.t7", [{"name": "asdf", "value": 123}]),
])
def test_functions_are_inert_data(oracle, name, upvalues):
    f = t7.load(oracle("fetched", "torchfile-tests", name))
    assert isinstance(f, LuaFunction) and not callable(f)
    assert f.dumped.startswith(b"\x1bLJ")  # LuaJIT bytecode, kept as bytes
    assert f.upvalues == upvalues and f.type_tag == 8


def test_nngraph_files(oracle):
    node = t7.load(oracle("fetched", "torchfile-tests", "nngraph_node.t7"))
    assert node.class_name == "nngraph.Node" and node.data["annotations"]["hello"] == 123
    g = t7.load(oracle("fetched", "torchfile-tests", "gmodule_with_linear_identity.t7"))
    assert g.class_name == "nn.gModule"
    assert [m.class_name for m in g.modules] == ["nn.Identity", "nn.Identity", "nn.Linear",
                                                 "nn.CAddTable"]
    assert g.forwardnodes[3].data["module"] is g.modules[0]  # torchfile's README example


def test_model_file_fields(oracle):
    m = t7.load(oracle("made", "misc", "edge", "model_float_clearstate.t7"))
    assert m.class_name == "nn.Sequential" and m.train is False
    assert [x.class_name for x in m.modules] == [
        "nn.SpatialConvolution", "nn.SpatialBatchNormalization", "nn.ReLU",
        "nn.SpatialMaxPooling", "nn.View", "nn.Linear", "nn.LogSoftMax"]
    conv = m.modules[0]
    assert (conv.nInputPlane, conv.nOutputPlane, conv.kW, conv.kH, conv.padW) == (3, 4, 3, 3, 1)
    assert conv.weight.dtype == torch.float32 and conv.weight.shape == (4, 3, 3, 3)
    view_size = m.modules[4].size
    assert isinstance(view_size, Storage) and view_size.tolist() == [64]
    assert view_size.class_name == "torch.LongStorage"


def test_model_with_io(oracle):
    d = t7.load(oracle("made", "misc", "edge", "model_float_evaluate_with_io.t7"))
    assert d["input"].shape == (3, 3, 8, 8) and d["output"].shape == (3, 10)
    assert torch.equal(d["model"].output, d["output"])  # module field and clone agree
    assert torch.allclose(d["output"].exp().sum(1), torch.ones(3), atol=1e-5)  # LogSoftMax


def test_2015_model_net(oracle):
    m = t7.load(oracle("fetched", "2015-a2-model", "model.net"))
    assert [x.class_name for x in m.modules] == [
        "nn.SpatialZeroPadding", "nn.SpatialConvolutionMM", "nn.ReLU", "nn.SpatialMaxPooling",
        "nn.SpatialConvolutionMM", "nn.ReLU", "nn.SpatialMaxPooling", "nn.Dropout", "nn.View",
        "nn.Linear", "nn.ReLU", "nn.Linear", "nn.LogSoftMax"]
    conv = m.modules[1]
    assert conv.weight.shape == (64, 25) and conv.weight.dtype == torch.float64
    # getParameters() flattened the gradients into one storage: views share it
    storage_of = lambda t: t.untyped_storage().data_ptr()  # noqa: E731
    assert storage_of(conv.gradWeight) == storage_of(conv.gradBias)
    io_ = t7.load(oracle("fetched", "2015-a2-model", "model_io.t7"))
    assert io_["input"].shape == (4, 1, 40, 40) and io_["output"].shape == (4, 10)


# -- the course layout, with real STL-10 pixels ----------------------------------------------

def test_mini_train_course_layout(oracle):
    data = t7.load(oracle("made", "misc", "mini_train.t7b"))["data"]
    assert len(data) == 10 and all(len(c) == 3 for c in data)
    for c, images in enumerate(data, start=1):
        for j, img in enumerate(images, start=1):
            assert img.dtype == torch.uint8 and img.shape == (3, 96, 96)
            assert img[0, 0, 0] == c and img[1, 0, 0] == j  # lua/save_stl_like.lua
            for ch in range(3):
                assert int(img[ch, 5, 7]) == (c * 20 + j * 7 + ch + 1) % 256


def test_real_stl10_test_images(oracle):
    data = t7.load(oracle("fetched", "stl10", "real_test_1perclass.t7b"))["data"]
    assert len(data) == 10 and [len(c) for c in data] == [1] * 10
    images = torch.stack([c[0] for c in data])
    assert images.dtype == torch.uint8 and images.shape == (10, 3, 96, 96)
    # Torch7 replayed the starter's Provider on these pixels and stored its input as floats
    normalized = t7.load(oracle("fetched", "stl10", "provider_normalize_oracle.t7"))
    assert torch.equal(images.float(), normalized["train_in"])
    assert [int(i.long().sum()) for i in images] == [
        3459741, 2941911, 3043746, 1920729, 3249388, 4429963, 2337446, 4540064, 3747206, 3055295]


def test_real_stl10_extra_layout(oracle):
    data = t7.load(oracle("fetched", "stl10", "real_extra_246.t7b"))["data"]
    assert len(data) == 1 and len(data[0]) == 246  # ONE array under data[1]
    assert all(img.shape == (3, 96, 96) and img.dtype == torch.uint8 for img in data[0])
    normalized = t7.load(oracle("fetched", "stl10", "provider_normalize_oracle.t7"))
    assert torch.equal(torch.stack(data[0][:20]).float(), normalized["val_in"])


# -- ascii -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["made/ascii/float_tensor_2x3_1to6.t7",
                                  "made/misc/edge/ascii_tensor_float_2x3.t7"])
def test_ascii_tensor(oracle, name):
    t = t7.load(oracle(*name.split("/")))
    assert t.dtype == torch.float32 and torch.equal(t, arange(torch.float32, 2, 3))


def test_ascii_tables(oracle):
    assert t7.load(oracle("made", "ascii", "lua_array_1_2_3.t7")) == [1, 2, 3]
    d = t7.load(oracle("made", "ascii", "small_table.t7"))
    assert {k: d[k] for k in ("name", "x", "flag", "sizes")} == {
        "name": "stl10", "x": 3.5, "flag": True, "sizes": [3, 96, 96]}
    assert torch.equal(d["labels"], torch.tensor([1, 2, 3], dtype=torch.uint8))
    assert torch.equal(d["w"], arange(torch.float32, 2, 3))
    m = t7.load(oracle("made", "misc", "edge", "ascii_table_mixed.t7"))
    assert m["str"] == "hello" and m["list"] == [1, 2, 3]
    assert torch.equal(m["t"], torch.tensor([7, 8, 9], dtype=torch.uint8))


def test_ascii_model_equals_binary_model(oracle):
    binary = t7.load(oracle("made", "misc", "edge", "model_float_clearstate.t7"))
    ascii_ = t7.load(oracle("made", "misc", "edge", "model_float_clearstate_ascii.t7"))
    for b, a in zip(binary.modules, ascii_.modules, strict=True):
        assert b.class_name == a.class_name and set(b.fields) == set(a.fields)
        for k, v in b.fields.items():
            if isinstance(v, torch.Tensor):
                assert v.dtype == a.fields[k].dtype, k  # (a NaN of uninitialised memory too)
                assert torch.allclose(v, a.fields[k], rtol=0, atol=0, equal_nan=True), k


def test_ascii_from_bytesio(oracle):
    raw = oracle("made", "ascii", "lua_array_1_2_3.t7").read_bytes()
    assert t7.load(io.BytesIO(raw)) == [1, 2, 3]


# -- files written with a 4-byte long (Lua Torch on Windows) ---------------------------------

LONG4_CASES = {
    "float_tensor_2x3_1to6.t7": arange(torch.float32, 2, 3),
    "nested_array_course_layout.t7": [[arange(torch.uint8, 3, 2, 2),
                                       arange(torch.uint8, 3, 2, 2, start=13)],
                                      [arange(torch.uint8, 3, 2, 2, start=25)]],
    "long_tensor_1to4.t7": torch.arange(1, 5),
}


def _long4(name):
    """The golden re-encoded as Lua Torch on Windows would write it: every long as int32."""
    return t7.dumps(LONG4_CASES[name], long_size=4)


@pytest.mark.parametrize("name", sorted(LONG4_CASES))
@pytest.mark.parametrize("long_size", [None, 4])
def test_four_byte_long_files(oracle, name, long_size):
    golden = oracle("made", "t7_writer_golden", name).read_bytes()
    data = _long4(name)
    assert data != golden and t7.dumps(LONG4_CASES[name]) == golden
    assert _same(t7.load(io.BytesIO(data), long_size=long_size), LONG4_CASES[name])
    with pytest.raises(t7.T7FormatError):
        t7.load(io.BytesIO(data), long_size=8)


def test_four_byte_long_detected_from_a_path(tmp_path):
    path = tmp_path / "win.t7"
    t7.save({"data": [[torch.ones(3, 4, 4, dtype=torch.uint8)]]}, path, long_size=4)
    assert torch.equal(t7.load(path)["data"][0][0], torch.ones(3, 4, 4, dtype=torch.uint8))


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


# -- cross-check against torchfile on every binary file --------------------------------------

torchfile = pytest.importorskip("torchfile")


def _match(ours, theirs, path, seen):
    """Walk our object and torchfile's in lockstep; every tensor must agree exactly."""
    if (id(ours), id(theirs)) in seen:
        return
    if isinstance(ours, (list, dict, LuaObject, LuaFunction, torch.Tensor, Storage)):
        seen.add((id(ours), id(theirs)))
    if isinstance(ours, torch.Tensor):
        assert isinstance(theirs, np.ndarray), path
        want = torch.from_numpy(np.ascontiguousarray(theirs))
        assert ours.dtype == want.dtype and ours.shape == want.shape, path
        assert torch.equal(ours, want) or torch.allclose(ours, want, equal_nan=True, rtol=0,
                                                         atol=0), path
    elif isinstance(ours, Storage):
        _match(ours.tensor, theirs, path, seen)
    elif isinstance(ours, LuaObject):
        assert isinstance(theirs, torchfile.TorchObject), path
        assert ours.class_name == theirs._typename.decode(), path
        _match(ours.fields, theirs._obj, f"{path}.<fields>", seen)
    elif isinstance(ours, LuaFunction):
        assert ours.dumped == theirs.dumped, path
        _match(ours.upvalues, theirs.upvalues, f"{path}.<upvalues>", seen)
    elif isinstance(ours, (list, dict)):
        mine = dict(enumerate(ours, start=1)) if isinstance(ours, list) else ours
        other = dict(enumerate(theirs, start=1)) if isinstance(theirs, list) else theirs
        assert isinstance(other, dict), path
        plain = {_key(k): v for k, v in other.items() if not _by_identity(k)}
        assert {k for k in mine if not _by_identity(k)} == set(plain), path
        for k, v in mine.items():
            if not _by_identity(k):
                _match(v, plain[k], f"{path}[{k!r}]", seen)
        ours_ik = [(k, v) for k, v in mine.items() if _by_identity(k)]
        theirs_ik = [(k, v) for k, v in other.items() if _by_identity(k)]
        assert len(ours_ik) == len(theirs_ik), path
        for (k1, v1), (k2, v2) in zip(ours_ik, theirs_ik):  # both in file order
            _match(k1.value if isinstance(k1, TableKey) else k1, k2, f"{path}.<key>", seen)
            _match(v1, v2, f"{path}.<value>", seen)
    elif isinstance(ours, str):
        assert ours.encode("utf-8", "surrogateescape") == theirs, path
    elif isinstance(ours, float) and math.isnan(ours):
        assert math.isnan(theirs), path
    else:
        assert ours == theirs and type(ours) is type(theirs), path


def _by_identity(k):
    """Keys that are tables or torch objects (compared by identity, as in Lua)."""
    return isinstance(k, (TableKey, LuaObject, dict, torchfile.TorchObject))


def _key(k):
    return k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else k


@pytest.mark.parametrize("name", BINARY_FILES)
def test_agrees_with_torchfile(oracle, name):
    path = oracle(*name.split("/"))
    theirs = torchfile.load(str(path), use_list_heuristic=False)
    _match(t7.load(path), theirs, "root", set())


def test_default_torchfile_really_crashes_on_the_course_layout(oracle):
    """The defect this reader exists for (if torchfile is ever fixed, docs/t7.md should say so)."""
    with pytest.raises(ValueError, match="__array_struct__"):
        torchfile.load(str(oracle("made", "misc", "edge", "list_of_2_tensors.t7")))


# -- file objects ----------------------------------------------------------------------------

class _Unseekable(io.RawIOBase):
    def __init__(self, data):
        self._inner = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):
        return self._inner.readinto(b)


def test_unseekable_and_offset_file_objects(oracle):
    raw = oracle("made", "t7_writer_golden", "table_data_nested_course_layout.t7").read_bytes()
    a = t7.load(_Unseekable(raw))
    assert torch.equal(a["data"][1][0], torch.arange(25, 37, dtype=torch.uint8).reshape(3, 2, 2))
    f = io.BytesIO(b"junk" + raw + raw)
    f.seek(4)  # read from the current position, like torch.load on an open File
    first = t7.load(f)
    assert f.tell() == 4 + len(raw) and t7.load(f)["data"][0][1].shape == (3, 2, 2)
    assert first["data"][0][0][0, 0, 0] == 1


def test_text_file_object_is_refused(tmp_path):
    (tmp_path / "x.t7").write_bytes(t7.dumps([1]))
    with open(tmp_path / "x.t7", encoding="latin-1") as f, pytest.raises(TypeError, match="binary"):
        t7.load(f)
