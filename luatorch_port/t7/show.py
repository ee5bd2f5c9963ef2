"""A readable tree of a loaded t7 object, for ``a2 t7 show``.

Lines read ``name: what``: tables with their entry count, torch classes by their Lua name,
tensors as ``torch.FloatTensor 2x3 [first values]``; an object met again is printed as
``(same object as <path>)`` and a tensor viewing a storage already shown says
``(shares storage with <path>)``.
"""

from __future__ import annotations

import numpy as np
import torch

from .types import DTYPE_TENSOR_CLASS, LuaFunction, LuaObject, Storage, TableKey

_MAX_ITEMS = 12  # children shown per table before "... N more"


def _values(t: torch.Tensor, n=4) -> str:
    """The first ``n`` elements in row-major order, without copying the tensor."""
    count = min(n, t.numel())
    index = np.unravel_index(np.arange(count), tuple(t.shape)) if t.dim() else ()
    first = t[tuple(torch.from_numpy(i) for i in index)].tolist() if t.dim() else [t.item()]
    text = ", ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in first)
    return f"[{text}{', ...' if t.numel() > n else ''}]"


def _entries(n: int) -> str:
    return f"{n} {'entry' if n == 1 else 'entries'}"


DEPTH = 3  # levels of tables and objects opened by default


def describe(obj, depth: int = DEPTH) -> str:
    """Multi-line tree: class names, dtypes, shapes, a few values; repeats marked by path."""
    lines: list[str] = []
    seen: dict[int, str] = {}
    storages: dict[tuple, str] = {}

    def key_text(k):
        if isinstance(k, TableKey):
            return f"<table key {seen.get(id(k.value), 'not shown')}>"
        if isinstance(k, LuaObject):
            return f"<{k.class_name} key {seen.get(id(k), 'not shown')}>"
        return repr(k) if isinstance(k, str) and (not k.isidentifier()) else str(k)

    def walk(value, name, path, indent, level):
        pad = "  " * indent
        ref = id(value)
        if isinstance(value, (list, dict, LuaObject, torch.Tensor, Storage)) and ref in seen:
            lines.append(f"{pad}{name}: (same object as {seen[ref]})")
            return
        if isinstance(value, (list, dict, LuaObject, torch.Tensor, Storage)):
            seen[ref] = path
        if isinstance(value, torch.Tensor):
            cls = DTYPE_TENSOR_CLASS.get(value.dtype, str(value.dtype))
            shape = "x".join(map(str, value.shape)) or "empty"
            note = ""
            if value.numel():
                skey = (value.untyped_storage().data_ptr(), value.dtype)
                if skey in storages and storages[skey] != path:
                    note = f" (shares storage with {storages[skey]})"
                storages.setdefault(skey, path)
            values = _values(value) if value.numel() else ""
            lines.append(f"{pad}{name}: {cls} {shape} {values}{note}".rstrip())
        elif isinstance(value, Storage):
            values = _values(value.tensor)
            lines.append(f"{pad}{name}: {value.class_name} size {len(value)} {values}")
        elif isinstance(value, LuaObject):
            lines.append(f"{pad}{name}: {value.class_name}")
            if level < depth:
                fields = value.fields
                if isinstance(fields, dict):
                    children(fields, path, indent + 1, level + 1)
                else:
                    walk(fields, "<payload>", f"{path}.<payload>", indent + 1, level + 1)
        elif isinstance(value, dict):
            lines.append(f"{pad}{name}: table ({_entries(len(value))})")
            if level < depth:
                children(value, path, indent + 1, level + 1)
        elif isinstance(value, list):
            lines.append(f"{pad}{name}: array ({_entries(len(value))})")
            if level < depth:
                children({i + 1: v for i, v in enumerate(value)}, path, indent + 1, level + 1)
        elif isinstance(value, LuaFunction):
            lines.append(f"{pad}{name}: function ({len(value.dumped)} bytes of bytecode, not run)")
        elif isinstance(value, str):
            text = value if len(value) <= 60 else value[:57] + "..."
            lines.append(f"{pad}{name}: string {text!r}")
        elif isinstance(value, bool):
            lines.append(f"{pad}{name}: boolean {str(value).lower()}")
        elif value is None:
            lines.append(f"{pad}{name}: nil")
        else:
            lines.append(f"{pad}{name}: number {value!r}")

    def children(table, path, indent, level):
        items = list(table.items())
        for k, v in items[:_MAX_ITEMS]:
            child = f"{path}.{k}" if isinstance(k, str) and k.isidentifier() else \
                f"{path}[{key_text(k)}]"
            walk(v, key_text(k), child, indent, level)
        if len(items) > _MAX_ITEMS:
            lines.append(f"{'  ' * indent}... {len(items) - _MAX_ITEMS} more")

    walk(obj, "root", "root", 0, 0)
    return "\n".join(lines)
