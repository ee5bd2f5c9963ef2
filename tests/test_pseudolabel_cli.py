"""`a2 pseudolabel train --learner cnn` (part 2.3) end to end on a tiny copy of the sample data."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from luatorch_port import t7
from luatorch_port.cli import cli
from luatorch_port.pseudolabel.run import PL_LOG_NAMES
from luatorch_port.train import read_log

SPEC = "4c5-8f"
SIZE = 16


@pytest.fixture(scope="module")
def sample_dir(sample_data):
    return sample_data(image_size=SIZE, per_class=18)  # 40 train / 10 val / 40 test / 90 extra


def _common(sample_dir, out, epochs):
    return ["--train", str(sample_dir / "train.t7b"), "--val", str(sample_dir / "val.t7b"),
            "--model", SPEC, "--epochs", str(epochs), "-b", "8", "--learningRate", "0.05",
            "--out", str(out), "--device", "cpu", "--quiet"]


def _pl(sample_dir, out, epochs, *extra_args):
    args = ["pseudolabel", "train", *_common(sample_dir, out, epochs),
            "--extra", str(sample_dir / "extra.t7b"), "--unlabelled-per-batch", "8",
            "--t1", "1", "--t2", "2", *extra_args]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result


def _weights(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def run_dir(sample_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("pl") / "run"
    _pl(sample_dir, out, 3, "--extra-labels", str(sample_dir / "extra_labels.t7"),
        "--threshold", "0.2")
    return out


def test_run_folder_and_pseudolabel_log(run_dir):
    for name in ("val.log", "model.net", "norm.t7", "checkpoint.pt", "confusion.txt",
                 "pseudolabel.log", "run.json"):
        assert (run_dir / name).is_file(), name
    names, rows = read_log(run_dir / "pseudolabel.log")
    assert names == list(PL_LOG_NAMES) and len(rows) == 3
    # alpha at the last batch of each epoch (4 batches of 8 of 40 images, last dropped: 4
    # per epoch -> t = epoch - 1 + 3/4), T1 = 1, T2 = 2, alpha_f = 3
    assert [r[0] for r in rows] == pytest.approx([0.0, 2.25, 3.0])
    for _, confident, acc, _ in rows:
        assert 0 <= confident <= 100 and 0 <= acc <= 100
    record = json.loads((run_dir / "run.json").read_text())
    assert record["command"] == "pseudolabel train" and record["config"]["learner"] == "cnn"
    assert record["config"]["threshold"] == 0.2 and record["config"]["flip"] is True
    history = record["results"]["history"]
    assert [h["pl_acc"] for h in history] == pytest.approx([r[2] for r in rows], abs=1e-3)


def test_pseudolabel_accuracy_is_that_of_the_saved_network(run_dir, sample_dir):
    from luatorch_port.data import load_split
    from luatorch_port.nn import from_t7
    from luatorch_port.train.provider import normalize
    from luatorch_port.pseudolabel.run import MONITOR_SIZE, load_extra_labels
    from luatorch_port.train.provider import load_norm

    model = from_t7(t7.load(run_dir / "model.net")).eval()
    extra = load_split(sample_dir / "extra.t7b")
    assert len(extra) < MONITOR_SIZE  # the monitor set is the whole extra split here
    true = load_extra_labels(sample_dir / "extra_labels.t7", len(extra), 10)
    with torch.no_grad():
        pred = model(normalize(extra.images, load_norm(run_dir / "norm.t7"))).argmax(1)
    _, rows = read_log(run_dir / "pseudolabel.log")
    assert rows[-1][2] == pytest.approx(100 * float((pred == true).float().mean()), abs=1e-3)


@pytest.mark.parametrize("warmup, equal", [(2, True), (1, False)])
def test_warmup_is_supervised_training(sample_dir, tmp_path, warmup, equal):
    """With --no-flip, epochs 1..warmup are exactly `a2 train` (same init, order, dropout)."""
    base = tmp_path / "train"
    result = CliRunner().invoke(cli, ["train", *_common(sample_dir, base, 2), "--no-flip"])
    assert result.exit_code == 0, result.output
    pl = tmp_path / "pl"
    _pl(sample_dir, pl, 2, "--no-flip", "--warmup", str(warmup))
    assert _same_weights(_weights(base), _weights(pl)) is equal


def test_resume_matches_an_uninterrupted_run(sample_dir, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    labels = ("--extra-labels", str(sample_dir / "extra_labels.t7"), "--warmup", "1")
    _pl(sample_dir, straight, 3, *labels)
    _pl(sample_dir, resumed, 1, *labels)
    _pl(sample_dir, resumed, 3, *labels, "--resume")
    assert _same_weights(_weights(straight), _weights(resumed))
    assert (straight / "pseudolabel.log").read_text() == (resumed / "pseudolabel.log").read_text()


@pytest.mark.parametrize("args, message", [
    (["--features", "kmeans"], "--centroids"),
    (["--t1", "5", "--t2", "1"], "t2=1.0 should be >= t1=5.0"),
    (["--threshold", "1.5"], "threshold=1.5"),
    (["--unlabelled-per-batch", "0"], "unlabelled_per_batch=0"),
    (["--test", "TEST"], "--test and --predictions apply to --learner kmeans only"),
])
def test_bad_options_are_one_line_errors(sample_dir, tmp_path, args, message):
    args = [str(sample_dir / "test.t7b") if a == "TEST" else a for a in args]
    result = CliRunner().invoke(cli, ["pseudolabel", "train", *_common(sample_dir, tmp_path / "r", 1),
                                      "--extra", str(sample_dir / "extra.t7b"), *args])
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output


def test_wrong_extra_labels_are_an_error(sample_dir, tmp_path):
    short = tmp_path / "short.t7"
    t7.save(torch.arange(1, 11), short)
    result = CliRunner().invoke(cli, ["pseudolabel", "train", *_common(sample_dir, tmp_path / "r", 1),
                                      "--extra", str(sample_dir / "extra.t7b"),
                                      "--extra-labels", str(short)])
    assert result.exit_code == 1
    assert "10 labels for 90 unlabelled images" in result.stderr


def test_labelled_file_as_extra_is_an_error(sample_dir, tmp_path):
    result = CliRunner().invoke(cli, ["pseudolabel", "train", *_common(sample_dir, tmp_path / "r", 1),
                                      "--extra", str(sample_dir / "val.t7b")])
    assert result.exit_code == 1 and result.stderr.startswith("Error:")


@pytest.mark.parametrize("default", ["[default: cnn]", "[default: 3.0]", "[default: 64]",
                                     "[default: epochs]"])
def test_help_shows_defaults(default):
    result = CliRunner().invoke(cli, ["pseudolabel", "train", "--help"])
    assert result.exit_code == 0
    assert default in " ".join(result.stdout.split())


# --- part 2.4: --learner kmeans -------------------------------------------------------------

@pytest.fixture(scope="module")
def centroids(sample_dir):
    from luatorch_port.data import load_split
    from luatorch_port.kmeans import CoatesKMeans
    path = sample_dir / "centroids.t7"
    extra = load_split(sample_dir / "extra.t7b")
    CoatesKMeans(k=8, rf=4, n_patches=2000, iterations=5, image_size=SIZE).fit(
        extra.images, generator=torch.Generator().manual_seed(0)).save(path)
    return path


@pytest.fixture(scope="module")
def kmeans_run(sample_dir, centroids, tmp_path_factory):
    out = tmp_path_factory.mktemp("st") / "run"
    result = CliRunner().invoke(cli, [
        "pseudolabel", "train", "--learner", "kmeans", "--centroids", str(centroids),
        "--train", str(sample_dir / "train.t7b"), "--val", str(sample_dir / "val.t7b"),
        "--extra", str(sample_dir / "extra.t7b"),
        "--extra-labels", str(sample_dir / "extra_labels.t7"), "--test", str(sample_dir / "test.t7b"),
        "--rounds", "2", "--per-class", "3", "--C", "100", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out, result


def test_kmeans_selftraining_chooses_C_on_val_by_default(sample_dir, centroids, tmp_path):
    from luatorch_port.kmeans.svm import C_GRID
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "pseudolabel", "train", "--learner", "kmeans", "--centroids", str(centroids),
        "--train", str(sample_dir / "train.t7b"), "--val", str(sample_dir / "val.t7b"),
        "--extra", str(sample_dir / "extra.t7b"), "--rounds", "1", "--per-class", "2",
        "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "run.json").read_text())["results"]
    assert res["c_source"] == "val" and [p["C"] for p in res["c_curve"]] == list(C_GRID)
    best = max(res["c_curve"], key=lambda p: (p["val_accuracy"], p["C"]))
    assert res["C"] == best["C"]
    assert f"C = {res['C']:g}, chosen on val" in result.stdout
    # round 0 is the plain pipeline at that C: its val accuracy is the curve's
    assert res["rounds"][0]["val_accuracy"] == pytest.approx(100 * best["val_accuracy"], abs=1e-3)


def test_kmeans_selftraining_run_folder(kmeans_run, sample_dir):
    from luatorch_port.pseudolabel.run import ROUNDS_LOG_NAMES, load_extra_labels
    out, result = kmeans_run
    names, rows = read_log(out / "rounds.log")
    assert names == list(ROUNDS_LOG_NAMES)
    assert [r[:3] for r in rows] == [[0, 0, 0], [1, 30, 30], [2, 30, 60]]
    pl = t7.load(out / "pseudolabels.t7")
    index, label, rnd = pl["index"], pl["label"], pl["round"]
    assert index.numel() == 60 and index.unique().numel() == 60
    assert int(index.min()) >= 1 and int(index.max()) <= 90          # 1-based rows of extra
    assert rnd.tolist() == [1] * 30 + [2] * 30
    assert all(int((label[rnd == r] == c).sum()) == 3 for r in (1, 2) for c in range(1, 11))
    true = load_extra_labels(sample_dir / "extra_labels.t7", 90, 10)
    right = (label - 1 == true[index - 1]).float()
    assert rows[1][3] == pytest.approx(100 * float(right[:30].mean()), abs=1e-3)
    assert rows[2][4] == pytest.approx(100 * float(right.mean()), abs=1e-3)
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["learner"] == "kmeans" and len(record["results"]["rounds"]) == 3
    assert record["results"]["rounds"][2]["val_accuracy"] == pytest.approx(rows[2][5], abs=1e-3)
    assert "after 2 rounds, 60 pseudo-labels" in result.stdout
    lines = (out / "predictions.csv").read_text().splitlines()
    assert lines[0] == "Id,Prediction" and len(lines) == 41


def test_kmeans_predictions_go_where_asked(sample_dir, centroids, tmp_path):
    out, csv = tmp_path / "run", tmp_path / "sub" / "pl.csv"
    result = CliRunner().invoke(cli, [
        "pseudolabel", "train", "--learner", "kmeans", "--centroids", str(centroids),
        "--train", str(sample_dir / "train.t7b"), "--no-val", "--extra", str(sample_dir / "extra.t7b"),
        "--test", str(sample_dir / "test.t7b"), "--predictions", str(csv),
        "--rounds", "1", "--per-class", "2", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(csv.read_text().splitlines()) == 41 and not (out / "predictions.csv").exists()
    assert json.loads((out / "run.json").read_text())["config"]["predictions"] == str(csv)


def test_kmeans_svm_table_scores_like_the_last_round(kmeans_run, sample_dir, centroids):
    from luatorch_port.data import load_split
    from luatorch_port.kmeans import Classifier, CoatesKMeans
    out, _ = kmeans_run
    clf = Classifier.from_state_dict(t7.load(out / "svm.t7"))
    val = load_split(sample_dir / "val.t7b")
    pred = clf.predict(CoatesKMeans.load(centroids).transform(val.images))
    _, rows = read_log(out / "rounds.log")
    assert rows[-1][5] == pytest.approx(100 * float((pred == val.labels).float().mean()), abs=1e-3)


def test_kmeans_refit_on_train_val_and_pseudo_labels_by_default(sample_dir, centroids, tmp_path):
    from luatorch_port.kmeans import Classifier
    runs = {}
    for flag in ("--refit", "--no-refit"):
        out = tmp_path / flag
        result = CliRunner().invoke(cli, [
            "pseudolabel", "train", "--learner", "kmeans", "--centroids", str(centroids),
            "--train", str(sample_dir / "train.t7b"), "--val", str(sample_dir / "val.t7b"),
            "--extra", str(sample_dir / "extra.t7b"), "--rounds", "1", "--per-class", "3",
            "--out", str(out), "--quiet"] + ([flag] if flag == "--no-refit" else []))
        assert result.exit_code == 0, result.output
        record = json.loads((out / "run.json").read_text())
        assert record["config"]["refit"] is (flag == "--refit") and record["results"]["refit"] is (flag == "--refit")
        runs[flag] = Classifier.from_state_dict(t7.load(out / "svm.t7"))
    # the refit classifier's standardiser saw train + val + the pseudo-labels, not train alone
    assert not torch.allclose(runs["--refit"].standardizer.mean_, runs["--no-refit"].standardizer.mean_)


def test_kmeans_without_centroids_file_is_an_error(sample_dir, tmp_path):
    result = CliRunner().invoke(cli, [
        "pseudolabel", "train", "--features", "kmeans", "--centroids", str(tmp_path / "none.t7"),
        "--train", str(sample_dir / "train.t7b"), "--extra", str(sample_dir / "extra.t7b"),
        "--no-val", "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 1 and "none.t7" in result.stderr


@pytest.mark.parametrize("value, message", [
    (torch.tensor([1, 2, 11]), "labels should be 1..10, found 1..11"),
    (torch.tensor([0, 2, 3]), "labels should be 1..10, found 0..3"),
    (torch.tensor([1.0, 2.0, 3.0]), "1-D integer tensor"),
    ({"labels": torch.tensor([1, 2, 3])}, "1-D integer tensor"),
])
def test_extra_labels_file_is_checked(tmp_path, value, message):
    from luatorch_port.util.errors import A2Error
    from luatorch_port.pseudolabel.run import load_extra_labels
    path = tmp_path / "labels.t7"
    t7.save(value, path)
    with pytest.raises(A2Error, match=message):
        load_extra_labels(path, 3, 10)
