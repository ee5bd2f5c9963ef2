"""The layers of docs/architecture.md: every import inside luatorch_port goes down, never up.

Function-level imports count too (they hide cycles, they do not remove them). A package may
import its own modules and anything in a lower layer; packages of one layer do not import
each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "luatorch_port"

LAYERS = {
    "util": 0,
    "t7": 1,
    "data": 2, "nn": 2,
    "backprop": 3, "train": 3, "kmeans": 3,
    "surrogate": 4, "pseudolabel": 4, "visualize": 4,
    "report": 5,
    "cli": 6,
}
ENTRY_POINTS = {"__init__", "__main__"}  # the package root: version string and `python -m`


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _top(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_tops(path: Path):
    """(line, top-level package) for every luatorch_port import in ``path``."""
    rel = path.relative_to(PACKAGE)
    here = list(rel.parts[:-1])  # the package that holds the module
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                parts = base + (node.module.split(".") if node.module else [])
                if parts:
                    yield node.lineno, parts[0]
                else:  # `from .. import t7, data`
                    for alias in node.names:
                        yield node.lineno, alias.name
            elif node.module and node.module.split(".")[0] == "luatorch_port":
                parts = node.module.split(".")[1:]
                names = [parts[0]] if parts else [a.name for a in node.names]
                for name in names:
                    yield node.lineno, name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "luatorch_port" and len(parts) > 1:
                    yield node.lineno, parts[1]


def test_every_package_has_a_layer():
    tops = {_top(p) for p in _modules()} - ENTRY_POINTS
    assert tops == set(LAYERS), "add the new package to LAYERS and to docs/architecture.md"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down(path):
    src = _top(path)
    if src in ENTRY_POINTS:
        return
    for line, dst in _imported_tops(path):
        if dst == src or dst in ("__version__", "__init__"):
            continue
        assert dst in LAYERS, f"{path.name}:{line} imports unknown package {dst!r}"
        assert LAYERS[dst] < LAYERS[src], (
            f"{path.relative_to(PACKAGE)}:{line} imports {dst} (layer {LAYERS[dst]}) from {src} "
            f"(layer {LAYERS[src]}): imports must go down")


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The rule can fail: a t7 module that imports data is caught, also inside a function."""
    pkg = tmp_path / "luatorch_port"
    (pkg / "t7").mkdir(parents=True)
    bad = pkg / "t7" / "bad.py"
    bad.write_text("def f():\n    from ..data import layout\n    return layout\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    with pytest.raises(AssertionError, match="imports must go down"):
        test_imports_go_down(bad)
