"""Models on disk: Lua-loadable ``.t7`` or PyTorch ``.pt`` (``weights_only`` loadable).

A ``.t7`` model is what Lua's ``torch.save(path, model)`` writes: an ``nn.Sequential`` of
Lua nn objects (:func:`~luatorch_port.nn.convert.to_t7`). A ``.pt`` model is a dict of
plain values, ``{"format", "version", "structure", "state_dict", "spec"}``, where
``structure`` is the nested list of Lua class names and constructor arguments that
rebuilds the module tree, so ``torch.load(path, weights_only=True)`` reads it.
"""

from __future__ import annotations

import os
import pickle

import torch
from torch import nn

from .. import t7
from ..util.errors import A2Error
from ..util.files import atomic_output
from . import containers as C
from . import criteria as K
from . import layers as L
from .convert import from_t7, to_t7
from .normalization import SpatialContrastiveNormalization

PT_FORMAT = "luatorch_port.nn"
PT_VERSION = 1
T7_SUFFIXES = (".t7", ".net", ".t7b")
PT_SUFFIXES = (".pt", ".pth")


def _registry():
    classes = [L.SpatialConvolution, L.SpatialConvolutionMM, L.SpatialMaxPooling,
               L.SpatialAveragePooling, L.SpatialBatchNormalization, L.BatchNormalization, L.Linear,
               L.ReLU, L.Sigmoid, L.Tanh, L.Dropout, L.LogSoftMax, L.SoftMax, L.Identity, L.View,
               L.Reshape, L.SpatialZeroPadding, SpatialContrastiveNormalization, C.Sequential,
               C.Concat, C.ConcatTable, C.ParallelTable, C.CAddTable, C.CMinTable, C.CMaxTable,
               C.JoinTable, K.ClassNLLCriterion, K.CrossEntropyCriterion, K.MSECriterion]
    return {cls.lua_class: cls for cls in classes}


CLASSES = _registry()
_CONTAINERS = (C.Sequential, C._Branching)


def structure(module: nn.Module, path: str = "") -> dict:
    """The plain-value description of a module tree (class, constructor args, train flag)."""
    if not isinstance(module, L.LuaModule):
        raise A2Error(f"{path or '(root)'}: {type(module).__name__} is not a Lua-named layer")
    args, kwargs = module.lua_args()
    node = {"class": module.lua_class, "args": list(args), "kwargs": dict(kwargs),
            "train": bool(module.training)}
    if isinstance(module, _CONTAINERS):
        node["modules"] = [structure(m, f"{path}.modules[{i}]" if path else f"modules[{i}]")
                           for i, m in enumerate(module, 1)]
    return node


def from_structure(node: dict, path: str = "") -> nn.Module:
    """Inverse of :func:`structure` (parameters freshly initialised)."""
    where = path or "(root)"
    try:
        cls = CLASSES[node["class"]]
        module = cls(*node.get("args", []), **node.get("kwargs", {}))
    except KeyError as err:
        raise A2Error(f"{where}: bad model structure entry ({err} missing or unknown)") from None
    except TypeError as err:
        raise A2Error(f"{where}: cannot build {node.get('class')}: {err}") from None
    for i, child in enumerate(node.get("modules", []), 1):
        module.add(from_structure(child, f"{path}.modules[{i}]" if path else f"modules[{i}]"))
    module.training = bool(node.get("train", True))
    return module


def _kind(path) -> str:
    name = os.fspath(path).lower()
    if name.endswith(PT_SUFFIXES):
        return "pt"
    if name.endswith(T7_SUFFIXES):
        return "t7"
    raise A2Error(f"{os.fspath(path)}: model files end in .t7/.net (Lua) or .pt/.pth (PyTorch)")


def save_model(model: nn.Module, path, *, spec: str | None = None) -> None:
    """Write ``model`` atomically: Lua-loadable t7 for ``.t7``/``.net``, a state dict + structure for ``.pt``."""
    if _kind(path) == "t7":
        t7.save(to_t7(model), path)
        return
    payload = {"format": PT_FORMAT, "version": PT_VERSION, "structure": structure(model),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "spec": spec}
    with atomic_output(path, "wb") as f:
        torch.save(payload, f)


def load_model(path) -> nn.Module:
    """Read a model written by :func:`save_model` or by Lua's ``torch.save`` (any supported nn tree).

    Returns the module in the mode stored (Lua's ``train`` flag, or the ``.pt`` record's).
    Raises A2Error for a file that is not a model or holds an unsupported Lua class.
    """
    path = os.fspath(path)
    if _kind(path) == "t7":
        obj = t7.load(path)
        if isinstance(obj, dict) and "model" in obj:  # {model = m, ...} as the oracle files hold
            obj = obj["model"]
        try:
            return from_t7(obj)
        except A2Error as err:
            raise A2Error(f"{path}: {err}") from None
        except RecursionError:
            raise A2Error(f"{path}: the model nests too deep to convert") from None
    payload = _load_pt(path)
    if not isinstance(payload, dict) or payload.get("format") != PT_FORMAT:
        raise A2Error(f"{path}: not a luatorch_port model (expected a dict with format={PT_FORMAT!r})")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise A2Error(f"{path}: state_dict should be a dict of tensors")
    if not isinstance(payload.get("structure"), dict):
        raise A2Error(f"{path}: structure should be a dict (class, args, kwargs, modules)")
    with L.no_init():
        model = from_structure(payload["structure"])
    _build_in_file_dtype(model, state)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise A2Error(f"{path}: state_dict does not fit the structure: {err}") from None
    return model


def _load_pt(path):
    """``torch.load(path, weights_only=True)``; any failure (not a pickle, empty, truncated,
    a forbidden global) is an A2Error naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        if isinstance(err, pickle.UnpicklingError):  # torch's text suggests weights_only=False
            detail = "not a PyTorch file, or one that needs code to load"
        else:
            detail = " ".join(str(err).split())[:200] or "the file ends early"
        raise A2Error(f"{path}: not a readable .pt file ({type(err).__name__}: {detail})") \
            from None


def _build_in_file_dtype(model, state):
    # Cast before load_state_dict, which copies into the built tensors: a float64 file loaded
    # into float32 tensors and cast back would have lost its low bits.
    dtypes = {v.dtype for v in state.values() if v.is_floating_point()}
    if len(dtypes) == 1:
        model.to(dtypes.pop())


def convert_model(src, dst, *, spec: str | None = None) -> nn.Module:
    """Read the model in ``src`` and write it to ``dst`` (format of each by suffix: .t7/.net <-> .pt).

    Returns the model. The ``.pt`` records ``spec`` (or the one ``src`` recorded).
    """
    if spec is None and _kind(src) == "pt":
        payload = _load_pt(os.fspath(src))
        spec = payload.get("spec") if isinstance(payload, dict) else None
    kind = _kind(dst)  # validate the output name before reading a large input
    model = load_model(src)
    if kind == "t7" or spec is not None:
        save_model(model, dst, spec=spec)
    else:
        save_model(model, dst)
    return model
