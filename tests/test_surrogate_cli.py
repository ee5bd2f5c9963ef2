"""`a2 surrogate build|train|eval` in-process, on tiny synthetic data."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from luatorch_port import t7
from luatorch_port.cli import cli
from luatorch_port.data import save_split


@pytest.fixture
def extra(tmp_path):
    g = torch.Generator().manual_seed(0)
    small = torch.rand(12, 3, 6, 6, generator=g)
    images = (torch.nn.functional.interpolate(small, size=48, mode="bilinear") * 255).round()
    path = tmp_path / "extra.t7b"
    save_split(path, images.to(torch.uint8))
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("command", ["build", "train", "eval"])
def test_help_shows_defaults(command):
    result = invoke("surrogate", command, "--help")
    assert result.exit_code == 0, result.output
    assert "[default:" in result.stdout


def test_build_writes_dataset_and_record(extra, tmp_path):
    out = tmp_path / "out" / "surrogate.t7b"
    result = invoke("surrogate", "build", extra, "--out", out, "--seeds", 4, "--per-seed", 3,
                    "--window", 24, 40, "--rotation", -10, 10, "--quiet", "--seed", 3)
    assert result.exit_code == 0, result.output
    assert "12 patches in 4 classes, preset report" in result.stdout
    obj = t7.load(out)
    assert obj["data"].shape == (12, 3, 32, 32)
    assert obj["transforms"][:, 0].abs().max() <= 10  # --rotation -10 10 reached the library
    record = json.loads((tmp_path / "out" / "surrogate.run.json").read_text())
    assert record["command"] == "surrogate build" and record["seed"] == 3
    assert record["config"]["ranges"]["rotation"] == [-10.0, 10.0]
    assert record["config"]["preset"] == "report" and obj["preset"] == "report"
    assert record["config"]["classes"] == 4
    again = tmp_path / "again.t7b"
    invoke("surrogate", "build", extra, "--out", again, "--seeds", 4, "--per-seed", 3,
           "--window", 24, 40, "--rotation", -10, 10, "--quiet", "--seed", 3)
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("args,message", [
    (["--classes", 50], "--classes 50 should be in 1..12"),
    (["--seeds", 50], "--classes 50 should be in 1..12"),
    (["--seeds", 4, "--window", 10, 60], "seed window sides 10..60"),
    (["--seeds", 4, "--scale", 1.4, 0.7], "scale=(1.4, 0.7)"),
])
def test_build_errors_are_one_line(extra, tmp_path, args, message):
    result = invoke("surrogate", "build", extra, "--out", tmp_path / "s.t7b", "--quiet", *args)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "s.t7b").exists()


@pytest.fixture(scope="module")
def sample_dir(sample_data):
    """`a2 data sample` at a small size: 40 train / 40 test digits, 110 extra, 48x48."""
    return sample_data(image_size=48, per_class=20)


def test_end_to_end_on_the_data_sample_beats_chance(sample_dir, tmp_path):
    sur, run = tmp_path / "sur.t7b", tmp_path / "run"
    result = invoke("surrogate", "build", sample_dir / "extra.t7b", "--out", sur, "--seeds", 16,
                    "--per-seed", 16, "--window", 24, 48, "--quiet")
    assert result.exit_code == 0, result.output
    result = invoke("surrogate", "train", sur, "--model", "16c5-16c5-32f", "--out", run,
                    "--epochs", 2, "-b", 32, "-r", 0.05, "--val-per-seed", 2, "--quiet")
    assert result.exit_code == 0, result.output
    for name in ("model.net", "model.pt", "surrogate_norm.t7", "val.log", "run.json"):
        assert (run / name).exists(), name
    assert len((run / "val.log").read_text().splitlines()) == 3  # header + 2 epochs
    from luatorch_port.nn import load_model
    lua, pt = load_model(run / "model.net").eval(), load_model(run / "model.pt").eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(lua(x), pt(x), atol=1e-5)
    assert lua(x).shape == (2, 16)  # one output per seed
    pred = tmp_path / "pred.csv"
    result = invoke("surrogate", "eval", run / "model.pt", "--train", sample_dir / "train.t7b",
                    "--val", sample_dir / "val.t7b", "--test", sample_dir / "test.t7b",
                    "--predictions", pred)  # with its progress bar
    assert result.exit_code == 0, result.output
    assert "val accuracy" in result.stdout and "test accuracy" in result.stdout
    record = json.loads((tmp_path / "pred.run.json").read_text())
    results = record["results"]
    assert results["n_features"] == 4 * (16 + 16 + 32)
    assert results["n_test"] == 40 and results["n_val"] == 10
    assert results["test_acc"] > 0.2  # 10 classes: chance is 0.1 (got 0.275 with these seeds)
    assert record["config"]["random_init"] is False
    assert len(pred.read_text().splitlines()) == 41
    # --C auto (the default): chosen on --val over the grid, the curve printed and recorded
    from luatorch_port.kmeans.svm import C_GRID
    assert results["c_source"] == "val" and [p["C"] for p in results["c_curve"]] == list(C_GRID)
    assert results["refit"] is True and f"C = {results['C']:g}, chosen on val" in result.stdout
    control = tmp_path / "control.csv"
    result = invoke("surrogate", "eval", run / "model.pt", "--train", sample_dir / "train.t7b",
                    "--test", sample_dir / "test.t7b", "--random-init", "--out", control, "--no-val",
                    "--quiet")
    assert result.exit_code == 0, result.output  # --out: the old name of --predictions
    assert "(random-init control)" in result.stdout
    record = json.loads((tmp_path / "control.run.json").read_text())
    assert record["config"]["random_init"] is True and record["results"]["val_acc"] is None
    # no val split: --C auto falls back to Coates' fixed C and says so
    assert "--no-val: no split to choose C on, using Coates' fixed C = 100" in result.stdout
    assert record["results"]["c_source"] == "fixed" and record["results"]["C"] == 100.0
    assert record["results"]["n_features"] == results["n_features"]


@pytest.mark.parametrize("args,message", [
    (["--val", "missing.t7b"], "--val missing.t7b: no such file"),
    (["--no-val", "--C", "abc"], "neither 'auto' nor a number"),
    (["--no-val", "--C", "0"], "should be > 0"),
])
def test_eval_C_and_val_errors(sample_dir, tmp_path, args, message):
    from luatorch_port.nn import build_model, save_model
    save_model(build_model("8c5-8f", n_classes=4, input_size=32), tmp_path / "m.t7")
    result = invoke("surrogate", "eval", tmp_path / "m.t7", "--train", sample_dir / "train.t7b",
                    "--test", sample_dir / "test.t7b", *args, "--quiet")
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_eval_without_norm_is_an_error(sample_dir, tmp_path):
    from luatorch_port.nn import build_model, save_model
    save_model(build_model("8c5-8f", n_classes=4, input_size=32), tmp_path / "m.t7")
    result = invoke("surrogate", "eval", tmp_path / "m.t7", "--train", sample_dir / "train.t7b",
                    "--test", sample_dir / "test.t7b", "--no-val", "--quiet")
    assert result.exit_code == 1
    assert "no surrogate_norm.t7 beside" in result.stderr


def test_train_resumes_from_its_checkpoint(extra, tmp_path):
    sur, run = tmp_path / "sur.t7b", tmp_path / "run"
    assert invoke("surrogate", "build", extra, "--out", sur, "--seeds", 4, "--per-seed", 12,
                  "--window", 24, 40, "--quiet").exit_code == 0
    common = ["--model", "4c5-8f", "--out", run, "-b", 8, "--quiet"]
    first = invoke("surrogate", "train", sur, "--epochs", 1, *common)
    assert first.exit_code == 0, first.output
    second = invoke("surrogate", "train", sur, "--epochs", 2, "--resume", *common)
    assert second.exit_code == 0, second.output
    history = json.loads((run / "run.json").read_text())["results"]["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    straight = invoke("surrogate", "train", sur, "--epochs", 2, *common[:3], tmp_path / "run2",
                      *common[4:])
    assert straight.exit_code == 0, straight.output
    again = json.loads((tmp_path / "run2" / "run.json").read_text())["results"]["history"]
    assert again[-1]["loss"] == pytest.approx(history[-1]["loss"], rel=1e-6)


def test_build_as_typed_reads_data_extra(extra, tmp_path, monkeypatch):
    """`a2 surrogate build` with no arguments, in a folder holding data/extra.t7b."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "extra.t7b").write_bytes(extra.read_bytes())
    monkeypatch.chdir(tmp_path)
    result = invoke("surrogate", "build", "--classes", 3, "--per-seed", 2, "--window", 24, 40,
                    "--quiet")
    assert result.exit_code == 0, result.output
    assert t7.load(tmp_path / "surrogate.t7b")["data"].shape == (6, 3, 32, 32)
    record = json.loads((tmp_path / "surrogate.run.json").read_text())
    assert record["config"]["extra"] == "data/extra.t7b"


