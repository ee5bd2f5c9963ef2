"""The course's models: the starter's ``sample`` and ``vgg_bn_drop``, and ``build_model``.

Port of models/sample.lua of the TA's starter (jakezhaojb/ds-ga-1008-a2), whose structure
the oracle's ``models/course_sample_model_width_div8.t7`` and ``full_size_specs.t7`` record
(every max-pooling ``:ceil()``, nested classifier, MSR init of the convolutions), and of
models/vgg_bn_drop.lua (szagoruyko/cifar.torch, as the course copies it for 96x96 input).

Deviations: the classifier's input size is computed from ``input_size`` (the Lua files
hard-code 96x96: ``View(256*2*2)``, ``View(512*3*3)``). The View gets
``setNumInputDims(3)`` so that a batch of one image stays a batch (Lua's plain View turns
1x256x2x2 into a 1-D tensor, which the BatchNormalization after it rejects); it prints the
same. ``sample`` takes a ``width_div`` to build the oracle's narrow copy.
"""

from __future__ import annotations

import math

import torch

from ..util.errors import A2Error
from .containers import Sequential
from .layers import (BatchNormalization, Dropout, Linear, ReLU, SpatialBatchNormalization,
                     SpatialConvolution, SpatialMaxPooling, View)
from .spec import build_spec_model, is_spec, parse_spec

# The starter's ConvBNReLU: 3x3 convolution, pad 1, SpatialBatchNormalization(n, 1e-3).
CONV_BN_EPS = 1e-3
# models/sample.lua: (width, pooling after it) per ConvBNReLU block.
SAMPLE_BLOCKS = [(64, 4), (128, 3), (256, None), (256, 2), (256, None), (256, None), (256, 2)]
SAMPLE_HIDDEN = 256
# models/vgg_bn_drop.lua: (width, dropout after the block or None, pooling after it).
VGG_BLOCKS = [(64, 0.3, False), (64, None, True),
              (128, 0.4, False), (128, None, True),
              (256, 0.4, False), (256, 0.4, False), (256, None, True),
              (512, 0.4, False), (512, 0.4, False), (512, None, True),
              (512, 0.4, False), (512, 0.4, False), (512, None, True)]
VGG_HIDDEN = 512
CLASSIFIER_DROPOUT = 0.5

ZOO = ("sample", "vgg_bn_drop")


def _conv_bn_relu(model, nin, nout, generator):
    model.add(SpatialConvolution(nin, nout, 3, 3, 1, 1, 1, 1, generator=generator))
    model.add(SpatialBatchNormalization(nout, CONV_BN_EPS, generator=generator))
    model.add(ReLU(True))


def msr_init(model, generator=None):
    """The starter's MSRinit: every SpatialConvolution weight ~ N(0, sqrt(2/(kW*kH*nOutputPlane))), bias 0."""
    for m in model.modules():
        if isinstance(m, SpatialConvolution):
            n = m.kW * m.kH * m.nOutputPlane
            with torch.no_grad():
                m.weight.normal_(0, math.sqrt(2 / n), generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
    return model


def _classifier(nfeat, hidden, n_classes, generator):
    c = Sequential()
    c.add(Dropout(CLASSIFIER_DROPOUT))
    c.add(Linear(nfeat, hidden, generator=generator))
    c.add(BatchNormalization(hidden, generator=generator))
    c.add(ReLU(True))
    c.add(Dropout(CLASSIFIER_DROPOUT))
    c.add(Linear(hidden, n_classes, generator=generator))
    return c


def sample(n_classes=10, input_size=96, *, width_div=1, generator=None) -> Sequential:
    """The starter's models/sample.lua for ``3 x input_size x input_size`` input (no LogSoftMax:
    the starter trains it with CrossEntropyCriterion)."""
    model, cin, hw = Sequential(), 3, input_size
    for width, pool in SAMPLE_BLOCKS:
        w = width // width_div
        _conv_bn_relu(model, cin, w, generator)
        cin = w
        if pool:
            model.add(SpatialMaxPooling(pool, pool, pool, pool).ceil())
            hw = math.ceil(hw / pool)
    model.add(View(cin * hw * hw).setNumInputDims(3))
    model.add(_classifier(cin * hw * hw, SAMPLE_HIDDEN // width_div, n_classes, generator))
    return msr_init(model, generator)


def vgg_bn_drop(n_classes=10, input_size=96, *, generator=None) -> Sequential:
    """models/vgg_bn_drop.lua (Zagoruyko's cifar.torch VGG with BN and dropout) for
    ``3 x input_size x input_size`` input; 96 gives ``View(512*3*3)`` as in the course copy."""
    model, cin, hw = Sequential(), 3, input_size
    for width, drop, pool in VGG_BLOCKS:
        _conv_bn_relu(model, cin, width, generator)
        cin = width
        if drop:
            model.add(Dropout(drop))
        if pool:
            model.add(SpatialMaxPooling(2, 2, 2, 2).ceil())
            hw = math.ceil(hw / 2)
    model.add(View(cin * hw * hw).setNumInputDims(3))
    model.add(_classifier(cin * hw * hw, VGG_HIDDEN, n_classes, generator))
    return msr_init(model, generator)


def build_model(name: str, n_classes: int = 10, input_size: int = 96, *,
                generator: torch.Generator | None = None) -> Sequential:
    """A fresh model by name: ``"sample"``, ``"vgg_bn_drop"`` or a spec (``"64c5-128c5-256c5-512f"``).

    Parameters
    ----------
    name : str
        Zoo name or Exemplar spec (see :mod:`luatorch_port.nn.spec`).
    n_classes : int
        Outputs of the last Linear (10 for STL-10; 4000 surrogate classes, say).
    input_size : int
        Height = width of the 3-channel input (96 for STL-10, 32 for surrogate patches).
    generator : torch.Generator, optional
        Source of the initial weights.
    """
    if n_classes < 1 or input_size < 1:
        raise A2Error(f"model {name!r}: n_classes={n_classes} and input_size={input_size} must be >= 1")
    if name == "sample":
        return sample(n_classes, input_size, generator=generator)
    if name == "vgg_bn_drop":
        return vgg_bn_drop(n_classes, input_size, generator=generator)
    if is_spec(name):
        return build_spec_model(name, n_classes, input_size, generator=generator)
    if isinstance(name, str) and any(c.isdigit() for c in name):
        parse_spec(name)  # meant as a spec: its own error names the bad token
    raise A2Error(f"unknown model {name!r}: expected one of {', '.join(ZOO)} or a spec like "
                  f"64c5-128c5-256c5-512f")
