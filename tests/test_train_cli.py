"""`a2 train` -> `a2 predict` -> `a2 score` on a tiny copy of the embedded sample data."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from luatorch_port import t7
from luatorch_port.cli import cli
from luatorch_port.nn import build_model, from_t7
from luatorch_port.train import read_log

SPEC = "4c5-8f"


@pytest.fixture(scope="module")
def sample_dir(sample_data):
    return sample_data(image_size=32, per_class=18)  # 40 train / 10 val / 40 test / 90 extra


@pytest.fixture(scope="module")
def run_dir(sample_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    result = CliRunner().invoke(cli, [
        "train", "--train", str(sample_dir / "train.t7b"), "--val", str(sample_dir / "val.t7b"),
        "--model", SPEC, "--epochs", "2", "-b", "8", "--learningRate", "0.05",
        "--save-every", "1", "--out", str(out), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("command, default", [
    ("train", "[default: 64]"), ("predict", "[default: predictions.csv]"),
    ("score", "[default: data/test.t7b]")])
def test_help_shows_defaults(command, default):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert default in " ".join(result.stdout.split())


def test_train_writes_the_run_folder(run_dir):
    for name in ("val.log", "model.net", "model.pt", "norm.t7", "checkpoint.pt", "confusion.txt", "run.json"):
        assert (run_dir / name).is_file(), name
    names, rows = read_log(run_dir / "val.log")
    assert names == ["% mean class accuracy (train set)", "% mean class accuracy (val set)"]
    assert len(rows) == 2 and all(0 <= v <= 100 for row in rows for v in row)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["command"] == "train" and record["seed"] == 1
    assert record["config"]["batch_size"] == 8 and len(record["results"]["history"]) == 2


def test_model_net_loads_in_lua_form_with_identical_outputs(run_dir):
    lua_model = from_t7(t7.load(run_dir / "model.net"))
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    reference = build_model(SPEC, n_classes=10, input_size=32)
    reference.load_state_dict(state)
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(lua_model.eval()(x), reference.eval()(x))


@pytest.mark.parametrize("model_file", ["model.net", "model.pt"])
def test_predict_then_score_round_trip(run_dir, sample_dir, tmp_path, model_file):
    csv = tmp_path / "pred.csv"
    result = CliRunner().invoke(cli, ["predict", str(run_dir / model_file),
                                      str(sample_dir / "test.t7b"), "--out", str(csv), "--quiet"])
    assert result.exit_code == 0, result.output
    lines = csv.read_text().splitlines()
    assert lines[0] == "Id,Prediction" and len(lines) == 41
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(1, 41))
    assert all(1 <= int(line.split(",")[1]) <= 10 for line in lines[1:])
    assert json.loads((tmp_path / "pred.run.json").read_text())["results"]["n"] == 40

    report = tmp_path / "score.json"
    result = CliRunner().invoke(cli, ["score", str(csv), "--test", str(sample_dir / "test.t7b"),
                                      "--out", str(report)])
    assert result.exit_code == 0, result.output
    assert "ConfusionMatrix:" in result.stdout
    scored = json.loads(report.read_text())["results"]
    assert f"accuracy {scored['accuracy'] * 100:.2f}% ({scored['n_correct']}/40)" in result.stdout
    assert sum(map(sum, scored["confusion"])) == 40


def test_score_of_a_perfect_csv_is_100(sample_dir, tmp_path):
    from luatorch_port.data import load_split
    from luatorch_port.data.kaggle import write_predictions
    csv = tmp_path / "truth.csv"
    write_predictions(csv, load_split(sample_dir / "test.t7b").labels)
    result = CliRunner().invoke(cli, ["score", str(csv), "--test", str(sample_dir / "test.t7b")])
    assert result.exit_code == 0
    assert "accuracy 100.00% (40/40)" in result.stdout


@pytest.mark.parametrize("text, message", [
    ("Id,Label\n", "pred.csv:1: header must be 'Id,Prediction'"),
    ("Id,Prediction\n1,3\n2,12\n", "pred.csv:3: Prediction 12 outside 1..10"),
    ("Id,Prediction\n1,3\n2,4\n", "38 of Ids 1..40 missing"),
])
def test_score_rejects_a_malformed_csv(sample_dir, tmp_path, text, message):
    csv = tmp_path / "pred.csv"
    csv.write_text(text)
    result = CliRunner().invoke(cli, ["score", str(csv), "--test", str(sample_dir / "test.t7b")])
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_predict_without_norm_is_a_one_line_error(run_dir, sample_dir, tmp_path):
    lonely = tmp_path / "model.net"
    lonely.write_bytes((run_dir / "model.net").read_bytes())
    result = CliRunner().invoke(cli, ["predict", str(lonely), str(sample_dir / "test.t7b"),
                                      "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 1
    assert "no norm.t7 beside" in result.stderr


def test_resume_continues_to_more_epochs(run_dir, sample_dir):
    result = CliRunner().invoke(cli, [
        "train", "--train", str(sample_dir / "train.t7b"), "--val", str(sample_dir / "val.t7b"),
        "--model", SPEC, "--epochs", "3", "-b", "8", "--learningRate", "0.05",
        "--out", str(run_dir), "--device", "cpu", "--quiet", "--resume"])
    assert result.exit_code == 0, result.output
    _, rows = read_log(run_dir / "val.log")
    assert len(rows) == 3
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 3


def test_predict_with_a_model_written_by_lua_torch(oracle, tmp_path):
    from luatorch_port.data import save_split
    from luatorch_port.nn import load_model
    from luatorch_port.train.provider import NormStats, normalize
    from luatorch_port.train.provider import save_norm
    lua_file = oracle("made", "models", "course_sample_model_width_div8.t7")
    g = torch.Generator().manual_seed(4)
    images = torch.randint(0, 256, (10, 3, 96, 96), dtype=torch.uint8, generator=g)
    save_split(tmp_path / "test.t7b", images, torch.arange(10), n_classes=10)
    stats = NormStats(mean_u=1.5, std_u=9.0, mean_v=-2.0, std_v=11.0)
    save_norm(stats, tmp_path / "stats.t7")
    csv = tmp_path / "p.csv"
    result = CliRunner().invoke(cli, ["predict", str(lua_file), str(tmp_path / "test.t7b"),
                                      "--norm", str(tmp_path / "stats.t7"), "--out", str(csv),
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    with torch.no_grad():
        expected = load_model(lua_file).eval()(normalize(images, stats)).argmax(1) + 1
    got = [int(line.split(",")[1]) for line in csv.read_text().splitlines()[1:]]
    assert got == expected.tolist()
