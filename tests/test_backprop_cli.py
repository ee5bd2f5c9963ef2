"""`a2 backprop dag` and `a2 backprop batchnorm`, in process; the --json output is what is checked."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from luatorch_port.cli import cli


def run(*args):
    return CliRunner().invoke(cli, ["backprop", *map(str, args)])


def run_json(*args):
    result = run(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("command", [[], ["dag"], ["batchnorm"]])
def test_help(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    if command:
        assert "[default:" in result.stdout
    if command == ["batchnorm"]:
        assert "batch of ONE sample" in result.stdout and "1e-05" in result.stdout


def test_dag_defaults():
    out = run_json("dag")
    assert len(out["rows"]) == 5 and out["n_ties"] == 1
    assert out["max_error"]["closed_form"] < 1e-14
    assert out["max_error"]["autograd"] < 1e-14
    assert out["max_error"]["finite_diff"] < 1e-8
    tie = next(row for row in out["rows"] if row["tie"])
    assert tie["dx2"]["hand"] == 0.0
    assert tie["dx1"]["hand"] == pytest.approx(2 * tie["dx1"]["closed_form"], rel=1e-14)
    assert "(1 + e^{-x_i})^2" in out["typo_note"]


def test_dag_table_text():
    result = run("dag")
    assert result.exit_code == 0
    assert "exp(-x_i) / (1 + exp(-x_i))^2" in result.stdout and "sign typo" in result.stdout
    assert "closed form" in result.stdout and "autograd" in result.stdout


@pytest.mark.parametrize("args, n_rows, n_ties", [
    (["--x1", "0.5", "--x2", "0.5"], 1, 1),
    (["--x1", "1,2,3", "--x2", "0", "--grad-output", "2"], 3, 0),
    (["--x1", "-1", "--x1", "-1", "--x2", "-1,4"], 2, 1),
])
def test_dag_values_and_broadcast(args, n_rows, n_ties):
    out = run_json("dag", *args)
    assert len(out["rows"]) == n_rows and out["n_ties"] == n_ties
    assert max(out["max_error"].values()) < 1e-8


def test_dag_from_t7(oracle):
    out = run_json("dag", "--from-t7", oracle("made", "dag_backprop.t7"))
    assert len(out["rows"]) == 15 and out["n_ties"] == 3
    assert out["max_error"]["oracle"] < 1e-10


def test_batchnorm_defaults_and_seed():
    out = run_json("batchnorm")
    assert [m["mode"] for m in out["modes"]] == ["train", "evaluate"]
    assert [m["statistics"] for m in out["modes"]] == ["batch", "running"]
    assert out["config"] == {"batch": 8, "features": 5, "eps": 1e-5, "momentum": 0.1, "affine": True,
                             "source": "random, seed 1"}
    assert out["max_error"]["autograd"] < 1e-12
    assert out["max_error"]["finite_diff"] < 1e-7 and out["max_error"]["jacobian"] < 1e-6
    assert out["max_error"]["oracle"] is None
    assert run_json("batchnorm", "--seed", "1")["modes"] == out["modes"]
    assert run_json("batchnorm", "--seed", "2")["modes"] != out["modes"]


@pytest.mark.parametrize("args, statistics, quantities", [
    (["--mode", "train", "--batch", "1"], ["running (a training batch of 1 takes Torch's evaluate path)"], 6),
    (["--mode", "evaluate", "--no-affine", "--features", "2"], ["running"], 4),
    (["--batch", "2", "--features", "1", "--eps", "1e-3"], ["batch", "running"], 6),
])
def test_batchnorm_options(args, statistics, quantities):
    out = run_json("batchnorm", *args)
    assert [m["statistics"] for m in out["modes"]] == statistics
    assert all(len(m["checks"]) == quantities for m in out["modes"])
    assert out["max_error"]["autograd"] < 1e-12 and out["max_error"]["jacobian"] < 1e-6


@pytest.mark.parametrize("case", [[], ["--case", "batch1"]])
def test_batchnorm_from_t7(oracle, case):
    out = run_json("batchnorm", "--from-t7", oracle("made", "batchnorm_part12.t7"), *case)
    assert out["max_error"]["oracle"] < 1e-10
    assert out["config"]["batch"] == (1 if case else 8)


def test_out_writes_result_and_provenance(tmp_path):
    target = tmp_path / "res" / "dag.json"
    result = run("dag", "--out", target)
    assert result.exit_code == 0, result.stderr
    saved = json.loads(target.read_text())
    record = json.loads((tmp_path / "res" / "dag.run.json").read_text())
    assert saved["max_error"] == record["results"]["max_error"]
    assert record["command"] == "backprop dag" and record["config"]["x1"] == [1.0, -0.5, 0.5, 30.0, 3.0]
    result = run("batchnorm", "--seed", "7", "--out", tmp_path / "bn.json")
    assert result.exit_code == 0
    assert json.loads((tmp_path / "bn.run.json").read_text())["seed"] == 7


@pytest.mark.parametrize("args, message", [
    (["dag", "--x1", "1,2", "--x2", "1,2,3"], "x1 has 2 values; expected 1 or 3"),
    (["dag", "--step", "0"], "--step=0.0 should be > 0"),
    (["batchnorm", "--batch", "0"], "batch=0"),
    (["batchnorm", "--momentum", "2"], "momentum=2.0"),
    (["batchnorm", "--case", "batch1"], "--case needs --from-t7"),
])
def test_bad_input_is_one_line_error(args, message):
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command, file, extra, message", [
    ("batchnorm", "dag_backprop.t7", [], "missing field(s) input"),
    ("batchnorm", "batchnorm_part12.t7", ["--case", "nope"], "no case named 'nope'"),
    ("dag", "batchnorm_part12.t7", [], "missing field(s) x1, x2"),
])
def test_wrong_t7_file_is_one_line_error(oracle, command, file, extra, message):
    result = run(command, "--from-t7", oracle("made", file), *extra)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.stderr
