"""Part 1 modules: hand-written backward checked by the nn.Jacobian port, tie rule, BN semantics."""

from __future__ import annotations

import pytest
import torch

from luatorch_port import nn as lnn
from luatorch_port import t7
from luatorch_port.backprop import jacobian
from luatorch_port.backprop.dag import build_dag
from luatorch_port.backprop.modules import (BatchNormalization, CAddTable, CMaxTable, CMinTable, ConcatTable,
                                            ParallelTable, Sequential, Sigmoid, from_lua)
from luatorch_port.util.errors import A2Error
from luatorch_port.t7 import LuaObject

D64 = torch.float64
JACOBIAN_TOL = 1e-6  # the acceptance bound (torch/nn's own tests use 1e-5)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _bn(d, affine, gen):
    bn = BatchNormalization(d, affine=affine, generator=gen)
    bn.running_mean = torch.randn(d, dtype=D64, generator=gen)
    bn.running_var = 0.5 + torch.rand(d, dtype=D64, generator=gen)
    return bn


MODULES = {
    "Sigmoid": (lambda d, g: Sigmoid(), False),
    "CMinTable": (lambda d, g: CMinTable(), True),
    "CMaxTable": (lambda d, g: CMaxTable(), True),
    "CAddTable": (lambda d, g: CAddTable(), True),
    "dag": (lambda d, g: build_dag(), True),
    "BatchNormalization": (lambda d, g: _bn(d, True, g), False),
    "BatchNormalization-noaffine": (lambda d, g: _bn(d, False, g), False),
    "Sequential(BN,Sigmoid)": (lambda d, g: Sequential(_bn(d, True, g), Sigmoid()), False),
}


@pytest.mark.parametrize("mode", ["train", "evaluate"])
@pytest.mark.parametrize("features", [1, 5])
@pytest.mark.parametrize("batch", [1, 2, 7])
@pytest.mark.parametrize("name", list(MODULES))
def test_jacobian_of_every_hand_written_module(name, batch, features, mode):
    gen = _gen(1000 * batch + 10 * features + (mode == "train"))
    make, table = MODULES[name]
    module = make(features, gen)
    module.training() if mode == "train" else module.evaluate()
    shape = (batch, features)
    x = [torch.zeros(shape, dtype=D64), torch.zeros(shape, dtype=D64)] if table else torch.zeros(shape, dtype=D64)
    assert jacobian.test_jacobian(module, x, generator=gen) < JACOBIAN_TOL
    params, grads = module.parameters()
    for p, dp in zip(params, grads):
        assert jacobian.test_jacobian_parameters(module, x, p, dp, generator=gen) < JACOBIAN_TOL


class _WrongSigmoid(Sigmoid):
    def updateGradInput(self, input, gradOutput):  # noqa: N802
        self.gradInput = gradOutput * self.output  # forgot (1 - output)
        return self.gradInput


class _WrongGradWeightBN(BatchNormalization):
    def accGradParameters(self, input, gradOutput, scale=1.0):  # noqa: N802
        super().accGradParameters(input, gradOutput, 2 * scale)


class _WrongTrainBN(BatchNormalization):
    def updateGradInput(self, input, gradOutput):  # noqa: N802
        self.gradInput = gradOutput * self.save_std * self.weight  # evaluate formula in training mode
        return self.gradInput


@pytest.mark.parametrize("make, param", [
    (lambda: _WrongSigmoid(), None),
    (lambda: _WrongGradWeightBN(3, generator=_gen(1)), "weight"),
    (lambda: _WrongTrainBN(3, generator=_gen(1)), None),
])
def test_jacobian_catches_a_wrong_backward(make, param):
    module = make()
    x = torch.zeros(4, 3, dtype=D64)
    if param is None:
        err = jacobian.test_jacobian(module, x, generator=_gen(2))
    else:
        err = jacobian.test_jacobian_parameters(module, x, module.weight, module.gradWeight, generator=_gen(2))
    assert err > 1e-2


def test_jacobian_matrices_have_lua_layout():
    module = Sigmoid()
    x = torch.tensor([[0.5, -1.0, 2.0]], dtype=D64)
    jf = jacobian.forward(module, x)
    jb = jacobian.backward(module, x)
    s = torch.sigmoid(x).reshape(-1)
    assert jf.shape == jb.shape == (3, 3)
    assert torch.allclose(jb, torch.diag(s * (1 - s)), atol=0, rtol=1e-15)
    assert torch.allclose(jf, jb, atol=1e-9)
    assert torch.equal(x, torch.tensor([[0.5, -1.0, 2.0]], dtype=D64))  # perturbations restored


