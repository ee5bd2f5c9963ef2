"""`a2 t7 show`: in-process CLI tests on Torch7's own files."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from luatorch_port import t7
from luatorch_port.cli import cli


def show(*args):
    return CliRunner().invoke(cli, ["t7", "show", *map(str, args)])


def test_help_shows_defaults():
    result = show("--help")
    assert result.exit_code == 0
    assert "--depth" in result.stdout and "[default: 3; x>=0]" in result.stdout
    assert "[default: auto]" in result.stdout


def test_model_tree(oracle):
    result = show(oracle("made", "misc", "edge", "model_float_clearstate.t7"), "--depth", 2)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "root: nn.Sequential"
    assert "  modules: array (7 entries)" in lines
    assert "    1: nn.SpatialConvolution" in lines and "    7: nn.LogSoftMax" in lines
    assert "  _type: string 'torch.FloatTensor'" in lines
    assert not any("weight" in line for line in lines)  # depth 2 does not open the modules


def test_model_tree_deeper_shows_tensors(oracle):
    out = show(oracle("made", "misc", "edge", "model_float_clearstate.t7"), "--depth", 3).stdout
    assert "      weight: torch.FloatTensor 4x3x3x3 [" in out
    assert "      size: torch.LongStorage size 1 [64]" in out  # nn.View's LongStorage


def test_course_layout_tree(oracle):
    result = show(oracle("made", "misc", "mini_train.t7b"))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[:3] == ["root: table (1 entry)", "  data: array (10 entries)",
                         "    1: array (3 entries)"]
    assert "      2: torch.ByteTensor 3x96x96 [1, 35, 35, 35, ...]" in lines  # class 1, image 2


def test_shared_references_are_marked(oracle):
    lines = show(oracle("made", "misc", "edge", "table_shared_storage.t7")).stdout.splitlines()
    first = next(line.split(":")[0].strip() for line in lines[1:] if "DoubleTensor 6 " in line)
    others = {"a", "b", "c", "c_again"} - {first}
    for name in others:
        (line,) = [x for x in lines if x.startswith(f"  {name}:")]
        assert f"root.{first})" in line
        assert ("same object as" in line) == (name in ("c", "c_again")), line
        assert ("shares storage with" in line) == (name in ("a", "b")), line


def test_recursive_and_function_files(oracle):
    out = show(oracle("fetched", "torchfile-tests", "recursive_class.t7")).stdout
    assert out.splitlines() == ["root: A", "  a: (same object as root)"]
    out = show(oracle("fetched", "torchfile-tests", "function.t7")).stdout
    assert out.startswith("root: function (") and "not run" in out


def test_ascii_file(oracle):
    out = show(oracle("made", "ascii", "float_tensor_2x3_1to6.t7")).stdout
    assert out.strip() == "root: torch.FloatTensor 2x3 [1, 2, 3, 4, ...]"


def test_long_size_option(tmp_path):
    path = tmp_path / "win.t7"
    t7.save({"x": [1, 2]}, path, long_size=4)
    assert show(path, "--long-size", "4").exit_code == 0
    assert show(path).stdout.startswith("root: table (1 entry)")


@pytest.mark.parametrize("content,offset", [
    (b"\x04\x00\x00\x00\x01\x00\x00\x00\x03\x00\x00\x00V 1", 15),
    (b"not a t7 file at all\n", 0),
])
def test_bad_file_is_one_line_error(tmp_path, content, offset):
    path = tmp_path / "bad.t7"
    path.write_bytes(content)
    result = show(path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {path}: offset {offset}: expected")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_missing_file(tmp_path):
    result = show(tmp_path / "nope.t7")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_depth_zero_shows_the_root_only(oracle):
    result = show(oracle("fetched", "2015-a2-model", "model.net"), "--depth", 0)
    assert result.exit_code == 0 and result.stdout == "root: nn.Sequential\n"
    assert show(oracle("made", "misc", "mini_train.t7b"), "--depth", -1).exit_code == 2
