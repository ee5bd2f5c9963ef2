"""Port of optim.sgd (torch/optim sgd.lua, optim a5ceed7) as a ``torch.optim.Optimizer``.

Each step, for every parameter x with gradient g (k = number of earlier steps):

1. g = g + weightDecay * x
2. with momentum m != 0: v = g on the first step, else v = m * v + (1 - dampening) * g;
   then g = g + m * v (nesterov) or g = v
3. x = x - learningRate / (1 + k * learningRateDecay) * g

``dampening`` defaults to ``momentum`` (so the starter's lr 1, momentum 0.9 is sane), and
the first momentum step uses the undamped gradient. Lua's option names are used.

Deviations: Lua mutates the gradient in place (``dfdx:add(wd, x)``); this leaves ``.grad``
untouched. ``learningRates``/``weightDecays`` (per-element tensors) are not supported.
"""

from __future__ import annotations

import torch

from ..util.errors import A2Error

# optim.sgd's default learning rate (sgd.lua: ``config.learningRate or 1e-3``).
DEFAULT_LEARNING_RATE = 1e-3


class SGD(torch.optim.Optimizer):
    """``SGD(params, learningRate=1e-3, learningRateDecay=0, weightDecay=0, momentum=0, dampening=None, nesterov=False)``.

    ``dampening=None`` means "equal to momentum", as in Lua. ``step(closure)`` returns the
    closure's loss (optim.sgd returns ``{fx}``). ``evalCounter`` (steps taken) lives in
    each param group, so it is saved with ``state_dict()``; the momentum buffer is
    ``state[p]["dfdx"]``.
    """

    def __init__(self, params, learningRate=DEFAULT_LEARNING_RATE, learningRateDecay=0.0,
                 weightDecay=0.0, momentum=0.0, dampening=None, nesterov=False):
        if learningRate < 0 or learningRateDecay < 0 or weightDecay < 0 or momentum < 0:
            raise A2Error(f"optim.sgd: learningRate={learningRate}, learningRateDecay="
                          f"{learningRateDecay}, weightDecay={weightDecay}, momentum={momentum} "
                          f"must be >= 0")
        damp = momentum if dampening is None else dampening
        if nesterov and (momentum <= 0 or damp != 0):
            raise A2Error(f"optim.sgd: nesterov needs momentum > 0 and dampening 0 "
                          f"(got momentum={momentum}, dampening={damp})")
        defaults = dict(learningRate=float(learningRate), learningRateDecay=float(learningRateDecay),
                        weightDecay=float(weightDecay), momentum=float(momentum),
                        dampening=float(damp), nesterov=bool(nesterov), evalCounter=0)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            wd, mom, damp = group["weightDecay"], group["momentum"], group["dampening"]
            clr = group["learningRate"] / (1 + group["evalCounter"] * group["learningRateDecay"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if wd != 0:
                    g = g.add(p, alpha=wd)
                if mom != 0:
                    state = self.state[p]
                    if "dfdx" not in state:
                        state["dfdx"] = g.clone()
                    else:
                        state["dfdx"].mul_(mom).add_(g, alpha=1 - damp)
                    g = g.add(state["dfdx"], alpha=mom) if group["nesterov"] else state["dfdx"]
                p.add_(g, alpha=-clr)
            group["evalCounter"] += 1
        return loss
