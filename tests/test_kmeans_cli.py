"""`a2 kmeans fit|eval` in-process on the embedded digits sample (32x32, tiny k)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from luatorch_port import t7
from luatorch_port.cli import cli
from luatorch_port.data.kaggle import read_predictions


@pytest.fixture(scope="module")
def sample(sample_data):
    return sample_data(image_size=32, per_class=None)


@pytest.fixture(scope="module")
def fitted(sample):
    out = sample / "centroids.t7"
    res = CliRunner().invoke(cli, ["kmeans", "fit", "--data", str(sample / "extra.t7b"),
                                   "--out", str(out), "--k", "40", "--patches", "8000",
                                   "--iterations", "5", "--seed", "3", "--device", "cpu",
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    return out, res


@pytest.mark.parametrize("args", [["kmeans", "--help"], ["kmeans", "fit", "--help"],
                                  ["kmeans", "eval", "--help"]])
def test_help_shows_defaults(args):
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0
    if args[-2] != "kmeans":
        assert "default" in res.stdout


def test_fit_writes_centroids_and_record(fitted):
    out, res = fitted
    assert "wrote" in res.stdout and "40 centroids of 3x6x6" in res.stdout
    table = t7.load(out)
    assert table["centroids"].shape == (40, 108)
    assert table["objective"].shape == (5,)
    rec = json.loads(out.with_name("centroids.fit.run.json").read_text())
    assert rec["command"] == "kmeans fit" and rec["seed"] == 3
    assert rec["config"]["k"] == 40 and len(rec["results"]["objective"]) == 5


def test_eval_well_above_chance(sample, fitted):
    out, _ = fitted
    csv = sample / "pred.csv"
    res = CliRunner().invoke(cli, ["kmeans", "eval", "--centroids", str(out),
                                   "--train", str(sample / "train.t7b"),
                                   "--test", str(sample / "val.t7b"), "--predictions", str(csv),
                                   "--device", "cpu", "--quiet"])
    assert res.exit_code == 0, res.output
    rec = json.loads(out.with_name("centroids.eval.run.json").read_text())
    acc = rec["results"]["test_accuracy"]
    assert acc > 0.6  # chance is 0.1
    assert f"test accuracy: {100 * acc:.2f}%" in res.stdout
    assert len(read_predictions(csv, n_expected=100)) == 100
    svm = t7.load(out.with_name("centroids.svm.t7"))
    assert svm["W"].shape == (160, 10) and svm["b"].shape == (10,)


@pytest.mark.parametrize("which, message", [
    ("train-extra", "extra"),
    ("bad-centroids", "missing field 'centroids'"),
])
def test_eval_errors_are_one_line(sample, fitted, tmp_path, which, message):
    out, _ = fitted
    train = sample / "train.t7b"
    if which == "train-extra":
        train = sample / "extra.t7b"
    else:
        out = tmp_path / "c.t7"
        t7.save({"rfSize": 6}, out)
    res = CliRunner().invoke(cli, ["kmeans", "eval", "--centroids", str(out), "--train", str(train),
                                   "--test", str(sample / "val.t7b"), "--quiet"])
    assert res.exit_code == 1
    assert res.stderr.startswith("Error:") and message in res.stderr
    assert "Traceback" not in res.output


def test_fit_rejects_more_centroids_than_patches(sample, tmp_path):
    res = CliRunner().invoke(cli, ["kmeans", "fit", "--data", str(sample / "extra.t7b"),
                                   "--out", str(tmp_path / "c.t7"), "--k", "50", "--patches", "10",
                                   "--quiet"])
    assert res.exit_code == 1
    assert "n_patches=10 should be >= k=50" in res.stderr
    assert not (tmp_path / "c.t7").exists()
