"""to_t7 -> t7.save -> t7.load -> from_t7 is the identity; fields match Torch7's; .pt files."""

from __future__ import annotations

import pytest
import torch

from luatorch_port import t7
from luatorch_port import nn as lnn
from luatorch_port.util.errors import A2Error

from helpers import NN_CRITERION_FILES as CRITERION_FILES, NN_MODULE_FILES as MODULE_FILES

# Buffers Lua creates during forward/backward; a freshly written module does not have them.
FORWARD_BUFFERS = {"ones", "_coef", "_inpsz", "localsums", "adjustedsums", "localstds",
                   "adjustedstds", "thresholdedstds"}
PARAM_KEYS = {"weight", "bias", "gradWeight", "gradBias", "running_mean", "running_var",
              "kernel", "connTable"}

def _same_fields(ours, theirs, path):
    """Same class, version and keys (bar forward buffers, and ``train``, which to_t7 always
    writes); parameters of the same shape and dtype."""
    assert ours.class_name == theirs.class_name, path
    assert ours.version == theirs.version, path
    ours_keys = set(ours.fields) - ({"train"} if "train" not in theirs.fields else set())
    assert ours_keys == set(theirs.fields) - FORWARD_BUFFERS, f"{path}: {ours.class_name}"
    for key, theirs_value in theirs.fields.items():
        if key not in ours.fields:
            continue
        value = ours.fields[key]
        if isinstance(theirs_value, t7.LuaObject):
            _same_fields(value, theirs_value, f"{path}.{key}")
        elif key == "modules":
            assert len(value) == len(theirs_value), path
            for i, (a, b) in enumerate(zip(value, theirs_value), 1):
                _same_fields(a, b, f"{path}.modules[{i}]")
        elif isinstance(theirs_value, torch.Tensor):
            assert isinstance(value, torch.Tensor) and value.dtype == theirs_value.dtype, f"{path}.{key}"
            if key in PARAM_KEYS:
                assert value.shape == theirs_value.shape, f"{path}.{key}"
        elif isinstance(theirs_value, (t7.Storage, str, bool)):
            assert type(value) is type(theirs_value), f"{path}.{key}"

def _reload(module, tmp_path):
    path = tmp_path / "m.t7"
    t7.save(lnn.to_t7(module), path)
    return lnn.from_t7(t7.load(path))

@pytest.mark.parametrize("name", MODULE_FILES + CRITERION_FILES)
def test_module_file_roundtrip(oracle, tmp_path, name):
    data = t7.load(oracle("made", "nn_modules", f"{name}.t7"))
    lua = data.get("module", data.get("criterion"))
    module = lnn.from_t7(lua)
    _same_fields(lnn.to_t7(module), lua, name)
    again = _reload(module, tmp_path)
    assert str(again) == str(module) and again.training == module.training
    module.eval(), again.eval()
    with torch.no_grad():
        if "criterion" in data:
            target = data["target"] if "MSE" in name else data["target"].long() - 1
            assert again(data["input"], target).item() == module(data["input"], target).item()
        else:
            assert torch.equal(again(data["input"]), module(data["input"]))

def test_dag_tree_roundtrip(oracle, tmp_path):
    data = t7.load(oracle("made", "dag_backprop.t7"))
    module = lnn.from_t7(data["module"])
    _same_fields(lnn.to_t7(module), data["module"], "dag")
    again = _reload(module, tmp_path)
    assert torch.equal(again([data["x1"], data["x2"]]), data["y"])


@pytest.mark.parametrize("name, input_size", [
    ("sample", 96), pytest.param("vgg_bn_drop", 32, marks=pytest.mark.slow),
    ("64c5-128c5-256c5-512f", 32)])
def test_model_roundtrip_t7_and_pt(tmp_path, name, input_size):
    gen = torch.Generator().manual_seed(0)
    model = lnn.build_model(name, n_classes=10, input_size=input_size, generator=gen)
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5, generator=gen)
            m.running_var.uniform_(0.5, 2, generator=gen)
    model.eval()
    x = torch.randn(1, 3, input_size, input_size, generator=gen)
    with torch.no_grad():
        y = model(x)
        for suffix in (".t7", ".pt"):
            path = tmp_path / f"model{suffix}"
            lnn.save_model(model, path, spec=name)
            back = lnn.load_model(path)
            assert str(back) == str(model) and not back.training
            assert torch.equal(back(x), y), suffix

def test_pt_is_weights_only_loadable(tmp_path):
    model = lnn.build_model("16c5-8f", n_classes=3, input_size=8)
    lnn.save_model(model, tmp_path / "m.pt", spec="16c5-8f")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    assert payload["spec"] == "16c5-8f" and payload["structure"]["class"] == "nn.Sequential"

