"""Lua nn modules <-> PyTorch modules: ``from_t7`` and ``to_t7``.

Port of the (de)serialisation side of torch/nn: ``from_t7`` reads the fields a Lua module's
``write`` stored (``nInputPlane``, ``kW``, ``weight``, ``running_var``, ``train``, ...) and
builds the Lua-named PyTorch module with the same outputs; ``to_t7`` writes the fields Lua's
nn expects so that ``t7.save`` gives a file Lua Torch loads and runs. Version upgrades
(BatchNormalization < 2 stores ``running_std``; old SpatialConvolutionMM has ``padding``)
and 1-based indices are handled here and nowhere else.

Deviations: buffers Lua fills during forward (``output``, ``finput``, ``indices``, ...) are
written empty; Lua reallocates them on the next forward. Gradients are written as zeros
unless the PyTorch parameter has a ``.grad``.
"""

from __future__ import annotations

import contextvars

import torch
from torch import nn

from ..util.errors import A2Error
from ..t7 import LuaObject, Storage
from ..t7.types import DTYPE_TENSOR_CLASS
from . import containers as C
from . import criteria as K
from . import layers as L
from .normalization import SpatialContrastiveNormalization

# ============================================================== t7 -> PyTorch


def _f(obj, key, path, default=...):
    fields = obj.fields if isinstance(obj.fields, dict) else {}
    if key in fields:
        return fields[key]
    if default is ...:
        raise A2Error(f"{path or '(root)'}: {obj.class_name} has no field {key!r}")
    return default


def _tensor(obj, key, path, optional=False):
    t = _f(obj, key, path, None if optional else ...)
    if t is None:
        return None
    if not isinstance(t, torch.Tensor):
        raise A2Error(f"{path or '(root)'}.{key}: expected a tensor, got {type(t).__name__}")
    return t


def _set_param(module, name, value):
    if value is None:
        setattr(module, name, None)
        return
    setattr(module, name, nn.Parameter(value.detach().clone().contiguous()))


def _sizes(value, path):
    if isinstance(value, Storage):
        return [int(v) for v in value.tolist()]
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    if isinstance(value, (int, float)):
        return [int(value)]
    raise A2Error(f"{path or '(root)'}.size: expected a LongStorage, got {type(value).__name__}")


def _read_conv(obj, path, cls):
    nin, nout = int(_f(obj, "nInputPlane", path)), int(_f(obj, "nOutputPlane", path))
    kW, kH = int(_f(obj, "kW", path)), int(_f(obj, "kH", path))
    dW, dH = int(_f(obj, "dW", path, 1)), int(_f(obj, "dH", path, 1))
    old_pad = _f(obj, "padding", path, 0)  # SpatialConvolutionMM before padW/padH existed
    padW = int(_f(obj, "padW", path, old_pad))
    padH = int(_f(obj, "padH", path, old_pad))
    weight = _tensor(obj, "weight", path)
    bias = _tensor(obj, "bias", path, optional=True)
    if weight.numel() != nout * nin * kH * kW:
        raise A2Error(f"{path or '(root)'}.weight: {obj.class_name} expects {nout}x{nin}x{kH}x{kW} "
                      f"elements, got shape {tuple(weight.shape)}")
    m = cls(nin, nout, kW, kH, dW, dH, padW, padH, bias=bias is not None)
    _set_param(m, "weight", weight.reshape(nout, nin, kH, kW))
    if bias is not None:
        _set_param(m, "bias", bias)
    return m


def _read_maxpool(obj, path):
    m = L.SpatialMaxPooling(int(_f(obj, "kW", path)), int(_f(obj, "kH", path)),
                            int(_f(obj, "dW", path)), int(_f(obj, "dH", path)),
                            int(_f(obj, "padW", path, 0)), int(_f(obj, "padH", path, 0)),
                            ceil_mode=bool(_f(obj, "ceil_mode", path, False)))
    for key in ("iheight", "iwidth"):
        if key in obj:
            setattr(m, "_lua_" + key, int(obj[key]))
    return m


