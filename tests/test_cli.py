"""The CLI as a whole: every command has --help, and README's command list matches `a2 --help`."""

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from luatorch_port.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands(group=cli, prefix=("a2",)):
    for name in group.list_commands(None):   # the top-level group imports on lookup
        cmd = group.get_command(None, name)
        path = prefix + (name,)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path)
        else:
            yield path


ALL = list(_commands())


def test_there_are_commands():
    assert ("a2", "t7", "show") in ALL


@pytest.mark.parametrize("path", ALL, ids=[" ".join(p) for p in ALL])
def test_help(path):
    result = CliRunner().invoke(cli, list(path[1:]) + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout


@pytest.mark.parametrize("path", ALL, ids=[" ".join(p) for p in ALL])
def test_readme_lists_command(path):
    readme = README.read_text()
    assert re.search(r"`" + re.escape(" ".join(path)) + r"[ `]", readme), \
        f"README.md's command list lacks `{' '.join(path)}`"


def test_readme_lists_no_command_that_does_not_exist():
    listed = re.findall(r"`(a2 [a-z0-9 -]+?)(?: [A-Z\[-]|`)", README.read_text())
    known = {" ".join(p) for p in ALL}
    assert listed, "README.md has no command list"
    for entry in listed:
        assert entry.strip() in known, f"README lists `{entry}`, which `a2 --help` lacks"


@pytest.mark.slow
def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "luatorch_port", "--help"], capture_output=True,
                         text=True, check=True)
    assert "Usage:" in out.stdout


def test_unknown_file_is_one_line_error():
    result = CliRunner().invoke(cli, ["t7", "show", "no/such/file.t7"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output


@pytest.mark.parametrize("path,expected", [
    (("surrogate", "train"), ["optim.sgd learningRate (paper: 0.01).", "L2 weight decay (paper: 0.0004)."]),
    (("pseudolabel", "train"), ["[cnn] optim.sgd learningRate.", "[cnn] NHWC memory format"]),
    (("train",), ["optim.sgd learningRate.", "Halve the learning rate at every multiple"]),
])
def test_sgd_options_help(path, expected):
    """The shared optim.sgd options carry each command's tag and notes."""
    result = CliRunner(env={"COLUMNS": "400"}).invoke(cli, list(path) + ["--help"], terminal_width=400)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for fragment in expected:
        assert fragment in text


def test_every_listed_command_resolves_to_a_command_of_that_name():
    from luatorch_port.cli import COMMANDS

    for name in COMMANDS:
        assert cli.get_command(None, name).name == name


@pytest.mark.slow
def test_commands_are_imported_when_used():
    """The top-level group imports a command's module on lookup: a fresh ``a2 surrogate
    build`` imports no k-means or t-SNE code."""
    code = ("import sys, luatorch_port.cli as c; c.cli.get_command(None, 'surrogate'); "
            "print(sorted(m for m in sys.modules if m.startswith('luatorch_port.cli.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert "luatorch_port.cli.surrogate" in loaded and "luatorch_port.cli.kmeans" not in loaded
