"""luatorch_port.nn against Torch7: every nn_modules/*.t7 file, the stored models, the 2015 model."""

from __future__ import annotations

import pytest
import torch

from luatorch_port import t7
from luatorch_port import nn as lnn

from helpers import NN_CRITERION_FILES as CRITERION_FILES, NN_MODULE_FILES as MODULE_FILES

TOL = dict(rtol=1e-9, atol=1e-10)  # target 1e-6 (double); the worst difference in these files is far below it

def _close(actual, expected, what):
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    torch.testing.assert_close(actual, expected.to(actual.dtype), **TOL, msg=lambda m: f"{what}: {m}")

def run_module_file(data):
    """Rebuild the stored module, replay forward/backward, return the port's tensors."""
    module = lnn.from_t7(data["module"])
    assert module.training == data["train"]
    if "running_mean_before" in data:  # the stored module holds the statistics after forward
        module.running_mean.copy_(data["running_mean_before"])
        module.running_var.copy_(data["running_var_before"])
    x = data["input"].clone().requires_grad_(True)
    y = module(x)
    y.backward(data["gradOutput"])
    out = {"output": y.detach(), "gradInput": x.grad}
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.nn.Parameter):
        out["gradWeight"] = weight.grad.reshape(data["gradWeight"].shape)
        out["gradBias"] = module.bias.grad
    if "running_mean" in data:
        out["running_mean"], out["running_var"] = module.running_mean, module.running_var
    return out

@pytest.mark.parametrize("name", MODULE_FILES)
def test_module_matches_torch7(oracle, name):
    data = t7.load(oracle("made", "nn_modules", f"{name}.t7"))
    got = run_module_file(data)
    for key, value in got.items():
        _close(value, data[key], f"{name}.{key}")
    assert set(got) >= {k for k in ("gradWeight", "gradBias", "running_mean") if k in data}

@pytest.mark.parametrize("name", CRITERION_FILES)
def test_criterion_matches_torch7(oracle, name):
    data = t7.load(oracle("made", "nn_modules", f"{name}.t7"))
    crit = lnn.from_t7(data["criterion"])
    assert crit.sizeAverage == data["sizeAverage"]
    x = data["input"].clone().requires_grad_(True)
    target = data["target"]
    if crit.lua_class != "nn.MSECriterion":
        target = target.long() - 1  # Lua's 1-based class indices
    loss = crit(x, target)
    loss.backward()
    assert abs(loss.item() - data["loss"]) <= 1e-9 * abs(data["loss"]) + 1e-12
    _close(x.grad, data["gradInput"], f"{name}.gradInput")

@pytest.mark.parametrize("name, tol", [("exemplar_32c5_32c5_64f_16cls", 1e-5),
                                       ("course_sample_model_width_div8", 1e-5)])
def test_stored_model_output(oracle, name, tol):
    data = t7.load(oracle("made", "models", f"{name}.t7"))
    model = lnn.from_t7(data["model"])
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == data["nparams"]
    with torch.no_grad():
        y = model(data["input"])
    torch.testing.assert_close(y, data["output"], rtol=1e-4, atol=tol)

def test_course_sample_structure_matches_zoo(oracle):
    data = t7.load(oracle("made", "models", "course_sample_model_width_div8.t7"))
    model = lnn.from_t7(data["model"])
    from luatorch_port.nn.zoo import sample
    assert str(model) == str(sample(width_div=8))
    assert all(m.ceil_mode for m in model.modules() if isinstance(m, lnn.SpatialMaxPooling))

def test_2015_model_output(oracle):
    model = lnn.load_model(oracle("fetched", "2015-a2-model", "model.net"))
    io = t7.load(oracle("fetched", "2015-a2-model", "model_io.t7"))
    model.eval()
    with torch.no_grad():
        y = model(io["input"])
    torch.testing.assert_close(y, io["output"], rtol=1e-7, atol=1e-5)

@pytest.mark.parametrize("spec, n_classes", [("exemplar_64c5_128c5_256c5_512f_100cls", 100),
                                            ("exemplar_64c5_64c5_128f_100cls", 100),
                                            ("course_sample_full", 10)])
def test_full_size_structure_and_counts(oracle, spec, n_classes):
    specs = t7.load(oracle("made", "models", "full_size_specs.t7"))[spec]
    name = {"course_sample_full": "sample"}.get(spec, spec.split("_", 1)[1].rsplit("_", 1)[0].replace("_", "-"))
    model = lnn.build_model(name, n_classes=n_classes, input_size=96 if name == "sample" else 32)
    assert str(model) == specs["structure"]
    assert sum(p.numel() for p in model.parameters()) == specs["nparams"]
    x = torch.zeros(2, 3, 96 if name == "sample" else 32, 96 if name == "sample" else 32)
    model.eval()
    with torch.no_grad():
        for i, (m, line) in enumerate(zip(model, specs["shapes"]), 1):
            x = m(x)
            assert line == f"{i} {m.lua_class} -> {'x'.join(map(str, x.shape))}"


def test_dag_module_tie_rule(oracle):
    """Part 1.1's Lua DAG (ParallelTable, ConcatTable, CMinTable, CMaxTable, CAddTable)."""
    data = t7.load(oracle("made", "dag_backprop.t7"))
    net = lnn.from_t7(data["module"])
    x1 = data["x1"].clone().requires_grad_(True)
    x2 = data["x2"].clone().requires_grad_(True)
    y = net([x1, x2])
    y.backward(data["gradOutput"])
    _close(y.detach(), data["y"], "y")
    _close(x1.grad, data["dx1"], "dx1")  # ties: the whole gradient goes to the first input
    _close(x2.grad, data["dx2"], "dx2")


@pytest.mark.parametrize("case", ["", "batch1"])
def test_batchnorm_part12(oracle, case):
    """Training-mode BN; a batch of one silently takes the evaluate path, as THNN does."""
    data = t7.load(oracle("made", "batchnorm_part12.t7"))
    data = data[case] if case else data
    bn = lnn.from_t7(data["module"])
    bn.train()
    bn.running_mean.copy_(data["running_mean_before"])
    bn.running_var.copy_(data["running_var_before"])
    x = data["input"].clone().requires_grad_(True)
    y = bn(x)
    y.backward(data["gradOutput"])
    _close(y.detach(), data["output"], "output")
    _close(x.grad, data["gradInput"], "gradInput")
    _close(bn.weight.grad, data["gradWeight"], "gradWeight")
    _close(bn.running_mean, data["running_mean"], "running_mean")
    _close(bn.running_var, data["running_var"], "running_var")


@pytest.mark.parametrize("model_file, io_file, tol", [
    ("small_convnet.t7", "small_convnet_io.t7", 1e-12),
    ("edge/model_float_evaluate_with_io.t7", None, 1e-5),
])
def test_misc_models_output(oracle, model_file, io_file, tol):
    obj = t7.load(oracle("made", "misc", model_file))
    io = t7.load(oracle("made", "misc", io_file)) if io_file else obj
    model = lnn.from_t7(obj if io_file else obj["model"]).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(io["input"]), io["output"], rtol=1e-6, atol=tol)


def test_ascii_model_equals_binary(oracle):
    binary = lnn.from_t7(t7.load(oracle("made", "misc", "edge", "model_float_clearstate.t7")))
    ascii_ = lnn.from_t7(t7.load(oracle("made", "misc", "edge", "model_float_clearstate_ascii.t7")))
    assert str(binary) == str(ascii_)
    for (k, a), (_, b) in zip(binary.state_dict().items(), ascii_.state_dict().items()):
        assert torch.equal(a, b), k