def _read_avgpool(obj, path):
    if not _f(obj, "divide", path, True):
        raise A2Error(f"{path or '(root)'}: nn.SpatialAveragePooling with divide=false is not supported")
    return L.SpatialAveragePooling(int(_f(obj, "kW", path)), int(_f(obj, "kH", path)),
                                   int(_f(obj, "dW", path, 1)), int(_f(obj, "dH", path, 1)),
                                   int(_f(obj, "padW", path, 0)), int(_f(obj, "padH", path, 0)),
                                   ceil_mode=bool(_f(obj, "ceil_mode", path, False)),
                                   count_include_pad=bool(_f(obj, "count_include_pad", path, True)))


def _read_bn(obj, path, cls):
    eps = float(_f(obj, "eps", path, L.BN_EPS))
    momentum = float(_f(obj, "momentum", path, L.BN_MOMENTUM))
    running_mean = _tensor(obj, "running_mean", path)
    n = running_mean.numel()
    if obj.version < 2 and "running_std" in obj:
        # nn.BatchNormalization:read(): running_var = running_std^-2 - eps
        running_var = _tensor(obj, "running_std", path).pow(-2) - eps
    else:
        running_var = _tensor(obj, "running_var", path)
    weight = _tensor(obj, "weight", path, optional=True)
    bias = _tensor(obj, "bias", path, optional=True)
    affine = bool(_f(obj, "affine", path, weight is not None))
    m = cls(n, eps, momentum, affine)
    if affine:
        _set_param(m, "weight", weight)
        _set_param(m, "bias", bias)
    m.running_mean = running_mean.detach().clone()
    m.running_var = running_var.detach().clone()
    return m


def _read_linear(obj, path):
    weight = _tensor(obj, "weight", path)
    bias = _tensor(obj, "bias", path, optional=True)
    m = L.Linear(weight.size(1), weight.size(0), bias is not None)
    _set_param(m, "weight", weight)
    if bias is not None:
        _set_param(m, "bias", bias)
    return m


def _read_threshold(obj, path):
    th, val = float(_f(obj, "threshold", path, 0)), float(_f(obj, "val", path, 0))
    if th != 0 or val != 0:
        raise A2Error(f"{path or '(root)'}: {obj.class_name} with threshold={th}, val={val} is not supported "
                      f"(only the ReLU case 0, 0)")
    return L.ReLU(bool(_f(obj, "inplace", path, False)))


def _read_dropout(obj, path):
    return L.Dropout(float(_f(obj, "p", path, L.DROPOUT_P)), v1=not _f(obj, "v2", path, False))


def _read_view(obj, path):
    m = L.View(*_sizes(_f(obj, "size", path), path))
    if _f(obj, "numInputDims", path, None) is not None:
        m.setNumInputDims(int(obj["numInputDims"]))
    return m


def _read_reshape(obj, path):
    return L.Reshape(*_sizes(_f(obj, "size", path), path),
                     batchMode=_f(obj, "batchMode", path, None))


def _read_padding(obj, path):
    return L.SpatialZeroPadding(*(int(_f(obj, k, path)) for k in ("pad_l", "pad_r", "pad_t", "pad_b")))


def _read_scn(obj, path):
    kernel = _tensor(obj, "kernel", path)  # already normalised twice by the Lua constructors
    m = SpatialContrastiveNormalization(int(_f(obj, "nInputPlane", path, 1)), kernel,
                                        float(_f(obj, "threshold", path, 1e-4)),
                                        float(_f(obj, "thresval", path, _f(obj, "threshold", path, 1e-4))))
    m.kernel = kernel.detach().clone()
    m.kernel_sub = _scn_sub_kernel(obj, kernel)
    return m


def _scn_sub_kernel(obj, kernel):
    """The subtractive part's kernel (normalised once) from its meanestimator's weights."""
    try:
        est = obj["normalizer"]["modules"][0]["meanestimator"]["modules"]
        w = est[1]["weight"]
        k = w[0].reshape(-1) if kernel.dim() == 1 else w[0, 0]
        if k.shape == kernel.shape:
            return k.detach().clone().to(kernel.dtype)
    except (KeyError, IndexError, TypeError, AttributeError):
        pass
    return kernel.detach().clone()