# (module, inputs, gradOutput, expected gradInputs): ties keep the FIRST input, strictly.
TIE_CASES = [
    (CMinTable, [[1.0, 2.0, 3.0], [1.0, 1.0, 4.0]], [1.0, 2.0, 3.0], [[1.0, 0.0, 3.0], [0.0, 2.0, 0.0]]),
    (CMaxTable, [[1.0, 2.0, 3.0], [1.0, 1.0, 4.0]], [1.0, 2.0, 3.0], [[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]]),
    (CMinTable, [[2.0, 0.0], [1.0, 0.0], [1.0, -1.0]], [5.0, 7.0], [[0.0, 0.0], [5.0, 0.0], [0.0, 7.0]]),
    (CMaxTable, [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], [5.0, 7.0], [[5.0, 7.0], [0.0, 0.0], [0.0, 0.0]]),
]


@pytest.mark.parametrize("cls, inputs, go, expected", TIE_CASES)
def test_min_max_table_tie_rule(cls, inputs, go, expected):
    m = cls()
    xs = [torch.tensor(v, dtype=D64) for v in inputs]
    out = m.forward(xs)
    ref = torch.stack(xs).amin(0) if cls is CMinTable else torch.stack(xs).amax(0)
    assert torch.equal(out, ref)
    gi = m.backward(xs, torch.tensor(go, dtype=D64))
    assert [g.tolist() for g in gi] == expected


def test_containers_route_tables():
    x = [torch.tensor([0.3, -2.0], dtype=D64), torch.tensor([1.0, -2.0], dtype=D64)]
    par = ParallelTable(Sigmoid(), Sigmoid())
    out = par.forward(x)
    assert all(torch.allclose(o, torch.sigmoid(v), rtol=1e-15, atol=0) for o, v in zip(out, x))
    cat = ConcatTable(CMinTable(), CMaxTable())
    assert [o.tolist() for o in cat.forward(x)] == [[0.3, -2.0], [1.0, -2.0]]
    gi = cat.backward(x, [torch.tensor([1.0, 2.0], dtype=D64), torch.tensor([10.0, 20.0], dtype=D64)])
    # min: x1 wins element 0, tie (first) at element 1; max: x2 wins element 0, tie (first) at 1
    assert [g.tolist() for g in gi] == [[1.0, 22.0], [10.0, 0.0]]


def test_sequential_backward_accumulates_scaled_parameter_gradients():
    gen = _gen(3)
    bn = BatchNormalization(4, generator=gen)
    seq = Sequential(bn, Sigmoid())
    x = torch.randn(6, 4, dtype=D64, generator=gen)
    go = torch.randn(6, 4, dtype=D64, generator=gen)
    seq.forward(x)
    seq.zeroGradParameters()
    seq.backward(x, go)
    g1 = bn.gradWeight.clone()
    seq.backward(x, go, 0.5)
    assert torch.allclose(bn.gradWeight, 1.5 * g1, rtol=1e-14, atol=0)
    seq.zeroGradParameters()
    gi = seq.updateGradInput(x, go).clone()
    seq.accGradParameters(x, go)
    assert torch.allclose(bn.gradWeight, g1, rtol=1e-14, atol=0)
    assert torch.equal(gi, seq.gradInput)


def test_batchnorm_training_statistics_and_running_update():
    gen = _gen(4)
    bn = BatchNormalization(3, eps=1e-3, momentum=0.2, generator=gen)
    bn.bias.normal_(generator=gen)
    x = torch.randn(5, 3, dtype=D64, generator=gen) * 2 + 1
    y = bn.forward(x)
    mean, var_b, var_u = x.mean(0), x.var(0, unbiased=False), x.var(0, unbiased=True)
    assert torch.allclose(y, (x - mean) / torch.sqrt(var_b + 1e-3) * bn.weight + bn.bias, atol=1e-14)
    assert torch.allclose(bn.running_mean, 0.2 * mean, atol=1e-15)
    assert torch.allclose(bn.running_var, 0.2 * var_u + 0.8, atol=1e-15)
    assert torch.allclose(bn.save_std, 1 / torch.sqrt(var_b + 1e-3), atol=1e-15)
    ref = torch.nn.functional.batch_norm(x, torch.zeros(3, dtype=D64), torch.ones(3, dtype=D64), bn.weight,
                                         bn.bias, training=True, momentum=0.2, eps=1e-3)
    assert torch.allclose(y, ref, atol=1e-14)


