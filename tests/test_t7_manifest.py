"""Every key the oracle pack's manifest (made/README.md) lists, checked on what t7.load returns.

The manifest describes each file as rows ``| `key` | type | shape / value |`` under a
``#### `file` `` heading (§2-§9) and, for nn_modules/, as one row per file (§1):
``| `file.t7` | nn.Class | `key`: DoubleTensor 4x6; `loss`: number 2.01...; ... |``.
"""

from __future__ import annotations

import math
import re

import pytest
import torch

from luatorch_port import t7
from luatorch_port.t7 import LuaObject
from luatorch_port.t7.types import TENSOR_DTYPES

from helpers import VENDORED

MANIFEST = VENDORED / "README.md"
_HEADING = re.compile(r"^#### `([^`]+)`")
_ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+?) \| ([^|]*?) \|$")
_MODULE_ROW = re.compile(r"^\| `([\w.\-]+\.t7)` \| (nn\.\w+) \| (`.*) \|$")


def _manifest():
    """[(file, key, type, value)] from the manifest's tables."""
    if not MANIFEST.exists():
        return []
    rows, current = [], None
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = heading.group(1)
            continue
        module_row = _MODULE_ROW.match(line)
        if module_row:
            name, cls, keys = module_row.groups()
            rows.append((f"nn_modules/{name}", "module" if "Criterion" not in cls else "criterion",
                         cls, ""))
            for item in keys.split("; "):
                key, rest = re.match(r"`([^`]+)`: (.*)", item).groups()
                kind, _, value = rest.partition(" ")
                kind = f"torch.{kind}" if kind.endswith("Tensor") else kind
                rows.append((f"nn_modules/{name}", key, kind, value))
            continue
        if line.startswith("## "):
            current = None
        row = _ROW.match(line)
        if current and row and row.group(1) != "key":
            rows.append((current,) + row.groups())
    return rows


ROWS = _manifest()


def _lookup(obj, key):
    """``a.b.c`` through tables and torch objects; a key may itself contain dots."""
    if isinstance(obj, LuaObject):
        obj = obj.fields
    table = dict(enumerate(obj, start=1)) if isinstance(obj, list) else obj
    for cut in range(len(key), 0, -1):
        head = key[:cut]
        if cut < len(key) and key[cut] != ".":
            continue
        for candidate in (head, int(head) if head.isdigit() else None):
            if candidate is not None and candidate in table:
                rest = key[cut + 1:]
                return _lookup(table[candidate], rest) if rest else table[candidate]
    raise KeyError(key)


_loaded = {}


def _load(name):
    if name not in _loaded:
        _loaded[name] = t7.load(VENDORED / name)
    return _loaded[name]


@pytest.mark.parametrize("name,key,kind,value", ROWS,
                         ids=[f"{r[0]}:{r[1]}" for r in ROWS] or None)
def test_manifest_entry(name, key, kind, value):
    got = _lookup(_load(name), re.sub(r"\[(\d+)\]", r".\1", key))  # sizes[1] -> sizes.1
    if kind.startswith("torch.") and kind.endswith("Tensor"):
        assert isinstance(got, torch.Tensor), type(got)
        assert got.dtype == TENSOR_DTYPES[kind]
        shape = tuple(int(n) for n in value.split("x")) if value.strip() else (0,)
        assert tuple(got.shape) == shape
    elif kind.startswith("nn."):
        assert isinstance(got, LuaObject) and got.class_name == kind
    elif kind == "number":
        assert isinstance(got, (int, float)) and not isinstance(got, bool)
        assert math.isclose(got, float(value), rel_tol=1e-12, abs_tol=1e-300), (got, value)
    elif kind == "boolean":
        assert got is (value == "true")
    elif kind == "string":
        text = value.strip('"')
        flat = " ".join(got.split())
        assert flat.startswith(text[:-3].rstrip()) if text.endswith("...") else got == text
    elif kind == "table":
        assert isinstance(got, (list, dict)) and len(got) == int(value.split()[0])
    else:
        pytest.fail(f"manifest type {kind!r} not understood")


def test_manifest_parsed():
    if not MANIFEST.exists():
        pytest.skip("oracle pack absent")
    files = {r[0] for r in ROWS}
    assert len([f for f in files if f.startswith("nn_modules/")]) == 28
    assert {"dag_backprop.t7", "batchnorm_part12.t7", "optim_sgd.t7", "image_ops.t7",
            "models/exemplar_32c5_32c5_64f_16cls.t7", "models/course_sample_model_width_div8.t7",
            "models/full_size_specs.t7", "ascii/small_table.t7"} <= files
    assert len(ROWS) > 300