def _children(obj, path):
    mods = _f(obj, "modules", path, [])
    if isinstance(mods, dict):  # a Lua array read as a dict with holes
        mods = [mods[k] for k in sorted(mods)]
    return [from_t7(m, f"{path}.modules[{i}]" if path else f"modules[{i}]")
            for i, m in enumerate(mods, 1)]


def _read_container(obj, path, cls):
    if cls is C.Concat:
        m = C.Concat(int(_f(obj, "dimension", path)))
    else:
        m = cls()
    for child in _children(obj, path):
        m.add(child)
    return m


def _read_classnll(obj, path):
    return K.ClassNLLCriterion(_f(obj, "weights", path, None), bool(_f(obj, "sizeAverage", path, True)),
                               int(_f(obj, "ignoreIndex", path, K.IGNORE_INDEX)))


def _read_crossentropy(obj, path):
    nll = _f(obj, "nll", path, None)
    weights = nll.get("weights") if isinstance(nll, LuaObject) else None
    size_average = _f(obj, "sizeAverage", path, True)
    return K.CrossEntropyCriterion(weights, bool(size_average))


def _simple(cls):
    return lambda obj, path: cls()


def _read_cudnn_conv(obj, path):
    if int(_f(obj, "groups", path, 1)) != 1:
        raise A2Error(f"{path or '(root)'}: cudnn.SpatialConvolution with groups={obj['groups']} is not supported")
    return _read_conv(obj, path, L.SpatialConvolution)


READERS = {
    "nn.SpatialConvolution": lambda o, p: _read_conv(o, p, L.SpatialConvolution),
    "nn.SpatialConvolutionMM": lambda o, p: _read_conv(o, p, L.SpatialConvolutionMM),
    "cudnn.SpatialConvolution": _read_cudnn_conv,
    "nn.SpatialMaxPooling": _read_maxpool,
    "cudnn.SpatialMaxPooling": _read_maxpool,
    "nn.SpatialAveragePooling": _read_avgpool,
    "nn.SpatialBatchNormalization": lambda o, p: _read_bn(o, p, L.SpatialBatchNormalization),
    "nn.BatchNormalization": lambda o, p: _read_bn(o, p, L.BatchNormalization),
    "nn.Linear": _read_linear,
    "nn.ReLU": _read_threshold,
    "cudnn.ReLU": _read_threshold,
    "nn.Threshold": _read_threshold,
    "nn.Sigmoid": _simple(L.Sigmoid),
    "nn.Tanh": _simple(L.Tanh),
    "nn.Dropout": _read_dropout,
    "nn.View": _read_view,
    "nn.Reshape": _read_reshape,
    "nn.LogSoftMax": _simple(L.LogSoftMax),
    "nn.SoftMax": _simple(L.SoftMax),
    "nn.Identity": _simple(L.Identity),
    "nn.SpatialZeroPadding": _read_padding,
    "nn.SpatialContrastiveNormalization": _read_scn,
    "nn.Sequential": lambda o, p: _read_container(o, p, C.Sequential),
    "nn.Concat": lambda o, p: _read_container(o, p, C.Concat),
    "nn.ConcatTable": lambda o, p: _read_container(o, p, C.ConcatTable),
    "nn.ParallelTable": lambda o, p: _read_container(o, p, C.ParallelTable),
    "nn.CAddTable": lambda o, p: C.CAddTable(bool(_f(o, "inplace", p, False))),
    "nn.CMinTable": _simple(C.CMinTable),
    "nn.CMaxTable": _simple(C.CMaxTable),
    "nn.JoinTable": lambda o, p: C.JoinTable(int(_f(o, "dimension", p)), _f(o, "nInputDims", p, None)),
    # cudnn.convert(model, cudnn) twins (the starter's GPU backend); written back as nn.*
    "cudnn.SpatialAveragePooling": _read_avgpool,
    "cudnn.SpatialBatchNormalization": lambda o, p: _read_bn(o, p, L.SpatialBatchNormalization),
    "cudnn.BatchNormalization": lambda o, p: _read_bn(o, p, L.BatchNormalization),
    "cudnn.Sigmoid": _simple(L.Sigmoid),
    "cudnn.Tanh": _simple(L.Tanh),
    "cudnn.SoftMax": _simple(L.SoftMax),
    "cudnn.LogSoftMax": _simple(L.LogSoftMax),
    "nn.ClassNLLCriterion": _read_classnll,
    "nn.CrossEntropyCriterion": _read_crossentropy,
    "nn.MSECriterion": lambda o, p: K.MSECriterion(bool(_f(o, "sizeAverage", p, True))),
}


