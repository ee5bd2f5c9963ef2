"""Python values for the Lua/Torch things a t7 file can hold that Python lacks.

Port of the value model of torch7's ``File.lua`` (``readObject``/``writeObject``): Lua tables
become lists/dicts, tensors become ``torch.Tensor``; what is left is modelled here.
"""

from __future__ import annotations

import torch

# Lua class name <-> torch dtype (torch7 ``Tensor.c``/``Storage.c``, one generic per type).
TENSOR_DTYPES = {
    "torch.ByteTensor": torch.uint8,
    "torch.CharTensor": torch.int8,
    "torch.ShortTensor": torch.int16,
    "torch.IntTensor": torch.int32,
    "torch.LongTensor": torch.int64,
    "torch.FloatTensor": torch.float32,
    "torch.DoubleTensor": torch.float64,
    "torch.HalfTensor": torch.float16,
}
STORAGE_DTYPES = {name.replace("Tensor", "Storage"): dt for name, dt in TENSOR_DTYPES.items()}
# cutorch classes are read as their CPU counterparts.
for _cpu, _cuda in [("Float", "Cuda"), ("Byte", "CudaByte"), ("Char", "CudaChar"),
                    ("Short", "CudaShort"), ("Int", "CudaInt"), ("Long", "CudaLong"),
                    ("Double", "CudaDouble"), ("Half", "CudaHalf")]:
    TENSOR_DTYPES[f"torch.{_cuda}Tensor"] = TENSOR_DTYPES[f"torch.{_cpu}Tensor"]
    STORAGE_DTYPES[f"torch.{_cuda}Storage"] = STORAGE_DTYPES[f"torch.{_cpu}Storage"]

DTYPE_TENSOR_CLASS = {
    torch.uint8: "torch.ByteTensor",
    torch.bool: "torch.ByteTensor",  # Lua has no bool tensor; written as 0/1 bytes
    torch.int8: "torch.CharTensor",
    torch.int16: "torch.ShortTensor",
    torch.int32: "torch.IntTensor",
    torch.int64: "torch.LongTensor",
    torch.float32: "torch.FloatTensor",
    torch.float64: "torch.DoubleTensor",
    torch.float16: "torch.HalfTensor",
}


class Storage:
    """A ``torch.XStorage``: a flat, typed buffer (``tensor`` is its 1-D view).

    Lua nn keeps a few of these as fields (``nn.View.size`` is a ``torch.LongStorage``).
    """

    __slots__ = ("tensor",)

    def __init__(self, tensor):
        tensor = torch.as_tensor(tensor)
        if tensor.dim() != 1:
            raise ValueError(f"a Storage is 1-D, got shape {tuple(tensor.shape)}")
        self.tensor = tensor

    @classmethod
    def _wrap(cls, tensor):
        """A Storage around a tensor already known to be 1-D (the reader's hot path)."""
        storage = object.__new__(cls)
        storage.tensor = tensor
        return storage

    @property
    def dtype(self):
        return self.tensor.dtype

    @property
    def class_name(self):
        return DTYPE_TENSOR_CLASS[self.tensor.dtype].replace("Tensor", "Storage")

    def tolist(self):
        return self.tensor.tolist()

    def __len__(self):
        return self.tensor.numel()

    def __eq__(self, other):
        return (isinstance(other, Storage) and other.dtype == self.dtype
                and torch.equal(other.tensor, self.tensor))

    __hash__ = object.__hash__

    def __repr__(self):
        return f"{self.class_name}({self.tolist() if len(self) <= 8 else f'size {len(self)}'})"


class LuaObject:
    """An instance of a Lua torch class other than a tensor or storage (an nn module, say).

    ``class_name`` is the Lua name (``"nn.SpatialConvolution"``); ``fields`` is what its
    ``write`` stored, for nn modules a dict of its fields. Fields read as attributes
    (``obj.weight``) or items (``obj["weight"]``); a missing one raises, never returns None.
    Equality is identity, as for Lua tables.
    """

    def __init__(self, class_name: str, fields=None, version: int = 1):
        object.__setattr__(self, "class_name", class_name)
        object.__setattr__(self, "fields", {} if fields is None else fields)
        object.__setattr__(self, "version", version)

    def __getattr__(self, key):
        fields = object.__getattribute__(self, "fields")
        if isinstance(fields, dict) and key in fields:
            return fields[key]
        raise AttributeError(f"{self.class_name} has no field {key!r}")

    def __setattr__(self, key, value):
        if key in ("class_name", "fields", "version"):
            object.__setattr__(self, key, value)
        else:
            self.fields[key] = value

    def __getitem__(self, key):
        try:
            return self.fields[key]
        except (KeyError, TypeError, IndexError):
            raise KeyError(f"{self.class_name} has no field {key!r}") from None

    def __setitem__(self, key, value):
        self.fields[key] = value

    def __contains__(self, key):
        return isinstance(self.fields, dict) and key in self.fields

    def get(self, key, default=None):
        return self.fields.get(key, default) if isinstance(self.fields, dict) else default

    def __dir__(self):
        extra = list(self.fields) if isinstance(self.fields, dict) else []
        return sorted(set(object.__dir__(self)) | {k for k in extra if isinstance(k, str)})

    def __repr__(self):
        keys = ", ".join(map(str, self.fields)) if isinstance(self.fields, dict) else "..."
        return f"LuaObject({self.class_name}: {keys})"


class LuaFunction:
    """A serialized Lua function: its bytecode and upvalues, kept as inert data (never run)."""

    __slots__ = ("dumped", "upvalues", "type_tag")

    def __init__(self, dumped: bytes, upvalues, type_tag: int = 6):
        self.dumped = bytes(dumped)
        self.upvalues = upvalues
        self.type_tag = type_tag

    def __repr__(self):
        return f"LuaFunction({len(self.dumped)} bytes of bytecode)"


class TableKey:
    """A Lua table used as a key of another table (Python lists/dicts are unhashable)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return id(self.value)

    def __eq__(self, other):
        return isinstance(other, TableKey) and other.value is self.value

    def __repr__(self):
        return f"TableKey(<{type(self.value).__name__} at {id(self.value):#x}>)"
