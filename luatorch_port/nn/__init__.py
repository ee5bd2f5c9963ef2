"""Lua nn parity: Lua-named layers, model specs and zoo, t7 models both ways.

Port of the parts of torch/nn (nn 8726825) the course uses. Layers take Lua's argument
order and defaults and print like Lua (``str(model)``); :func:`from_t7` / :func:`to_t7`
move models between Lua Torch files and PyTorch; :func:`build_model` builds ``sample``,
``vgg_bn_drop`` or an Exemplar spec such as ``"64c5-128c5-256c5-512f"``.
"""

from .containers import (CAddTable, CMaxTable, CMinTable, Concat, ConcatTable, JoinTable,
                         ParallelTable, Sequential)
from .convert import from_t7, to_t7
from .criteria import ClassNLLCriterion, CrossEntropyCriterion, MSECriterion
from .io import load_model, save_model
from .layers import (BatchNormalization, Dropout, Identity, Linear, LogSoftMax, LuaModule, ReLU,
                     Reshape, Sigmoid, SoftMax, SpatialAveragePooling, SpatialBatchNormalization,
                     SpatialConvolution, SpatialConvolutionMM, SpatialMaxPooling,
                     SpatialZeroPadding, Tanh, View)
from .normalization import SpatialContrastiveNormalization
from .spec import build_spec_model, parse_spec
from .zoo import build_model, msr_init

__all__ = [
    "build_model", "build_spec_model", "parse_spec", "msr_init", "from_t7", "to_t7",
    "load_model", "save_model", "LuaModule",
    "SpatialConvolution", "SpatialConvolutionMM", "SpatialMaxPooling", "SpatialAveragePooling",
    "SpatialBatchNormalization", "BatchNormalization", "Linear", "ReLU", "Sigmoid", "Tanh",
    "Dropout", "View", "Reshape", "LogSoftMax", "SoftMax", "Identity", "SpatialZeroPadding",
    "SpatialContrastiveNormalization", "ClassNLLCriterion", "CrossEntropyCriterion",
    "MSECriterion", "Sequential", "Concat", "ConcatTable", "ParallelTable", "CAddTable",
    "CMinTable", "CMaxTable", "JoinTable",
]