_LUA_DTYPES = {name: dt for dt, name in DTYPE_TENSOR_CLASS.items() if dt is not torch.bool}
_LUA_DTYPES.update({"torch.CudaTensor": torch.float32, "torch.CudaDoubleTensor": torch.float64})


# id of each Lua module being converted -> its path (cycle detection in from_t7)
_OPEN_MODULES: contextvars.ContextVar[dict] = contextvars.ContextVar("open_modules", default={})


def from_t7(obj, path: str = "") -> nn.Module:
    """A loaded Lua nn module (a :class:`t7.LuaObject`) -> the equivalent PyTorch module.

    Parameters keep the file's dtype (a FloatTensor model gives float32 parameters);
    ``train`` flags are kept per module; a module without the field is in evaluate mode,
    as Lua's ``if self.train`` reads it.
    Raises A2Error naming the module's path (``modules[3].modules[2]: nn.X is not
    supported``) for a class it does not know, never skipping it, and for a module that
    contains itself (a cycle, which a t7 file can hold).
    """
    where = path or "(root)"
    if not isinstance(obj, LuaObject):
        raise A2Error(f"{where}: expected a Lua nn module, got {type(obj).__name__}")
    reader = READERS.get(obj.class_name)
    if reader is None:
        raise A2Error(f"{where}: {obj.class_name} is not supported")
    ancestors = _OPEN_MODULES.get()
    if id(obj) in ancestors:  # a t7 file can hold cycles; a module tree cannot
        raise A2Error(f"{where}: {obj.class_name} contains itself (it is also "
                      f"{ancestors[id(obj)]}); a model cannot be a cycle")
    token = _OPEN_MODULES.set({**ancestors, id(obj): where})
    try:
        with L.no_init():
            module = reader(obj, path)
    finally:
        _OPEN_MODULES.reset(token)
    dtype = _LUA_DTYPES.get(obj.get("_type"))
    if dtype is None and isinstance(obj.get("gradInput"), torch.Tensor):
        dtype = obj["gradInput"].dtype
    if dtype is not None and dtype.is_floating_point:
        module._lua_dtype = dtype  # remembered for to_t7 of parameterless modules
    # Lua tests `if self.train`: a module never switched by training()/evaluate() has no
    # field and behaves as in evaluate mode (Dropout passes through, BN uses running stats).
    module.training = bool(obj.get("train", False))
    return module


# ============================================================== PyTorch -> t7


def _dtype_of(module) -> torch.dtype:
    for t in list(module.parameters()) + list(module.buffers()):
        if t.is_floating_point() and t.numel():
            return t.dtype
    return getattr(module, "_lua_dtype", torch.get_default_dtype())


def _empty(dtype):
    return torch.empty(0, dtype=dtype)


def _clone(t, dtype):
    """A contiguous CPU copy; floating tensors in the file's dtype (Lua types a model as one)."""
    t = t.detach().cpu()
    if t.is_floating_point():
        t = t.to(dtype)
    return t.clone().contiguous()


def _grad(p, dtype):
    return _clone(p.grad, dtype) if p.grad is not None else torch.zeros(p.shape, dtype=dtype)


def _base(m, dtype):
    return {"output": _empty(dtype), "gradInput": _empty(dtype), "train": bool(m.training),
            "_type": DTYPE_TENSOR_CLASS[dtype]}


def _write_conv(m, dtype):
    f = _base(m, dtype)
    mm = isinstance(m, L.SpatialConvolutionMM)
    w = _clone(m.weight, dtype)
    gw = _grad(m.weight, dtype)
    if mm:
        w, gw = w.reshape(m.nOutputPlane, -1), gw.reshape(m.nOutputPlane, -1)
    f.update(nInputPlane=m.nInputPlane, nOutputPlane=m.nOutputPlane, kW=m.kW, kH=m.kH,
             dW=m.dW, dH=m.dH, padW=m.padW, padH=m.padH, weight=w, gradWeight=gw,
             finput=_empty(dtype), fgradInput=_empty(dtype))
    if m.bias is not None:
        f.update(bias=_clone(m.bias, dtype), gradBias=_grad(m.bias, dtype))
    return f


