"""Part 1 against Torch7: dag_backprop.t7, batchnorm_part12.t7 and the nn_modules BN/Sigmoid files."""

from __future__ import annotations

import pytest
import torch

from luatorch_port import t7
from luatorch_port.backprop import batchnorm as bnlib
from luatorch_port.backprop import dag as daglib
from luatorch_port.backprop.modules import BatchNormalization, Sequential, Sigmoid, from_lua

TOL = 1e-10  # the acceptance bound for double


@pytest.fixture
def dag_record(oracle):
    return t7.load(oracle("made", "dag_backprop.t7"))


@pytest.fixture
def bn_record(oracle):
    return t7.load(oracle("made", "batchnorm_part12.t7"))


def _max_abs(a, b):
    return float((a - b).abs().max())


@pytest.mark.parametrize("source", ["built", "from_lua"])
def test_dag_reproduces_torch(dag_record, source):
    net = daglib.build_dag() if source == "built" else from_lua(dag_record["module"])
    assert repr(net) == repr(daglib.build_dag())
    r = dag_record
    y, dx1, dx2, s1, s2 = daglib.hand_backward(r["x1"], r["x2"], r["gradOutput"], net)
    for got, key in [(y, "y"), (dx1, "dx1"), (dx2, "dx2"), (s1, "s1"), (s2, "s2")]:
        assert _max_abs(got, r[key]) < TOL, key
    assert _max_abs(net.modules[1].output[0], r["a"]) < TOL
    assert _max_abs(net.modules[1].output[1], r["b"]) < TOL


def test_dag_ties_follow_torch_and_keep_the_sum(dag_record):
    r = dag_record
    tie = r["s1"] == r["s2"]
    assert tie.tolist() == [False] * 5 + [True] * 3 + [False] * 7
    result = daglib.dag_table(r["x1"], r["x2"], r["gradOutput"])
    go, s = r["gradOutput"][tie], r["s1"][tie]
    rows = [row for row in result["rows"] if row["tie"]]
    assert [row["dx2"]["hand"] for row in rows] == [0.0] * 3
    assert torch.allclose(torch.tensor([row["dx1"]["hand"] for row in rows], dtype=torch.float64),
                          2 * go * s * (1 - s), rtol=1e-15, atol=0)
    for row in rows:  # autograd splits the tie; each input then gets the closed form
        assert row["dx1"]["autograd"] == pytest.approx(row["dx1"]["closed_form"], rel=1e-14)
        assert row["sum"]["hand"] == pytest.approx(row["sum"]["autograd"], rel=1e-14)
    assert result["max_error_per_input_at_ties"] > 0.1


def test_dag_table_against_the_file(dag_record):
    case = daglib.load_case(dag_record, "dag_backprop.t7")
    result = daglib.dag_table(case["x1"], case["x2"], case["grad_output"], expected=case["expected"])
    assert result["n_ties"] == 3
    assert result["max_error"]["oracle"] < TOL
    assert result["max_error"]["closed_form"] < 1e-14
    assert result["max_error"]["autograd"] < 1e-14
    assert result["max_error"]["finite_diff"] < 1e-8
    assert [row["torch7"]["dx1"] for row in result["rows"]] == dag_record["dx1"].tolist()


@pytest.mark.parametrize("key", [None, "batch1"])
def test_batchnorm_part12_reproduced(bn_record, key):
    case = bnlib.load_case(bn_record, key)
    result = bnlib.batchnorm_check(case, ("train",))
    assert result["max_error"]["oracle"] < TOL
    assert result["max_error"]["autograd"] < 1e-12
    assert result["max_error"]["finite_diff"] < 1e-7
    assert result["max_error"]["jacobian"] < 1e-6
    checked = {c["quantity"] for c in result["modes"][0]["checks"] if c["oracle"] is not None}
    assert checked == set(bnlib.QUANTITIES)
    expect_batch = key is None
    assert (result["modes"][0]["statistics"] == "batch") is expect_batch


def test_batchnorm_part12_saved_statistics(bn_record):
    r = bn_record
    bn = from_lua(r["module"])
    bn.running_mean, bn.running_var = r["running_mean_before"].clone(), r["running_var_before"].clone()
    bn.forward(r["input"])
    assert _max_abs(bn.save_mean, r["save_mean"]) < TOL
    assert _max_abs(bn.save_std, r["save_std"]) < TOL  # THNN keeps 1/sqrt(var + eps) here


def test_batchnorm_batch_of_one_is_torchs_evaluate_path(bn_record):
    c = bn_record["batch1"]
    x, w, b = c["input"], c["weight"], c["bias"]
    assert torch.equal(c["running_mean"], c["running_mean_before"])
    assert torch.equal(c["running_var"], c["running_var_before"])
    expected = (x - c["running_mean_before"]) / torch.sqrt(c["running_var_before"] + c["eps"]) * w + b
    assert _max_abs(c["output"], expected) < 1e-14
    bn = from_lua(c["module"])
    assert bn.train is True
    bn.running_mean, bn.running_var = c["running_mean_before"].clone(), c["running_var_before"].clone()
    assert _max_abs(bn.forward(x), c["output"]) < TOL


@pytest.mark.parametrize("name", ["BatchNormalization_6_eps1e-3_train", "BatchNormalization_6_eps1e-3_evaluate",
                                  "Sigmoid"])
def test_nn_modules_files(oracle, name):
    r = t7.load(oracle("made", "nn_modules", f"{name}.t7"))
    m = from_lua(r["module"])
    assert m.train is r["train"]
    if isinstance(m, BatchNormalization):
        assert m.eps == 1e-3
        m.running_mean, m.running_var = r["running_mean_before"].clone(), r["running_var_before"].clone()
    m.forward(r["input"])
    m.zeroGradParameters()
    m.backward(r["input"], r["gradOutput"])
    pairs = [(m.output, "output"), (m.gradInput, "gradInput")]
    if isinstance(m, BatchNormalization):
        pairs += [(m.gradWeight, "gradWeight"), (m.gradBias, "gradBias"), (m.running_mean, "running_mean"),
                  (m.running_var, "running_var")]
    for got, key in pairs:
        assert _max_abs(got, r[key]) < TOL, key


def test_from_lua_reads_a_container_with_bn(bn_record):
    seq = from_lua(t7.LuaObject("nn.Sequential", {"modules": [bn_record["module"], t7.LuaObject("nn.Sigmoid", {})]}))
    assert isinstance(seq, Sequential) and isinstance(seq.modules[1], Sigmoid)
    assert torch.equal(seq.modules[0].weight, bn_record["weight"])
