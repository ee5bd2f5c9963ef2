"""Spec parser, zoo models, Lua-style printing and Lua argument conventions of the layers."""

from __future__ import annotations

import math

import pytest
import torch

from luatorch_port import nn as lnn
from luatorch_port.util.errors import A2Error
from luatorch_port.nn import layers as L
from luatorch_port.nn.spec import Layer, parse_spec


@pytest.mark.parametrize("spec, layers", [
    ("64c5-128c5-256c5-512f", [Layer("conv", 64, 5), Layer("conv", 128, 5), Layer("conv", 256, 5),
                               Layer("fc", 512)]),
    ("64c-64c-128f", [Layer("conv", 64, 5), Layer("conv", 64, 5), Layer("fc", 128)]),
    ("32c3", [Layer("conv", 32, 3)]),
    ("10f-20f", [Layer("fc", 10), Layer("fc", 20)]),
])
def test_parse_spec(spec, layers):
    assert parse_spec(spec) == layers


@pytest.mark.parametrize("spec, message", [
    ("", "expected tokens"), ("64x5", "bad token '64x5'"), ("64c4", "odd kernel"),
    ("128f-64c5", "after a fully connected"), ("0f", "bad token '0f'"), ("64c5--128f", "bad token ''"),
])
def test_bad_specs_raise(spec, message):
    with pytest.raises(A2Error, match=message):
        parse_spec(spec)


@pytest.mark.parametrize("name, n_classes, input_size, out_shape", [
    ("64c5-64c5-128f", 4000, 32, (2, 4000)),
    ("64c-64c-128f", 10, 96, (2, 10)),
    ("sample", 10, 96, (2, 10)),
    ("sample", 7, 64, (2, 7)),
    ("vgg_bn_drop", 10, 96, (2, 10)),
])
def test_build_model_shapes(name, n_classes, input_size, out_shape):
    model = lnn.build_model(name, n_classes=n_classes, input_size=input_size).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, input_size, input_size)).shape == out_shape


def test_batch_of_one_stays_a_batch():
    model = lnn.build_model("sample").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 96, 96)).shape == (1, 10)


@pytest.mark.parametrize("name, input_size, message", [
    ("resnet", 96, "unknown model 'resnet'"), ("64c5-64c5-64c5", 4, "too small"),
    ("sample", 0, "must be >= 1"),
])
def test_build_model_errors(name, input_size, message):
    with pytest.raises(A2Error, match=message):
        lnn.build_model(name, input_size=input_size)


def test_generator_makes_weights_reproducible():
    a = lnn.build_model("16c5-8f", n_classes=3, input_size=8, generator=torch.Generator().manual_seed(3))
    b = lnn.build_model("16c5-8f", n_classes=3, input_size=8, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_msr_init_and_lua_bn_reset():
    model = lnn.build_model("sample", generator=torch.Generator().manual_seed(0))
    conv, bn = model.get(5), model.get(6)
    assert conv.bias.abs().max() == 0
    expected_std = (2 / (conv.kW * conv.kH * conv.nOutputPlane)) ** 0.5
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.05)
    assert 0 <= bn.weight.min() and bn.weight.max() <= 1 and bn.weight.std() > 0.1  # U(0, 1)
    assert bn.eps == 1e-3 and bn.momentum == 0.1


@pytest.mark.parametrize("module, text", [
    (lnn.SpatialConvolution(3, 4, 5, 3, 1, 2, 2, 1), "nn.SpatialConvolution(3 -> 4, 5x3, 1,2, 2,1)"),
    (lnn.SpatialConvolution(3, 4, 3, 3), "nn.SpatialConvolution(3 -> 4, 3x3)"),
    (lnn.SpatialMaxPooling(3, 3, 2, 2).ceil(), "nn.SpatialMaxPooling(3x3, 2,2)"),
    (lnn.SpatialAveragePooling(2, 2, 2, 2, 1, 1), "nn.SpatialAveragePooling(2x2, 2,2, 1,1)"),
    (lnn.BatchNormalization(6), "nn.BatchNormalization (2D) (6)"),
    (lnn.Linear(6, 5, False), "nn.Linear(6 -> 5) without bias"),
    (lnn.Dropout(0.3), "nn.Dropout(0.300000)"),
    (lnn.View(2, -1), "nn.View(2, -1)"),
    (lnn.Reshape(3, 16), "nn.Reshape(3x16)"),
    (lnn.SpatialZeroPadding(1, 2, 0, 1), "nn.SpatialZeroPadding(l=1, r=2, t=0, b=1)"),
    (lnn.ConcatTable().add(lnn.Identity()).add(lnn.Tanh()),
     "nn.ConcatTable {\n  input\n    |`-> (1): nn.Identity\n     `-> (2): nn.Tanh\n     ... -> output\n}"),
])
def test_lua_printing(module, text):
    assert str(module) == text


def test_lua_argument_order():
    conv = lnn.SpatialConvolution(3, 4, 5, 3, 1, 2, 2, 1)  # kW=5, kH=3, dW=1, dH=2, padW=2, padH=1
    assert conv.weight.shape == (4, 3, 3, 5)
    assert conv(torch.zeros(2, 3, 7, 9)).shape == (2, 4, 4, 9)
    assert lnn.SpatialConvolution(1, 1, 3, 3, 1, 1, 1).padding == (1, 1)  # padH defaults to padW
    assert lnn.Sequential().add(conv).get(1) is conv
    with pytest.raises(A2Error, match="out of range"):
        lnn.Sequential().add(conv).get(0)


def test_criteria_take_zero_based_targets():
    x = torch.log_softmax(torch.randn(4, 5, dtype=torch.float64), 1)
    t = torch.tensor([1, 4, 0, 2])
    assert lnn.ClassNLLCriterion()(x, t).item() == pytest.approx(-x[range(4), t].mean().item())
    assert lnn.ClassNLLCriterion(sizeAverage=False)(x, t).item() == pytest.approx(-x[range(4), t].sum().item())


@pytest.mark.parametrize("make, shape, fan_in", [
    (lambda g: L.SpatialConvolution(3, 4, 5, 3, generator=g), (4, 3, 3, 5), 5 * 3 * 3),
    (lambda g: L.Linear(10, 3, generator=g), (3, 10), 10),
])
def test_conv_and_linear_reset_is_luas_uniform(make, shape, fan_in):
    """Lua reset(): weight then bias from U(-stdv, stdv), stdv = 1/sqrt(fan in), in that order."""
    m = make(torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    stdv = 1 / math.sqrt(fan_in)
    weight = torch.empty(shape).uniform_(-stdv, stdv, generator=g)
    bias = torch.empty(shape[0]).uniform_(-stdv, stdv, generator=g)
    assert torch.equal(m.weight.data, weight) and torch.equal(m.bias.data, bias)
    m.reset(0.01, generator=g)
    assert m.weight.abs().max() <= 0.01 and m.bias.abs().max() <= 0.01
    m.apply(lambda x: x.reset_parameters())  # torch's hook lands on Lua's reset()
    assert 0.01 < m.weight.abs().max() <= stdv
