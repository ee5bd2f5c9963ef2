"""The grader-style summary (tests/sections.py): every test module in a section, one line per
section with its counts, and pytest's exit status on a tiny suite run in a subprocess; and no
test module imports another."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sections import OTHER, SECTIONS, marker_name, section_of

TESTS = Path(__file__).resolve().parent
MODULES = sorted(p.name for p in TESTS.glob("test_*.py"))


@pytest.mark.parametrize("module,test,section", [
    ("test_t7_read.py", "test_every_oracle_file_loads", "t7"),
    ("test_backprop_cli.py", "test_dag_defaults", "1.1"),
    ("test_backprop_cli.py", "test_batchnorm_options", "1.2"),
    ("test_backprop_oracle.py", "test_from_lua_reads_a_container_with_bn", "1.2"),
    ("test_pseudolabel_cli.py", "test_kmeans_selftraining_run_folder", "2.4"),
    ("test_pseudolabel_cli.py", "test_warmup_is_supervised_training", "2.3"),
    ("test_pseudolabel_selftrain.py", "test_bad_config", "2.4"),
    ("test_viz_cli.py", "test_tsne_raw", "3.2"),
    ("test_viz_cli.py", "test_filters", "3.1"),
    ("test_bench_surrogate.py", "test_ram_fits_checks_room_and_existence", "2.1"),
    ("test_cli_bad_input.py", "test_bad_t7_input", "CLI"),
    ("test_something_new.py", "test_x", OTHER),
])
def test_section_of(module, test, section):
    assert section_of(module, test) == section


def test_every_module_has_a_section_and_every_section_a_module():
    by_module = {m: section_of(m, "") for m in MODULES}
    assert [m for m, s in by_module.items() if s == OTHER] == []
    keys = {key for key, _ in SECTIONS}
    covered = set(by_module.values()) | {section_of(m, t) for m, t in (
        ("test_backprop_cli.py", "test_batchnorm"), ("test_pseudolabel_cli.py", "test_kmeans"),
        ("test_viz_cli.py", "test_tsne"))}
    assert covered == keys


def test_marker_names_are_identifiers():
    names = [marker_name(key) for key, _ in SECTIONS]
    assert all(n.isidentifier() for n in names) and len(set(names)) == len(names)
    assert marker_name("2.2") == "section_2_2" and marker_name("nn parity") == "section_nn_parity"


TINY = {
    "conftest.py": 'pytest_plugins = ("sections",)\n',
    "test_t7_tiny.py": """
        def test_a():
            pass

        def test_b():
            pass
        """,
    "test_kmeans_tiny.py": """
        import pytest

        def test_ok():
            pass

        def test_wrong():
            assert 1 == 2

        def test_skipped():
            pytest.skip("no data")

        @pytest.fixture
        def broken():
            raise RuntimeError("setup fails")

        def test_setup_error(broken):
            pass
        """,
    "test_backprop_tiny.py": """
        import pytest

        def test_dag():
            pass

        @pytest.mark.xfail(reason="known")
        def test_batchnorm_xfail():
            assert False
        """,
}


def _run_tiny(tmp_path, files, *args):
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args,
                           str(tmp_path)], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"}, timeout=120)
    lines = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"(PASS|FAIL)  (\S+(?: parity)?) .*?(\d+) passed +(\d+) failed +(\d+) skipped$",
                     line)
        if m:
            lines[m[2]] = (m[1], int(m[3]), int(m[4]), int(m[5]))
    return proc, lines


def test_summary_lines_and_exit_status(tmp_path):
    proc, lines = _run_tiny(tmp_path, TINY)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "= sections =" in proc.stdout
    # the setup error counts as a failure of its test; the xfail as a skip
    assert lines == {"t7": ("PASS", 2, 0, 0), "1.1": ("PASS", 1, 0, 0), "1.2": ("PASS", 0, 0, 1),
                     "2.2": ("FAIL", 1, 2, 1)}, proc.stdout
    assert list(lines) == ["t7", "1.1", "1.2", "2.2"]  # the summary keeps the sections' order


def test_all_passing_exits_zero_and_markers_select(tmp_path):
    files = {k: v for k, v in TINY.items() if k != "test_kmeans_tiny.py"}
    proc, lines = _run_tiny(tmp_path, files, "-m", "section_t7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines == {"t7": ("PASS", 2, 0, 0)}


def test_a_module_that_does_not_import_fails_its_section(tmp_path):
    files = {"conftest.py": TINY["conftest.py"],
             "test_report_tiny.py": "import a_module_that_is_not_there\n"}
    proc, lines = _run_tiny(tmp_path, files)
    assert proc.returncode != 0
    assert lines == {"report": ("FAIL", 0, 1, 0)}, proc.stdout


def test_no_test_module_imports_another():
    import ast

    offenders = []
    for name in MODULES:
        for node in ast.walk(ast.parse((TESTS / name).read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module or ""]
            else:
                continue
            offenders += [f"{name}: {m}" for m in mods if m.split(".")[0].startswith(("test_", "conftest"))]
    assert offenders == []  # shared builders go to helpers.py, fixtures to conftest.py
