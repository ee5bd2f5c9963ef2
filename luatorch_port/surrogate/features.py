"""Exemplar-CNN features of labelled images and their linear classifier.

Port of the evaluation of Dosovitskiy et al. 2014 (section 4.1): "features were computed
by applying the network convolutionally to the images ... and then 4-quadrant max-pooling
the responses of each layer" (every convolutional layer and the fully connected one),
concatenated, then a linear SVM. The net trained on 32x32 patches runs on the whole 96x96
image: convolution and pooling layers as they are, the hidden fully connected layer as
the convolution it is (its weights reshaped to ``C x k x k``, ``k`` the side of the last
pooled map at training size). Responses are taken after each ReLU.

For 64c5-128c5-256c5-512f on 96x96 input: 4 x (64 + 128 + 256 + 512) = 3840 features. The
classifier is the one-vs-all L2-SVM of the k-means part (``kmeans.svm.L2SVM``) on
standardised features (:func:`.run.run_eval`). :func:`untrained_copy` gives the control: the
same net with fresh random weights.

Deviations: only the first fully connected layer is used (the paper's nets have one);
quadrants of odd-sized maps share their middle row/column (``adaptive_max_pool2d``).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..util.errors import A2Error
from ..util.progress import Counter, Progress

QUADRANTS = 2  # 2 x 2 = 4 quadrants per feature map


class ConvolutionalFeatures(nn.Module):
    """The trained net's layers up to its first Linear, run convolutionally; returns the
    4-quadrant max of every post-ReLU response, concatenated (N, 4 * sum(channels))."""

    def __init__(self, model: nn.Module):
        super().__init__()
        children = list(model.children())
        self.stages = nn.ModuleList()
        self.taps = []         # index in stages after which to record a response
        self.fc = None
        last_channels, last_conv = None, False
        for i, m in enumerate(children):
            if isinstance(m, nn.Linear):
                if last_channels is None:
                    raise A2Error("model has a Linear layer before any convolution: not an "
                                  "Exemplar-CNN spec model")
                side = math.isqrt(m.in_features // last_channels)
                if side * side * last_channels != m.in_features:
                    raise A2Error(f"Linear({m.in_features} -> {m.out_features}) does not fit a "
                                  f"{last_channels}-channel square map")
                self.fc = (m.weight.detach().view(m.out_features, last_channels, side, side),
                           m.bias.detach() if m.bias is not None else None)
                self.fc_relu = any(isinstance(c, nn.ReLU) for c in children[i + 1:i + 2])
                break
            if type(m).__name__ == "View" or isinstance(m, nn.Flatten):
                continue
            self.stages.append(m)
            if isinstance(m, nn.Conv2d):
                last_channels, last_conv = m.out_channels, True
            elif isinstance(m, nn.ReLU) and last_conv:
                self.taps.append(len(self.stages) - 1)
                last_conv = False
        if not self.taps:
            raise A2Error("model has no convolution followed by ReLU: not an Exemplar-CNN")
        self.channels = []
        for m in self.stages:
            if isinstance(m, nn.Conv2d):
                self.channels.append(m.out_channels)
        if self.fc is not None:
            self.channels.append(self.fc[0].shape[0])

    @property
    def n_features(self) -> int:
        return QUADRANTS * QUADRANTS * sum(self.channels)

    def forward(self, x):
        feats = []
        for i, m in enumerate(self.stages):
            x = m(x)
            if i in self.taps:
                feats.append(F.adaptive_max_pool2d(x, QUADRANTS).flatten(1))
        if self.fc is not None:
            weight, bias = self.fc
            if x.shape[-1] < weight.shape[-1] or x.shape[-2] < weight.shape[-2]:
                raise A2Error(f"input too small: the last pooled map is {tuple(x.shape[-2:])}, "
                              f"the fully connected layer needs {tuple(weight.shape[-2:])}")
            y = F.conv2d(x, weight.to(x), None if bias is None else bias.to(x))
            if self.fc_relu:
                y = F.relu(y)
            feats.append(F.adaptive_max_pool2d(y, QUADRANTS).flatten(1))
        return torch.cat(feats, dim=1)


@torch.no_grad()
def exemplar_features(model: nn.Module, inputs: torch.Tensor, *, batch_size: int = 50,
                      device=None, progress: Optional[Progress] = None, stage: str = "features") -> torch.Tensor:
    """4-quadrant max-pooled responses of every layer for normalised images.

    Parameters
    ----------
    model : a trained spec model (``nn.build_model("64c5-...")`` layout)
    inputs : float (N, 3, H, W), normalised as in training (any H, W >= training size)
    batch_size : images per forward pass
    progress : :class:`~luatorch_port.util.progress.Progress` of the images done (stage ``stage``)

    Returns
    -------
    float32 (N, n_features) on the CPU.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    extractor = ConvolutionalFeatures(model).to(device).eval()
    out = torch.empty(len(inputs), extractor.n_features)
    tick = Counter(progress, len(inputs), stage, unit="img")
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start:start + batch_size].to(device)
        out[start:start + len(batch)] = extractor(batch).float().cpu()
        tick(len(batch))
    return out


def untrained_copy(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """A copy of ``model`` with fresh random weights: Lua's ``model:reset()`` on every layer
    that has parameters, drawn from ``generator`` (the random-init control).

    Raises A2Error when a layer with parameters has no Lua ``reset``.
    """
    import copy

    fresh = copy.deepcopy(model)
    for m in fresh.modules():
        if not any(True for _ in m.parameters(recurse=False)):
            continue
        if not hasattr(m, "reset"):
            raise A2Error(f"cannot re-initialise layer {type(m).__name__}: it has no Lua reset()")
        m.reset(generator=generator)
    return fresh