def _write_maxpool(m, dtype):
    f = _base(m, dtype)
    f.update(kW=m.kW, kH=m.kH, dW=m.dW, dH=m.dH, padW=m.padW, padH=m.padH,
             ceil_mode=bool(m.ceil_mode), indices=_empty(torch.int64))
    for key in ("iheight", "iwidth"):
        if hasattr(m, "_lua_" + key):
            f[key] = getattr(m, "_lua_" + key)
    return f


def _write_avgpool(m, dtype):
    f = _base(m, dtype)
    f.update(kW=m.kW, kH=m.kH, dW=m.dW, dH=m.dH, padW=m.padW, padH=m.padH,
             ceil_mode=bool(m.ceil_mode), count_include_pad=bool(m.count_include_pad), divide=True)
    return f


def _write_bn(m, dtype):
    f = _base(m, dtype)
    n = m.num_features
    f.update(eps=float(m.eps), momentum=float(m.momentum), affine=bool(m.affine),
             running_mean=_clone(m.running_mean, dtype),
             running_var=_clone(m.running_var, dtype),
             save_mean=torch.zeros(n, dtype=dtype), save_std=torch.zeros(n, dtype=dtype))
    if m.affine:
        f.update(weight=_clone(m.weight, dtype), bias=_clone(m.bias, dtype),
                 gradWeight=_grad(m.weight, dtype), gradBias=_grad(m.bias, dtype))
    return f


def _write_linear(m, dtype):
    f = _base(m, dtype)
    f.update(weight=_clone(m.weight, dtype), gradWeight=_grad(m.weight, dtype),
             addBuffer=_empty(dtype))
    if m.bias is not None:
        f.update(bias=_clone(m.bias, dtype), gradBias=_grad(m.bias, dtype))
    return f


def _write_relu(m, dtype):
    f = _base(m, dtype)
    f.update(threshold=0, val=0, inplace=bool(m.inplace))
    return f


def _write_dropout(m, dtype):
    f = _base(m, dtype)
    f.update(p=float(m.p), noise=_empty(dtype), stochastic_inference=False)
    if not m.v1:
        f["v2"] = True
    return f


def _write_view(m, dtype):
    f = _base(m, dtype)
    f.update(size=Storage(torch.tensor(m.size, dtype=torch.int64)), numElements=m.numElements)
    if m.numInputDims is not None:
        f["numInputDims"] = m.numInputDims
    return f


def _write_reshape(m, dtype):
    f = _base(m, dtype)
    f.update(size=Storage(torch.tensor(m.size, dtype=torch.int64)),
             batchsize=Storage(torch.tensor([1, *m.size], dtype=torch.int64)), nelement=m.nelement)
    if m.batchMode is not None:
        f["batchMode"] = bool(m.batchMode)
    return f


def _write_padding(m, dtype):
    f = _base(m, dtype)
    f.update(pad_l=m.pad_l, pad_r=m.pad_r, pad_t=m.pad_t, pad_b=m.pad_b)
    return f


def _write_container(m, dtype, path):
    f = _base(m, dtype)
    f["modules"] = [to_t7(c, f"{path}.modules[{i}]" if path else f"modules[{i}]", dtype)
                    for i, c in enumerate(m, 1)]
    if isinstance(m, (C.ConcatTable, C.ParallelTable)):
        f["output"], f["gradInput"] = [], []
    if isinstance(m, C.Concat):
        f.update(dimension=m.dimension, size=Storage(torch.zeros(0, dtype=torch.int64)))
    return f


