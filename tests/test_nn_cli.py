"""`a2 t7 convert`: .t7 <-> .pt, in-process."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from luatorch_port import nn as lnn
from luatorch_port import t7
from luatorch_port.cli import cli

def test_convert_help_shows_defaults():
    result = CliRunner().invoke(cli, ["t7", "convert", "--help"])
    assert result.exit_code == 0
    assert "weights_only" in result.stdout and "IN OUT" in result.stdout

def test_convert_t7_to_pt_and_back(oracle, tmp_path):
    src = oracle("made", "models", "exemplar_32c5_32c5_64f_16cls.t7")
    data = t7.load(src)
    pt, back = tmp_path / "m.pt", tmp_path / "out" / "m.t7"
    runner = CliRunner()
    result = runner.invoke(cli, ["t7", "convert", str(src), str(pt), "--spec", "32c5-32c5-64f"])
    assert result.exit_code == 0, result.stderr
    assert "160240 parameters" in result.stdout
    payload = torch.load(pt, weights_only=True)
    assert payload["spec"] == "32c5-32c5-64f"
    result = runner.invoke(cli, ["t7", "convert", str(pt), str(back)])
    assert result.exit_code == 0, result.stderr
    record = json.loads((tmp_path / "out" / "m.run.json").read_text())
    assert record["command"] == "t7 convert" and record["results"]["parameters"] == 160240
    model = lnn.load_model(back)
    with torch.no_grad():
        torch.testing.assert_close(model(data["input"]), data["output"], rtol=1e-4, atol=1e-5)

def test_convert_bad_suffix_is_one_line_error(tmp_path):
    src = tmp_path / "m.t7"
    lnn.save_model(lnn.build_model("4c3-4f", n_classes=2, input_size=4), src)
    result = CliRunner().invoke(cli, ["t7", "convert", str(src), str(tmp_path / "m.onnx")])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "m.onnx" in result.stderr
    assert "Traceback" not in result.stderr

def test_convert_unsupported_class_names_path(tmp_path):
    bad = t7.LuaObject("nn.Sequential", {"modules": [t7.LuaObject("nn.SpatialFullConvolution", {})]})
    t7.save(bad, tmp_path / "bad.t7")
    result = CliRunner().invoke(cli, ["t7", "convert", str(tmp_path / "bad.t7"), str(tmp_path / "x.pt")])
    assert result.exit_code == 1
    assert "modules[1]: nn.SpatialFullConvolution is not supported" in result.stderr