def test_every_layer_class_roundtrips(tmp_path):
    seq = lnn.Sequential()
    seq.add(lnn.SpatialZeroPadding(1, 0, 2, 1)).add(lnn.SpatialConvolutionMM(3, 4, 3, 3, 1, 1, 1))
    seq.add(lnn.SpatialBatchNormalization(4, 1e-3)).add(lnn.Tanh())
    seq.add(lnn.SpatialAveragePooling(2, 2, 2, 2)).add(lnn.SpatialMaxPooling(2, 2).ceil())
    branches = lnn.ConcatTable().add(lnn.Sigmoid()).add(lnn.Identity())
    seq.add(lnn.Concat(2).add(lnn.Identity()).add(lnn.ReLU()))
    seq.add(branches).add(lnn.CAddTable())
    seq.add(lnn.Reshape(8 * 3 * 2)).add(lnn.Dropout(0.25)).add(lnn.Linear(48, 6))
    seq.add(lnn.BatchNormalization(6)).add(lnn.SoftMax())
    seq.eval()
    x = torch.randn(2, 3, 7, 8, dtype=torch.float64)
    seq.double()
    again = _reload(seq, tmp_path)
    assert str(again) == str(seq)
    with torch.no_grad():
        torch.testing.assert_close(again(x), seq(x), rtol=0, atol=0)

def test_unsupported_class_names_its_path():
    inner = t7.LuaObject("nn.Sequential", {"modules": [
        t7.LuaObject("nn.ReLU", {}), t7.LuaObject("nn.SpatialFullConvolution", {})]})
    root = t7.LuaObject("nn.Sequential", {"modules": [t7.LuaObject("nn.Tanh", {}),
                                                      t7.LuaObject("nn.Sigmoid", {}), inner]})
    with pytest.raises(A2Error, match=r"^modules\[3\]\.modules\[2\]: nn\.SpatialFullConvolution is not supported$"):
        lnn.from_t7(root)

def test_plain_torch_module_cannot_be_written():
    with pytest.raises(A2Error, match=r"modules\[1\]: .*Conv2d has no Lua nn equivalent"):
        lnn.to_t7(lnn.Sequential(torch.nn.Conv2d(1, 1, 1)))

def test_batchnorm_v1_running_std_is_upgraded():
    std = torch.tensor([0.5, 2.0], dtype=torch.float64)
    lua = t7.LuaObject("nn.BatchNormalization", {
        "eps": 1e-5, "momentum": 0.1, "affine": True, "train": False,
        "weight": torch.ones(2, dtype=torch.float64), "bias": torch.zeros(2, dtype=torch.float64),
        "running_mean": torch.zeros(2, dtype=torch.float64), "running_std": std}, version=1)
    bn = lnn.from_t7(lua)
    torch.testing.assert_close(bn.running_var, std.pow(-2) - 1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_model_matches_cpu_and_saves(tmp_path):
    model = lnn.build_model("sample", generator=torch.Generator().manual_seed(1)).eval()
    scn = lnn.SpatialContrastiveNormalization(1, torch.ones(7))
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        y_cpu, n_cpu = model(x), scn(x[:, :1])
        model.cuda(), scn.cuda()
        torch.testing.assert_close(model(x.cuda()).cpu(), y_cpu, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(scn(x[:, :1].cuda()).cpu(), n_cpu, rtol=1e-4, atol=1e-4)
    lnn.save_model(model, tmp_path / "m.t7")
    torch.testing.assert_close(lnn.load_model(tmp_path / "m.t7")(x), y_cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["SpatialConvolution_3to8_k5_p2", "SpatialMaxPooling_k3_s2_ceil_8x9",
                                  "SpatialBatchNormalization_4_eps1e-3_evaluate", "ReLU", "Tanh",
                                  "LogSoftMax"])
def test_cudnn_twins_read_as_nn(oracle, name):
    data = t7.load(oracle("made", "nn_modules", f"{name}.t7"))
    lua = data["module"]
    expected = lnn.from_t7(lua)
    lua.class_name = lua.class_name.replace("nn.", "cudnn.")  # as cudnn.convert(model, cudnn) leaves it
    module = lnn.from_t7(lua)
    assert module.lua_class == expected.lua_class and lnn.to_t7(module).class_name.startswith("nn.")
    module.eval(), expected.eval()
    with torch.no_grad():
        assert torch.equal(module(data["input"]), expected(data["input"]))


@pytest.mark.parametrize("lua, message", [
    (t7.LuaObject("nn.Linear", {}), r"^\(root\): nn.Linear has no field 'weight'$"),
    (t7.LuaObject("nn.Sequential", {"modules": [t7.LuaObject("nn.Linear", {"weight": 3})]}),
     r"^modules\[1\]\.weight: expected a tensor, got int$"),
    (t7.LuaObject("nn.Threshold", {"threshold": 0.5, "val": 0}), r"threshold=0.5, val=0.0 is not supported"),
    ({"data": []}, r"^\(root\): expected a Lua nn module, got dict$"),
])
def test_malformed_modules_raise_with_path(lua, message):
    with pytest.raises(A2Error, match=message):
        lnn.from_t7(lua)


def test_bfloat16_model_is_written_as_float_tensors():
    model = lnn.build_model("8c3-4f", n_classes=2, input_size=8).to(torch.bfloat16)
    lua = lnn.to_t7(model)
    assert lua["_type"] == "torch.FloatTensor"
    assert lua["modules"][0]["weight"].dtype == torch.float32
    assert lua["modules"][0]["gradWeight"].dtype == torch.float32