def _write_table_reduce(m, dtype):
    f = _base(m, dtype)
    f["gradInput"] = []
    if isinstance(m, C.CAddTable):
        if m.inplace:  # CAddTable(ip) stores nil for false
            f["inplace"] = True
    elif isinstance(m, C.CMinTable):
        f.update(minIdx=_empty(dtype), mask=_empty(dtype), minVals=_empty(dtype),
                 gradMaxVals=_empty(dtype), maskByteTensor=_empty(torch.uint8))
    elif isinstance(m, C.CMaxTable):
        f.update(maxIdx=_empty(dtype), mask=_empty(dtype), maxVals=_empty(dtype),
                 gradMaxVals=_empty(dtype), maskByteTensor=_empty(torch.uint8))
    elif isinstance(m, C.JoinTable):
        f.update(dimension=m.dimension, size=Storage(torch.zeros(0, dtype=torch.int64)))
        if m.nInputDims is not None:
            f["nInputDims"] = m.nInputDims
    return f


def _write_nll(m, dtype):
    f = {"sizeAverage": bool(m.sizeAverage), "ignoreIndex": m.ignoreIndex, "output": 0.0,
         "gradInput": _empty(dtype), "output_tensor": torch.zeros(1, dtype=dtype),
         "total_weight_tensor": torch.ones(1, dtype=dtype), "target": torch.zeros(1, dtype=torch.int64)}
    if m.weights is not None:
        f["weights"] = _clone(m.weights, dtype)
    return f


def _write_crossentropy(m, dtype):
    lsm = LuaObject("nn.LogSoftMax", {"output": _empty(dtype), "gradInput": _empty(dtype),
                                      "_type": DTYPE_TENSOR_CLASS[dtype]})
    return {"lsm": lsm, "nll": LuaObject("nn.ClassNLLCriterion", _write_nll(m.nll, dtype)),
            "sizeAverage": bool(m.sizeAverage), "oldSizeAverage": bool(m.sizeAverage), "output": 0.0,
            "gradInput": _empty(dtype)}


def _write_mse(m, dtype):
    return {"sizeAverage": bool(m.sizeAverage), "output": 0.0, "gradInput": _empty(dtype),
            "output_tensor": torch.zeros(1, dtype=dtype)}


def _lua(cls, dtype, **fields):
    base = {"output": _empty(dtype), "gradInput": _empty(dtype), "_type": DTYPE_TENSOR_CLASS[dtype]}
    base.update(fields)
    return LuaObject(cls, base)