def test_batchnorm_evaluate_uses_running_statistics_and_keeps_them():
    gen = _gen(5)
    bn = _bn(3, True, gen).evaluate()
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    x = torch.randn(4, 3, dtype=D64, generator=gen)
    y = bn.forward(x)
    assert torch.allclose(y, (x - rm) / torch.sqrt(rv + 1e-5) * bn.weight + bn.bias, atol=1e-14)
    assert torch.equal(bn.running_mean, rm) and torch.equal(bn.running_var, rv)


@pytest.mark.parametrize("shape", [(1, 4), (4,)])
def test_batchnorm_training_batch_of_one_takes_the_evaluate_path(shape):
    gen = _gen(6)
    bn = _bn(4, True, gen)
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    x = torch.randn(shape, dtype=D64, generator=gen)
    y = bn.training().forward(x)
    assert y.shape == x.shape
    assert not bn.uses_batch_statistics(x)
    assert torch.equal(bn.running_mean, rm) and torch.equal(bn.running_var, rv)
    expected = bn.evaluate().forward(x).clone()
    assert torch.equal(y, expected)
    with pytest.raises(ValueError):  # what PyTorch does instead
        torch.nn.functional.batch_norm(x.reshape(1, 4), rm, rv, training=True)


def test_batchnorm_without_affine_has_no_parameters():
    bn = BatchNormalization(2, affine=False)
    assert bn.parameters() == ([], [])
    x = torch.tensor([[1.0, 5.0], [3.0, 9.0]], dtype=D64)
    y = bn.forward(x)
    assert torch.allclose(y, torch.tensor([[-1.0, -2.0], [1.0, 2.0]], dtype=D64) / torch.sqrt(
        torch.tensor([1.0, 4.0], dtype=D64) + 1e-5), atol=1e-15)


@pytest.mark.parametrize("call, message", [
    (lambda: BatchNormalization(3).forward(torch.zeros(2, 4, dtype=D64)), "expects N x 3"),
    (lambda: BatchNormalization(3).forward(torch.zeros(2, 3, 1, dtype=D64)), "got shape (2, 3, 1)"),
    (lambda: BatchNormalization(0), "nOutput=0"),
    (lambda: CMinTable().forward(torch.zeros(3)), "expects a table"),
    (lambda: CAddTable().forward([torch.zeros(3), torch.zeros(2)]), "input[2] has shape (2,)"),
    (lambda: ParallelTable(Sigmoid()).forward([torch.zeros(1), torch.zeros(1)]), "1 modules"),
    (lambda: from_lua(LuaObject("nn.Sequential", {"modules": [LuaObject("nn.Linear", {})]})),
     "module.modules[1]: class nn.Linear"),
    (lambda: from_lua(3.0), "expected an nn module"),
])
def test_bad_input_raises_a2error(call, message):
    with pytest.raises(A2Error, match=None) as info:
        call()
    assert message in str(info.value)


def test_pre_version_2_batchnorm_file_loads_through_nns_upgrade(tmp_path):
    """A BN file written before nn's version 2 stores running_std (1/sqrt(var + eps)); part 1
    reads it as nn.from_t7 does (nn.BatchNormalization:read: running_var = std^-2 - eps)."""
    std = torch.tensor([0.5, 2.0, 0.25], dtype=D64)
    mean = torch.tensor([0.5, -1.0, 2.0], dtype=D64)
    weight, bias = torch.tensor([1.5, 0.5, 2.0], dtype=D64), torch.tensor([0.1, -0.2, 0.3], dtype=D64)
    t7.save(LuaObject("nn.BatchNormalization", {
        "eps": 1e-3, "momentum": 0.2, "affine": True, "train": False, "weight": weight, "bias": bias,
        "running_mean": mean, "running_std": std}, version=1), tmp_path / "bn_v1.t7")
    lua = t7.load(tmp_path / "bn_v1.t7")
    assert lua.version == 1 and "running_var" not in lua.fields
    bn, ref = from_lua(lua), lnn.from_t7(lua)
    assert isinstance(bn, BatchNormalization) and bn.train is False
    assert (bn.eps, bn.momentum, bn.affine) == (1e-3, 0.2, True)
    assert torch.equal(bn.running_var, ref.running_var)
    assert torch.equal(bn.running_var, std.pow(-2) - 1e-3) and torch.equal(bn.running_mean, mean)
    assert torch.equal(bn.weight, weight) and torch.equal(bn.bias, bias)
    x = torch.randn(4, 3, dtype=D64, generator=_gen(0))
    with torch.no_grad():
        expected = ref.eval()(x)
    assert torch.allclose(bn.forward(x), expected, rtol=0, atol=1e-14)
