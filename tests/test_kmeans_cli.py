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
    rec = json.loads(out.with_name("centroids.run.json").read_text())
    assert rec["command"] == "kmeans fit" and rec["seed"] == 3
    assert rec["config"]["k"] == 40 and len(rec["results"]["objective"]) == 5
    from luatorch_port.kmeans.coates import FIT_PRECISION
    assert rec["config"]["precision"] == FIT_PRECISION
    stages = rec["results"]["stage_seconds"]
    assert list(stages) == ["load", "patches", "normalize", "whiten", "setup", "iterations", "final",
                           "write"]
    assert all(v >= 0 for v in stages.values()) and sum(stages.values()) <= rec["results"]["seconds"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fit_precision_option(sample, tmp_path, precision):
    out = tmp_path / "c.t7"
    res = CliRunner().invoke(cli, ["kmeans", "fit", "--extra", str(sample / "extra.t7b"),
                                   "--out", str(out), "--k", "8", "--patches", "1000",
                                   "--iterations", "2", "--precision", precision, "--quiet"])
    assert res.exit_code == 0, res.output
    rec = json.loads(out.with_name("c.run.json").read_text())
    assert rec["config"]["precision"] == precision
    assert len(rec["results"]["rescored"]) == (3 if precision == "bf16" else 0)
    bad = CliRunner().invoke(cli, ["kmeans", "fit", "--extra", str(sample / "extra.t7b"),
                                   "--out", str(out), "--precision", "fp16"])
    assert bad.exit_code == 2 and "fp16" in bad.stderr


def _eval(sample, centroids, *args):
    return CliRunner().invoke(cli, ["kmeans", "eval", "--centroids", str(centroids),
                                    "--train", str(sample / "train.t7b"),
                                    "--test", str(sample / "test.t7b"), "--device", "cpu",
                                    "--quiet", *args])


def test_eval_chooses_c_on_val(sample, fitted):
    from luatorch_port.kmeans.svm import C_GRID
    out, _ = fitted
    csv = sample / "pred.csv"
    res = _eval(sample, out, "--val", str(sample / "val.t7b"), "--predictions", str(csv))
    assert res.exit_code == 0, res.output
    rec = json.loads(out.with_name("centroids.svm.run.json").read_text())["results"]
    assert rec["c_source"] == "val" and rec["refit"] is True
    curve = rec["val_curve"]
    assert [p["C"] for p in curve] == list(C_GRID)
    best = max(p["val_accuracy"] for p in curve)
    assert rec["C"] == max(p["C"] for p in curve if p["val_accuracy"] == best)
    assert rec["val_accuracy"] == best
    # the whole curve is printed, the chosen C marked
    for p in curve:
        assert f"{100 * p['val_accuracy']:7.2f}" in res.stdout
    assert "<- chosen" in res.stdout and "refit on train + val" in res.stdout
    acc = rec["test_accuracy"]
    assert acc > 0.6  # chance is 0.1
    assert f"test accuracy: {100 * acc:.2f}%" in res.stdout
    n_test = rec["test_images"]
    assert len(read_predictions(csv, n_expected=n_test)) == n_test
    svm = t7.load(out.with_name("centroids.svm.t7"))
    assert svm["W"].shape == (160, 10) and svm["b"].shape == (10,)
    assert float(svm["C"]) == rec["C"]


def test_eval_no_refit_trains_on_train_only(sample, fitted, tmp_path):
    out, _ = fitted
    res = _eval(sample, out, "--val", str(sample / "val.t7b"), "--no-refit",
                "--svm-out", str(tmp_path / "svm.t7"))
    assert res.exit_code == 0, res.output
    assert "trained on train only" in res.stdout
    assert json.loads((tmp_path / "svm.run.json").read_text())["results"]["refit"] is False


def test_eval_c100_reproduces_coates(sample, fitted, tmp_path):
    """--C 100: one SVM at Coates' C on the training split alone, the val split unused."""
    import torch

    from luatorch_port.data import load_split
    from luatorch_port.kmeans import CoatesKMeans, fit_classifier
    out, _ = fitted
    res = _eval(sample, out, "--C", "100", "--no-val", "--svm-out", str(tmp_path / "svm.t7"))
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "svm.run.json").read_text())["results"]
    assert (rec["C"], rec["c_source"], rec["val_curve"], rec["refit"]) == (100.0, "fixed", [], False)
    model = CoatesKMeans.load(out)
    tr = load_split(sample / "train.t7b")
    clf = fit_classifier(model.transform(tr.images), tr.labels, C=100.0, n_classes=10)
    assert torch.allclose(t7.load(tmp_path / "svm.t7")["W"], clf.svm.coef_, atol=1e-6)