def _estimator(kernel, n, dtype, square=False, sqrt=False):
    """The ``meanestimator``/``stdestimator`` Sequential SpatialSubtractive/DivisiveNormalization build."""
    mods = [_lua("nn.Square", dtype)] if square else []
    zeros = lambda *shape: torch.zeros(*shape, dtype=dtype)  # noqa: E731
    if kernel.dim() == 2:
        kh, kw = kernel.shape
        mods.append(_lua("nn.SpatialZeroPadding", dtype, pad_l=kw // 2, pad_r=kw // 2,
                         pad_t=kh // 2, pad_b=kh // 2))
        w = kernel.expand(1, n, kh, kw).clone()
        mods.append(_lua("nn.SpatialConvolution", dtype, nInputPlane=n, nOutputPlane=1, kW=kw, kH=kh,
                         dW=1, dH=1, padW=0, padH=0, weight=w, bias=zeros(1),
                         gradWeight=torch.zeros_like(w), gradBias=zeros(1), finput=_empty(dtype),
                         fgradInput=_empty(dtype)))
    else:
        k = kernel.numel()
        mods.append(_lua("nn.SpatialZeroPadding", dtype, pad_l=k // 2, pad_r=k // 2,
                         pad_t=k // 2, pad_b=k // 2))
        conn = torch.arange(1, n + 1, dtype=dtype).unsqueeze(1).repeat(1, 2)  # nn.tables.oneToOne
        wmap = kernel.reshape(1, 1, k).repeat(n, 1, 1)
        mods.append(_lua("nn.SpatialConvolutionMap", dtype, nInputPlane=n, nOutputPlane=n, kW=k,
                         kH=1, dW=1, dH=1, connTable=conn, weight=wmap, bias=zeros(n),
                         gradWeight=torch.zeros_like(wmap), gradBias=zeros(n)))
        wv = kernel.reshape(1, 1, k, 1).repeat(1, n, 1, 1)
        mods.append(_lua("nn.SpatialConvolution", dtype, nInputPlane=n, nOutputPlane=1, kW=1, kH=k,
                         dW=1, dH=1, padW=0, padH=0, weight=wv, bias=zeros(1),
                         gradWeight=torch.zeros_like(wv), gradBias=zeros(1), finput=_empty(dtype),
                         fgradInput=_empty(dtype)))
    mods.append(_lua("nn.Replicate", dtype, nfeatures=n, dim=1, ndim=3))
    if sqrt:
        mods.append(_lua("nn.Sqrt", dtype, eps=0))
    return _lua("nn.Sequential", dtype, modules=mods)


def _write_scn(m, dtype):
    """nn.SpatialContrastiveNormalization with the module tree its constructor builds."""
    n, kernel = m.nInputPlane, _clone(m.kernel, dtype)
    kernel_sub = _clone(m.kernel_sub, dtype)
    one = lambda: torch.zeros(1, 1, 1, dtype=dtype)  # noqa: E731 - Lua's torch.Tensor(1,1,1)
    sub = _lua("nn.SpatialSubtractiveNormalization", dtype, nInputPlane=n, kernel=kernel,
               meanestimator=_estimator(kernel_sub, n, dtype), coef=one(),
               subtractor=_lua("nn.CSubTable", dtype, gradInput=[]),
               divider=_lua("nn.CDivTable", dtype, gradInput=[]))
    div = _lua("nn.SpatialDivisiveNormalization", dtype, nInputPlane=n, kernel=kernel,
               threshold=m.threshold, thresval=m.thresval,
               meanestimator=_estimator(kernel, n, dtype),
               stdestimator=_estimator(kernel, n, dtype, square=True, sqrt=True), coef=one(),
               normalizer=_lua("nn.CDivTable", dtype, gradInput=[]),
               divider=_lua("nn.CDivTable", dtype, gradInput=[]),
               thresholder=_lua("nn.Threshold", dtype, threshold=m.threshold, val=m.thresval,
                                inplace=False))
    f = _base(m, dtype)
    f.update(nInputPlane=n, kernel=kernel, threshold=m.threshold, thresval=m.thresval,
             normalizer=_lua("nn.Sequential", dtype, modules=[sub, div]))
    return f


# The first entry whose classes the module is an instance of writes it (containers, which
# also take the path, are handled before this list).
WRITERS = (
    (L.SpatialConvolution, _write_conv),
    (L.SpatialMaxPooling, _write_maxpool),
    (L.SpatialAveragePooling, _write_avgpool),
    (L._LuaBatchNorm, _write_bn),
    (L.Linear, _write_linear),
    (L.ReLU, _write_relu),
    (L.Dropout, _write_dropout),
    (L.View, _write_view),
    (L.Reshape, _write_reshape),
    (L.SpatialZeroPadding, _write_padding),
    ((L.Sigmoid, L.Tanh, L.LogSoftMax, L.SoftMax, L.Identity), _base),
    ((C.CAddTable, C.CMinTable, C.CMaxTable, C.JoinTable), _write_table_reduce),
    (SpatialContrastiveNormalization, _write_scn),
    (K.ClassNLLCriterion, _write_nll),
    (K.CrossEntropyCriterion, _write_crossentropy),
    (K.MSECriterion, _write_mse),
)


def to_t7(module: nn.Module, path: str = "", dtype: torch.dtype | None = None) -> LuaObject:
    """A PyTorch model built from these layers -> Lua nn objects ready for ``t7.save``.

    ``dtype`` (default: that of the model's first floating parameter) picks ``_type``
    and the dtype of the empty buffers. Raises A2Error naming the path of a module that
    is not one of the Lua-named layers.
    """
    where = path or "(root)"
    dtype = _dtype_of(module) if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64, torch.float16):
        dtype = torch.float32
    m = module
    if isinstance(m, (C.Sequential, C._Branching)):
        fields = _write_container(m, dtype, path)
    else:
        write = next((w for types, w in WRITERS if isinstance(m, types)), None)
        if write is None:
            raise A2Error(f"{where}: {type(m).__module__}.{type(m).__name__} has no Lua nn "
                          f"equivalent (build models from luatorch_port.nn layers)")
        fields = write(m, dtype)
    version = 2 if isinstance(m, L._LuaBatchNorm) else 1
    return LuaObject(m.lua_class, fields, version)
