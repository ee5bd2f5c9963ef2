"""The report's network names: ``"64c5-128c5-256c5-512f"``, ``"64c5-64c5-128f"``, ``"64c-64c-128f"``.

Port of the Exemplar-CNN naming of Dosovitskiy et al. (2014) as the report and the oracle's
``make_models.lua`` build it: each ``N c k`` is ``SpatialConvolution(cin, N, k, k, 1, 1,
k//2, k//2)`` + ``ReLU`` + ``SpatialMaxPooling(2, 2, 2, 2)`` (k defaults to 5); each
``N f`` is ``Linear`` + ``ReLU`` + ``Dropout(0.5)``; then ``View``, and the classifier
``Linear(last, n_classes)`` + ``LogSoftMax``. Parameters get Lua's default ``reset()``.

Deviations: the ``View`` has ``setNumInputDims(3)`` so a batch of one stays a batch (it
prints the same as the oracle's plain ``View``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from ..util.errors import A2Error
from .containers import Sequential
from .layers import Dropout, Linear, LogSoftMax, ReLU, SpatialConvolution, SpatialMaxPooling, View

# Exemplar-CNN defaults (Dosovitskiy et al. 2014, section 4; make_models.lua).
DEFAULT_CONV_KERNEL = 5
POOL_SIZE = 2
# Widest layer a spec may ask for (the report's widest is 512): beyond it one layer's weights
# run to gigabytes, and 99999999c5 would ask the allocator for 30 GB.
MAX_WIDTH = 8192
MAX_KERNEL = 31  # a 31x31 kernel already covers a 32x32 patch
FC_DROPOUT = 0.5

_CONV = re.compile(r"^(\d+)c(\d*)$")
_FC = re.compile(r"^(\d+)f$")


@dataclass(frozen=True)
class Layer:
    kind: str  # "conv" or "fc"
    width: int
    kernel: int = 0


def parse_spec(spec: str) -> list[Layer]:
    """``"64c5-128c5-512f"`` -> ``[Layer("conv", 64, 5), Layer("conv", 128, 5), Layer("fc", 512)]``.

    Raises A2Error naming the bad token; convolutions must come before fully connected
    layers, widths must be positive and kernels odd.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise A2Error(f"model spec {spec!r}: expected tokens like 64c5-128c5-512f")
    layers, seen_fc = [], False
    for tok in spec.strip().split("-"):
        m = _CONV.match(tok)
        if m:
            if seen_fc:
                raise A2Error(f"model spec {spec!r}: convolution {tok!r} after a fully connected layer")
            k = int(m.group(2)) if m.group(2) else DEFAULT_CONV_KERNEL
            if int(m.group(1)) < 1 or k < 1 or k % 2 == 0:
                raise A2Error(f"model spec {spec!r}: {tok!r} needs a positive width and an odd kernel")
            if int(m.group(1)) > MAX_WIDTH or k > MAX_KERNEL:
                raise A2Error(f"model spec {spec!r}: {tok!r} is too big (width at most "
                              f"{MAX_WIDTH}, kernel at most {MAX_KERNEL})")
            layers.append(Layer("conv", int(m.group(1)), k))
            continue
        m = _FC.match(tok)
        if m and int(m.group(1)) > MAX_WIDTH:
            raise A2Error(f"model spec {spec!r}: {tok!r} is too wide (at most {MAX_WIDTH})")
        if m and int(m.group(1)) > 0:
            seen_fc = True
            layers.append(Layer("fc", int(m.group(1))))
            continue
        raise A2Error(f"model spec {spec!r}: bad token {tok!r} (expected Nc, NcK or Nf, e.g. 64c5, 512f)")
    return layers


def is_spec(name: str) -> bool:
    """Whether ``name`` parses as a spec (rather than a zoo name)."""
    try:
        parse_spec(name)
    except A2Error:
        return False
    return True


def build_spec_model(spec: str, n_classes: int = 10, input_size: int = 32, in_channels: int = 3,
                     *, generator: torch.Generator | None = None) -> Sequential:
    """The network a spec names, for ``in_channels x input_size x input_size`` input.

    Returns an ``nn.Sequential`` of Lua-named layers ending in ``LogSoftMax`` over
    ``n_classes``. Raises A2Error when the pooling leaves no pixels.
    """
    layers = parse_spec(spec)
    if n_classes < 1 or input_size < 1:
        raise A2Error(f"model spec {spec!r}: n_classes={n_classes} and input_size={input_size} must be >= 1")
    model = Sequential()
    cin, hw = in_channels, input_size
    for layer in layers:
        if layer.kind != "conv":
            break
        pad = layer.kernel // 2
        model.add(SpatialConvolution(cin, layer.width, layer.kernel, layer.kernel, 1, 1, pad, pad,
                                     generator=generator))
        model.add(ReLU())
        model.add(SpatialMaxPooling(POOL_SIZE, POOL_SIZE, POOL_SIZE, POOL_SIZE))
        cin, hw = layer.width, hw // POOL_SIZE
        if hw < 1:
            raise A2Error(f"model spec {spec!r}: input_size={input_size} is too small for "
                          f"{sum(1 for x in layers if x.kind == 'conv')} 2x2 poolings")
    nfeat = cin * hw * hw
    model.add(View(nfeat).setNumInputDims(3))
    for layer in layers:
        if layer.kind == "fc":
            model.add(Linear(nfeat, layer.width, generator=generator))
            model.add(ReLU())
            model.add(Dropout(FC_DROPOUT))
            nfeat = layer.width
    model.add(Linear(nfeat, n_classes, generator=generator))
    model.add(LogSoftMax())
    return model
