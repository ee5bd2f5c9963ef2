"""luatorch_port.train.optim.SGD against optim.sgd trajectories written by Torch7 (optim_sgd.t7)."""

from __future__ import annotations

import pytest
import torch

from luatorch_port import t7
from luatorch_port.util.errors import A2Error
from luatorch_port.train.optim import SGD

@pytest.fixture
def sgd_oracle(oracle):
    return t7.load(oracle("made", "optim_sgd.t7"))

@pytest.mark.parametrize("run", ["a", "b", "c", "d", "e", "f"])
def test_trajectory_matches_optim_sgd(sgd_oracle, run):
    data = sgd_oracle
    A, b = data["A"], data["b"]
    spec = data["runs"][run]
    x = data["x0"].clone().requires_grad_(True)
    opt = SGD([x], **spec["config"])

    def closure():
        opt.zero_grad()
        f = 0.5 * ((A @ x - b) ** 2).sum()
        f.backward()
        return f

    for k in range(int(data["nsteps"])):
        g_before = (A.t() @ (A @ x.detach() - b))
        torch.testing.assert_close(g_before, spec["grad"][k], rtol=0, atol=1e-10)
        f = opt.step(closure)
        assert abs(f.item() - spec["f"][k].item()) <= 1e-10
        torch.testing.assert_close(x.detach(), spec["x"][k], rtol=0, atol=1e-10)
    assert opt.param_groups[0]["evalCounter"] == spec["state_after"]["evalCounter"]
    if "dfdx" in spec["state_after"]:
        torch.testing.assert_close(opt.state[x]["dfdx"], spec["state_after"]["dfdx"], rtol=0, atol=1e-10)
    else:
        assert "dfdx" not in opt.state[x]

def test_dampening_defaults_to_momentum():
    opt = SGD([torch.zeros(1, requires_grad=True)], learningRate=1, momentum=0.9)
    assert opt.param_groups[0]["dampening"] == 0.9

def test_first_momentum_step_is_undamped():
    x = torch.zeros(1, requires_grad=True)
    opt = SGD([x], learningRate=1.0, momentum=0.5)
    x.grad = torch.ones(1)
    opt.step()
    assert x.item() == -1.0  # v = g, not (1 - 0.5) g
    x.grad = torch.ones(1)
    opt.step()
    assert x.item() == -1.0 - (0.5 * 1 + 0.5 * 1)

@pytest.mark.parametrize("kwargs", [dict(learningRate=-1), dict(momentum=0.9, nesterov=True),
                                    dict(nesterov=True, dampening=0)])
def test_bad_settings_raise(kwargs):
    with pytest.raises(A2Error):
        SGD([torch.zeros(1, requires_grad=True)], **kwargs)
