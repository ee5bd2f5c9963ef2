"""setup.cfg declares exactly what the code imports: run-time imports of luatorch_port/ in
``install_requires``, and what only tests and benchmarks import in the ``dev`` extra."""

from __future__ import annotations

import ast
import configparser
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DISTRIBUTION = {"sklearn": "scikit-learn", "PIL": "pillow"}

pytestmark = pytest.mark.skipif(not hasattr(sys, "stdlib_module_names"), reason="needs Python >= 3.10")


def _requirements(text: str) -> set[str]:
    names = set()
    for line in text.strip().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower())
    return names


def _setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return (_requirements(cfg["options"]["install_requires"]),
            _requirements(cfg["options.extras_require"]["dev"]))


# modules the tests write or reach for themselves (a worker script written at run time)
TEST_LOCAL = {"ddp_worker"}


def _imports(*folders: Path) -> set[str]:
    """Distribution names of the third-party modules imported anywhere under ``folders``
    (function-level imports included; relative imports, the standard library, luatorch_port and
    the folders' own modules left out)."""
    local = {p.stem for folder in folders for p in folder.rglob("*.py")} | {"luatorch_port"} | TEST_LOCAL
    found = set()
    for folder in folders:
        found |= _imports_in(folder, local)
    return found


def _imports_in(folder: Path, local: set[str]) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "importorskip"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                names = [node.args[0].value]  # pytest.importorskip("torchfile")
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.add(DISTRIBUTION.get(top, top).lower())
    return found


def test_install_requires_is_exactly_what_the_package_imports():
    runtime, _ = _setup_cfg()
    imported = _imports(ROOT / "luatorch_port")
    assert imported - runtime == set(), "imported by luatorch_port/ but not in install_requires"
    assert runtime - imported == set(), "in install_requires but never imported by luatorch_port/ (dev extra?)"


def test_dev_extra_covers_what_only_tests_and_benchmarks_import():
    runtime, dev = _setup_cfg()
    used = _imports(ROOT / "tests", ROOT / "benchmarks")
    assert used - runtime - dev == set(), "imported by tests/benchmarks but declared nowhere"
    assert dev - used == set(), "in the dev extra but imported by no test or benchmark"
    assert {"torchfile", "scipy"} <= dev and not {"torchfile", "scipy"} & runtime


def test_the_check_sees_function_level_imports(tmp_path):
    (tmp_path / "m.py").write_text("import os\n\ndef f():\n    from PIL import Image\n    import sklearn.manifold\n"
                                   "    from . import sibling\n")
    assert _imports(tmp_path) == {"pillow", "scikit-learn"}