def test_eval_no_val_falls_back_to_coates_c(sample, fitted, tmp_path):
    out, _ = fitted
    res = _eval(sample, out, "--no-val", "--svm-out", str(tmp_path / "svm.t7"))
    assert res.exit_code == 0, res.output
    assert "--no-val: no split to choose C on, using Coates' fixed C = 100" in res.stdout
    rec = json.loads((tmp_path / "svm.run.json").read_text())["results"]
    assert (rec["C"], rec["c_source"], rec["val_accuracy"]) == (100.0, "fixed", None)


@pytest.mark.parametrize("args, message", [
    (["--C", "abc"], "neither 'auto' nor a number"),
    (["--C", "0"], "C=0 should be > 0"),
    (["--C", "-3"], "C=-3 should be > 0"),
    (["--val", "no-such.t7b"], "--val no-such.t7b: no such file"),
])
def test_eval_bad_c_and_val(sample, fitted, args, message):
    out, _ = fitted
    res = _eval(sample, out, *args)
    assert res.exit_code != 0
    assert message in res.stderr and "Traceback" not in res.output


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
                                   "--test", str(sample / "val.t7b"), "--no-val", "--quiet"])
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


@pytest.fixture(scope="module")
def sample96(tmp_path_factory):
    from luatorch_port.data import build_sample
    out = tmp_path_factory.mktemp("sample96")
    build_sample(out, seed=2, per_class=18)
    return out


def test_fit_report_preset_with_overrides(sample96, tmp_path):
    out = tmp_path / "report.t7"
    res = CliRunner().invoke(cli, ["kmeans", "fit", "--preset", "report", "--extra",
                                   str(sample96 / "extra.t7b"), "--out", str(out), "--k", "8",
                                   "--limit", "30", "--iterations", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    table = t7.load(out)
    # the report's patch and grid, the explicit --k / --limit / --iterations
    assert table["centroids"].shape == (8, 3 * 22 * 22)
    assert (table["rfSize"], table["stride"], table["imageSize"]) == (22, 24, 96)
    rec = json.loads(out.with_name("report.run.json").read_text())
    assert rec["config"]["preset"] == "report" and rec["config"]["limit"] == 30
    assert rec["results"]["images"] == 30
    assert "from 480 patches of 30 images" in res.stdout      # 30 x 16 grid patches
    # eval encodes with the stored stride: 16 patches, 2x2 per quadrant -> 4k features
    res = CliRunner().invoke(cli, ["kmeans", "eval", "--centroids", str(out),
                                   "--train", str(sample96 / "train.t7b"),
                                   "--val", str(sample96 / "val.t7b"),
                                   "--test", str(sample96 / "test.t7b"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert t7.load(out.with_name("report.svm.t7"))["W"].shape == (32, 10)


def test_fit_limit_draws_images_at_random(sample, tmp_path):
    from luatorch_port.data import load_split
    from luatorch_port.kmeans import CoatesKMeans
    extra = load_split(sample / "extra.t7b")
    out = tmp_path / "c.t7"
    args = ["kmeans", "fit", "--extra", str(sample / "extra.t7b"), "--out", str(out), "--k", "4",
            "--patches", "40", "--iterations", "1", "--limit", "10", "--seed", "5",
            "--init", "patches", "--no-whiten", "--image-size", "32", "--quiet"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    got = CoatesKMeans.load(out).centroids_
    # the same run on the first 10 images gives other centroids; on the seeded random pick, these
    import torch
    from luatorch_port.kmeans.run import choose_images
    gen = torch.Generator().manual_seed(5)
    pick = choose_images(len(extra), 10, gen)
    assert not torch.equal(pick, torch.arange(10))
    model = CoatesKMeans(k=4, n_patches=40, iterations=1, whiten=False, init="patches")
    same = model.fit(extra.images[pick], generator=gen).centroids_
    assert torch.allclose(got, same)


def test_as_typed_in_a_course_folder(sample, tmp_path, monkeypatch):
    """`a2 kmeans fit` and `a2 kmeans eval` with the card's data/ folder and no file options."""
    (tmp_path / "data").mkdir()
    for split in ("train", "val", "test", "extra"):
        (tmp_path / "data" / f"{split}.t7b").symlink_to(sample / f"{split}.t7b")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["kmeans", "fit", "--k", "8", "--patches", "400",
                                   "--iterations", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "centroids.t7").exists()
    res = CliRunner().invoke(cli, ["kmeans", "eval", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "<- chosen" in res.stdout and (tmp_path / "centroids.svm.t7").exists()


def test_fit_old_data_option_still_works(sample, tmp_path):
    res = CliRunner().invoke(cli, ["kmeans", "fit", "--data", str(sample / "extra.t7b"),
                                   "--out", str(tmp_path / "c.t7"), "--k", "4", "--patches", "40",
                                   "--iterations", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "--data" not in CliRunner().invoke(cli, ["kmeans", "fit", "--help"]).stdout


def test_fit_missing_extra_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["kmeans", "fit", "--quiet"])
    assert res.exit_code == 1
    assert res.stderr.startswith("Error: --extra data/extra.t7b: no such file")