def test_build_without_extra_names_the_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("surrogate", "build", "--quiet")
    assert result.exit_code == 1
    assert "data/extra.t7b: no such file" in result.stderr and "Traceback" not in result.stderr


def test_extra_option_positional_and_seeds_alias_build_the_same_bytes(extra, tmp_path):
    common = ["--per-seed", 2, "--window", 24, 40, "--quiet"]
    a, b, c = tmp_path / "a.t7b", tmp_path / "b.t7b", tmp_path / "c.t7b"
    assert invoke("surrogate", "build", "--extra", extra, "--classes", 3, "--out", a, *common).exit_code == 0
    assert invoke("surrogate", "build", extra, "--seeds", 3, "--out", b, *common).exit_code == 0
    assert invoke("surrogate", "build", extra, "--extra", extra, "--classes", 3, "--seeds", 3,
                  "--out", c, *common).exit_code == 0
    assert a.read_bytes() == b.read_bytes() == c.read_bytes()
    help_text = invoke("surrogate", "build", "--help").stdout
    assert "--classes" in help_text and "--seeds" not in help_text


@pytest.mark.parametrize("args,message", [
    (["--classes", 3, "--seeds", 4], "--seeds (the old name of --classes) 4 and --classes 3 disagree"),
    (["--extra", "other.t7b"], "two inputs"),
])
def test_build_refuses_conflicting_spellings(extra, tmp_path, args, message):
    result = invoke("surrogate", "build", extra, "--out", tmp_path / "s.t7b", "--quiet", *args)
    assert result.exit_code != 0 and message in result.stderr
    assert not (tmp_path / "s.t7b").exists()


@pytest.mark.parametrize("args,preset,flip,color", [
    ([], "report", 0.0, False),
    (["--preset", "exemplar"], "exemplar", 0.5, True),
    (["--preset", "exemplar", "--no-color", "--flip", 0.25], "exemplar", 0.25, False),
    (["--color"], "report", 0.0, True),
])
def test_build_preset_and_overrides_reach_the_file_and_record(extra, tmp_path, args, preset, flip, color):
    out = tmp_path / "s.t7b"
    result = invoke("surrogate", "build", extra, "--out", out, "--classes", 4, "--per-seed", 50,
                    "--window", 24, 40, "--quiet", *args)
    assert result.exit_code == 0, result.output
    obj = t7.load(out)
    assert obj["preset"] == preset
    ranges = json.loads((tmp_path / "s.run.json").read_text())["config"]["ranges"]
    assert ranges["flip"] == flip and ranges["color"] is color
    flips = obj["transforms"][:, 4]
    assert abs(float(flips.mean()) - flip) < 0.15 and (flips.sum() > 0) == (flip > 0)
    hue = obj["transforms"][:, 5]
    assert bool((hue != 0).any()) is color
