"""Every command that reads an input file, given a bad one: a non-t7 file, an
empty file, a truncated t7 and a well-formed t7 of the wrong layout. Each must print exactly
one line starting `Error:`, exit with status 1, show no traceback, and write nothing: the
working folder (where every output goes) stays empty and the inputs are untouched."""

from __future__ import annotations

import io
import os

import pytest
import torch
from click.testing import CliRunner

from luatorch_port import t7
from luatorch_port.cli import cli

BAD_KINDS = ["not t7", "empty", "truncated t7", "wrong layout"]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """Small good inputs: a 16 px course sample, a model trained on it with its norm.t7, a CSV."""
    root = tmp_path_factory.mktemp("good")
    data = root / "data"
    result = CliRunner().invoke(cli, ["data", "sample", str(data), "--image-size", "16",
                                      "--per-class", "6", "--quiet"])
    assert result.exit_code == 0, result.output
    from luatorch_port.data import load_split
    model_dir = root / "model"  # model.net and norm.t7, as a2 train writes them
    result = CliRunner().invoke(cli, ["train", "--train", str(data / "train.t7b"), "--val",
                                      str(data / "val.t7b"), "--model", "8c5-16f", "-b", "2",
                                      "--epochs", "1", "--out", str(model_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    n_test = len(load_split(data / "test.t7b"))
    csv = root / "pred.csv"
    csv.write_text("Id,Prediction\n" + "".join(f"{i},1\n" for i in range(1, n_test + 1)))
    return {"TRAIN": str(data / "train.t7b"), "VAL": str(data / "val.t7b"),
            "TEST": str(data / "test.t7b"), "EXTRA": str(data / "extra.t7b"),
            "MODEL": str(model_dir / "model.net"), "NORM": str(model_dir / "norm.t7"),
            "CSV": str(csv), "root": root}


def _bad_bytes(kind, good):
    if kind == "not t7":
        return b"hello, this is a text file, not a t7 file\n" * 3
    if kind == "empty":
        return b""
    if kind == "truncated t7":
        data = open(good["VAL"], "rb").read()
        return data[: len(data) // 2]
    return t7.dumps({"foo": torch.zeros(3), "bar": "not the layout anything expects"})


# Every command that reads a t7 input, with BAD in the place of one input. Outputs go to
# relative paths, i.e. into the (empty) working folder.
COMMANDS = [
    ("t7 show", ["t7", "show", "BAD"]),
    ("t7 convert", ["t7", "convert", "BAD", "out.pt"]),
    ("data info", ["data", "info", "BAD"]),
    ("data preview", ["data", "preview", "BAD", "--out", "p.png"]),
    ("train --train", ["train", "--train", "BAD", "--val", "VAL", "--out", "run", "-b", "2",
                       "--epochs", "1", "--model", "8c5-16f", "--quiet"]),
    ("train --val", ["train", "--train", "TRAIN", "--val", "BAD", "--out", "run", "-b", "2",
                     "--epochs", "1", "--model", "8c5-16f", "--quiet"]),
    ("predict MODEL", ["predict", "BAD", "TEST", "--norm", "NORM", "--out", "p.csv", "--quiet"]),
    ("predict TEST", ["predict", "MODEL", "BAD", "--out", "p.csv", "--quiet"]),
    ("predict --norm", ["predict", "MODEL", "TEST", "--norm", "BAD", "--out", "p.csv",
                        "--quiet"]),
    ("score --test", ["score", "CSV", "--test", "BAD", "--out", "s.json"]),
    ("surrogate build", ["surrogate", "build", "BAD", "--out", "s.t7b", "--seeds", "2",
                         "--per-seed", "2", "--patch", "8", "--window", "8", "12", "--quiet"]),
    ("surrogate train", ["surrogate", "train", "BAD", "--out", "srun", "--model", "8c5-16f",
                         "-b", "2", "--quiet"]),
    ("surrogate eval", ["surrogate", "eval", "BAD", "--train", "TRAIN", "--test", "TEST",
                        "--no-val", "--out", "sp.csv", "--quiet"]),
    ("kmeans fit", ["kmeans", "fit", "--data", "BAD", "--out", "c.t7", "--k", "2",
                    "--patches", "20", "--quiet"]),
    ("kmeans eval", ["kmeans", "eval", "--centroids", "BAD", "--train", "TRAIN", "--test",
                     "TEST", "--predictions", "kp.csv", "--svm-out", "svm.t7", "--quiet"]),
    ("pseudolabel train", ["pseudolabel", "train", "--train", "BAD", "--val", "VAL", "--extra",
                           "EXTRA", "--out", "prun", "--quiet"]),
    ("pseudolabel train --extra", ["pseudolabel", "train", "--train", "TRAIN", "--val", "VAL",
                                   "--extra", "BAD", "--out", "prun", "--quiet"]),
    ("visualize filters", ["visualize", "filters", "BAD", "--out", "f.png"]),
    ("visualize centroids", ["visualize", "centroids", "BAD", "--out", "c.png"]),
    ("visualize augmentations", ["visualize", "augmentations", "--data", "BAD", "--out",
                                 "a.png"]),
    ("tsne", ["tsne", "BAD", "--out", "t.png"]),
    ("backprop batchnorm", ["backprop", "batchnorm", "--from-t7", "BAD"]),
    ("backprop dag", ["backprop", "dag", "--from-t7", "BAD"]),
]


def _tree(path):
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, path)] = os.path.getsize(full) if name in filenames else -1
    return out


def _run(args, work, monkeypatch):
    monkeypatch.chdir(work)
    return CliRunner().invoke(cli, args)


def _assert_one_line_error(result, what):
    assert result.exit_code == 1, (what, result.exit_code, result.output)
    assert "Traceback" not in result.output, (what, result.output)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, (what, result.stderr)
    assert result.stderr.rstrip("\n").splitlines()[-1] == errors[0], (what, result.stderr)
    assert isinstance(result.exception, SystemExit), (what, repr(result.exception))


@pytest.mark.parametrize("kind", BAD_KINDS)
@pytest.mark.parametrize("name,args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_bad_t7_input(name, args, kind, good, tmp_path, monkeypatch):
    if name == "t7 show" and kind == "wrong layout":
        pytest.skip("t7 show shows any well-formed t7 file: there is no wrong layout for it")
    bad = tmp_path / "in" / "bad.t7"
    bad.parent.mkdir()
    bad.write_bytes(_bad_bytes(kind, good))
    work = tmp_path / "work"
    work.mkdir()
    inputs_before = _tree(good["root"])
    argv = [str(bad) if a == "BAD" else good.get(a, a) if a.isupper() else a for a in args]
    result = _run(argv, work, monkeypatch)
    _assert_one_line_error(result, f"{name} on {kind}")
    assert _tree(work) == {}, f"{name} on {kind} left {sorted(_tree(work))}"
    assert _tree(good["root"]) == inputs_before
    assert sorted(os.listdir(bad.parent)) == ["bad.t7"]


def test_report_on_a_data_dir_with_a_bad_split(good, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "val", "test", "extra"):
        (data / f"{split}.t7b").write_bytes(open(good[split.upper()], "rb").read())
    (data / "train.t7b").write_bytes(b"")
    work = tmp_path / "work"
    work.mkdir()
    result = _run(["report", str(data), "--out", "rep", "--budget", "quick"], work, monkeypatch)
    _assert_one_line_error(result, "report")
    assert _tree(work) == {}


# -- text inputs given binary bytes, and .pt inputs that are not models ---------------------

def _random_bytes(n=600):
    return bytes(torch.randint(0, 256, (n,), generator=torch.Generator().manual_seed(5),
                               dtype=torch.uint8).tolist())


PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(40)


@pytest.mark.parametrize("content", [PNG_HEAD, _random_bytes(), b""], ids=["png", "random", "empty"])
def test_score_on_a_binary_or_empty_csv(content, good, tmp_path, monkeypatch):
    csv = tmp_path / "some.png"
    csv.write_bytes(content)
    work = tmp_path / "work"
    work.mkdir()
    result = _run(["score", str(csv), "--test", good["TEST"]], work, monkeypatch)
    _assert_one_line_error(result, "score")
    assert str(csv) in result.stderr


@pytest.mark.parametrize("content", [_random_bytes(), b""], ids=["random", "empty"])
def test_curves_on_a_binary_or_empty_log(content, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    (run / "val.log").write_bytes(content)
    work = tmp_path / "work"
    work.mkdir()
    result = _run(["visualize", "curves", str(run), "--out", "c.png"], work, monkeypatch)
    _assert_one_line_error(result, "curves")
    assert "val.log" in result.stderr
    assert _tree(work) == {}


@pytest.mark.parametrize("content", [_random_bytes(), b"", b"PK\x03\x04" + bytes(30)],
                         ids=["random", "empty", "truncated zip"])
def test_t7_convert_of_a_pt_that_is_not_a_model(content, tmp_path, monkeypatch):
    src = tmp_path / "in.pt"
    src.write_bytes(content)
    work = tmp_path / "work"
    work.mkdir()
    result = _run(["t7", "convert", str(src), "out.net"], work, monkeypatch)
    _assert_one_line_error(result, "t7 convert")
    assert "not a readable .pt file" in result.stderr and "Aborted" not in result.output
    assert _tree(work) == {}


def test_t7_convert_of_a_model_that_contains_itself(tmp_path, monkeypatch):
    from luatorch_port.nn import build_model
    from luatorch_port.nn.convert import to_t7
    lua = to_t7(build_model("8c5-16f", input_size=16))
    lua.fields["modules"][1] = lua  # the Sequential is its own second module
    conv = to_t7(build_model("8c5-16f", input_size=16))
    conv.modules[0].fields["weight"] = conv.modules[0]  # a module is its own weight
    for i, obj in enumerate([lua, conv]):
        src = tmp_path / f"cycle{i}.net"
        t7.save(obj, src)
        work = tmp_path / f"work{i}"
        work.mkdir()
        result = _run(["t7", "convert", str(src), "out.pt"], work, monkeypatch)
        _assert_one_line_error(result, "t7 convert cycle")
        assert _tree(work) == {}
    assert "contains itself (it is also (root))" in CliRunner().invoke(
        cli, ["t7", "convert", str(tmp_path / "cycle0.net"), str(tmp_path / "o.pt")]).stderr


def test_the_bad_inputs_are_what_they_claim(good):
    for kind in ("not t7", "empty", "truncated t7"):
        with pytest.raises(t7.T7FormatError):
            t7.load(io.BytesIO(_bad_bytes(kind, good)))
    assert set(t7.load(io.BytesIO(_bad_bytes("wrong layout", good)))) == {"foo", "bar"}


# -- the ascii overflow reproducers through the commands that read t7 ---------------------

from helpers import ASCII_REPROS as REPROS  # noqa: E402  (the bytes, rebuilt; no ../shared needed)

REPRO_COMMANDS = [["t7", "show", "BAD"], ["data", "info", "BAD"],
                  ["visualize", "centroids", "BAD", "--out", "c.png"],
                  ["kmeans", "fit", "--data", "BAD", "--out", "c.t7", "--quiet"]]


@pytest.mark.parametrize("args", REPRO_COMMANDS, ids=[" ".join(a[:2]) for a in REPRO_COMMANDS])
@pytest.mark.parametrize("name,data,offset,value,fits", REPROS, ids=[r[0] for r in REPROS])
def test_ascii_reproducers_through_the_cli(args, name, data, offset, value, fits, tmp_path,
                                           monkeypatch):
    bad = tmp_path / name
    bad.write_bytes(data)
    work = tmp_path / "work"
    work.mkdir()
    result = _run([str(bad) if a == "BAD" else a for a in args], work, monkeypatch)
    _assert_one_line_error(result, f"{' '.join(args[:2])} on {name}")
    assert f"offset {offset}: " in result.stderr and f"got {value}" in result.stderr
    assert _tree(work) == {}
