"""The CLI on hostile input: sizes too big to allocate (named limits up front, allocation errors
caught at the boundary), bad values, options checked before the first write, Ctrl-C during
training, predict on images of another size, and float64 models kept exact."""

from __future__ import annotations

import os

import pytest
import torch
from click.testing import CliRunner

from luatorch_port import t7
from luatorch_port.cli import cli


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust")
    out = {}
    for size in (16, 32):
        result = CliRunner().invoke(cli, ["data", "sample", str(root / f"d{size}"),
                                          "--image-size", str(size), "--per-class", "6",
                                          "--quiet"])
        assert result.exit_code == 0, result.output
        out[size] = root / f"d{size}"
    result = CliRunner().invoke(cli, ["surrogate", "build", str(out[16] / "extra.t7b"), "--out",
                                      str(root / "sur.t7b"), "--seeds", "3", "--per-seed", "4",
                                      "--patch", "8", "--window", "8", "12", "--quiet"])
    assert result.exit_code == 0, result.output
    out["surrogate"] = root / "sur.t7b"
    return out


def _tree(path):
    return sorted(os.path.relpath(os.path.join(d, n), path)
                  for d, dirs, files in os.walk(path) for n in dirs + files)


def _invoke(args, work, monkeypatch):
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    return CliRunner().invoke(cli, [str(a) for a in args])


def _one_error_line(result):
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# -- sizes too big to allocate: refused up front by a named limit ---------------------------

SIZE_CASES = [
    ("data sample", ["data", "sample", "o", "--image-size", "100000"], "--image-size"),
    ("surrogate build", ["surrogate", "build", "EXTRA", "--patch", "100000"], "--patch"),
    ("kmeans fit", ["kmeans", "fit", "--data", "EXTRA", "--image-size", "100000"],
     "--image-size"),
    ("visualize augmentations", ["visualize", "augmentations", "--data", "EXTRA", "--patch",
                                 "100000"], "--patch"),
    ("visualize filters", ["visualize", "filters", "MODEL", "--zoom", "100000"], "--zoom"),
    ("visualize centroids", ["visualize", "centroids", "MODEL", "--zoom", "100000"], "--zoom"),
]


@pytest.mark.parametrize("args,words", [
    (["--batch", "10000000000"], "batch=10000000000 should be in 1..1024"),
    (["--features", "100000"], "features=100000 in 1..256"),
    (["--eps", "0"], "eps=0.0 should be > 0"),
])
def test_batchnorm_sizes_and_eps_are_checked_up_front(args, words, tmp_path, monkeypatch):
    result = _invoke(["backprop", "batchnorm", *args, "--out", "bn.json"], tmp_path / "work",
                     monkeypatch)
    assert result.exit_code == 1, result.output
    assert words in _one_error_line(result)
    assert _tree(tmp_path / "work") == []


@pytest.mark.parametrize("name,args,option", SIZE_CASES, ids=[c[0] for c in SIZE_CASES])
def test_sizes_beyond_their_limit_are_refused(name, args, option, data, tmp_path, monkeypatch):
    model = tmp_path / "m.net"
    model.write_bytes(b"")  # never read: the option is refused first
    fill = {"EXTRA": data[16] / "extra.t7b", "MODEL": model}
    result = _invoke([fill.get(a, a) for a in args], tmp_path / "work", monkeypatch)
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert option in line and ("not in the range" in line), line
    assert _tree(tmp_path / "work") == []


def test_a_spec_too_wide_is_refused_before_allocating(data, tmp_path, monkeypatch):
    result = _invoke(["train", "--train", data[16] / "train.t7b", "--val", data[16] / "val.t7b",
                      "--model", "99999999c5-10f", "-b", "2", "--out", "run", "--quiet"],
                     tmp_path / "work", monkeypatch)
    assert result.exit_code == 1
    assert "'99999999c5' is too big (width at most 8192" in _one_error_line(result)
    assert _tree(tmp_path / "work") == []


@pytest.mark.parametrize("error", [
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate "
                 "memory: you tried to allocate 400000000000 bytes."),
    MemoryError("Unable to allocate 8.84 TiB for an array"),
], ids=["torch", "numpy"])
def test_allocation_failures_are_one_line_errors(error, tmp_path, monkeypatch):
    from luatorch_port.backprop import batchnorm as bnlib

    def fail(*args, **kwargs):
        raise error
    monkeypatch.setattr(bnlib, "random_case", fail)
    result = _invoke(["backprop", "batchnorm"], tmp_path / "work", monkeypatch)
    assert result.exit_code == 1
    assert _one_error_line(result).startswith("Error: out of memory: ")


def test_other_runtime_errors_are_not_hidden(tmp_path, monkeypatch):
    from luatorch_port.backprop import batchnorm as bnlib

    def fail(*args, **kwargs):
        raise RuntimeError("a bug")
    monkeypatch.setattr(bnlib, "random_case", fail)
    result = _invoke(["backprop", "batchnorm"], tmp_path / "work", monkeypatch)
    assert isinstance(result.exception, RuntimeError)


# -- data fetch / convert: no folder left on failure -----------------------------------------

@pytest.mark.parametrize("url,words", [("::::", "expected an http://, https:// or file:// URL"),
                                       ("file:///nonexistent/stl10.tgz", "No such file")])
def test_data_fetch_bad_url_leaves_no_folder(url, words, tmp_path, monkeypatch):
    result = _invoke(["data", "fetch", "o", "--url", url, "--quiet"], tmp_path / "work",
                     monkeypatch)
    assert result.exit_code == 1
    assert words in _one_error_line(result)
    assert _tree(tmp_path / "work") == []


def test_data_convert_failure_leaves_no_folder(tmp_path, monkeypatch):
    src = tmp_path / "bin"
    src.mkdir()
    for name in ("train_X", "train_y", "test_X", "test_y", "unlabeled_X"):
        (src / f"{name}.bin").write_bytes(bytes(100))
    result = _invoke(["data", "convert", src, "o", "--quiet"], tmp_path / "work", monkeypatch)
    assert result.exit_code == 1
    assert "not a whole number" in _one_error_line(result)
    assert _tree(tmp_path / "work") == []


# -- a2 train / surrogate train: every option checked before the first write ---------------

TRAIN_REFUSED = [
    (["--epochs", "0"], "max_epoch=0"),
    (["-b", "0"], "batch_size=0"),
    (["--save-every", "0"], "save_every=0"),
    (["--epoch_step", "0"], "epoch_step=0"),
    (["-r", "-1"], "learning_rate=-1.0"),
    (["-r", "0"], "learning_rate=0.0"),
    (["--model", "nonsense"], "unknown model 'nonsense'"),
    (["--resume"], "no checkpoint to resume from"),
    (["-b", "64"], "leave no batch of 64"),
    (["--momentum", "-1"], "momentum=-1.0"),
    (["--weightDecay", "nan"], "weight_decay=nan"),
    (["--learningRateDecay", "-1"], "learning_rate_decay=-1.0"),
    (["--model", "8c4-10f"], "odd kernel"),
]


@pytest.mark.parametrize("extra,words", TRAIN_REFUSED, ids=[" ".join(c[0]) for c in TRAIN_REFUSED])
def test_train_refuses_before_writing(extra, words, data, tmp_path, monkeypatch):
    args = ["train", "--train", data[16] / "train.t7b", "--val", data[16] / "val.t7b",
            "--model", "8c5-16f", "-b", "2", "--epochs", "1", "--out", "run", "--quiet", *extra]
    result = _invoke(args, tmp_path / "work", monkeypatch)
    assert result.exit_code == 1, result.output
    assert words in _one_error_line(result)
    assert _tree(tmp_path / "work") == []


SURROGATE_REFUSED = [
    (["--model", "junk"], "unknown model 'junk'"),
    (["--val-per-seed", "-1"], "--val-per-seed -1 should be >= 0"),
    (["--resume"], "no checkpoint to resume from"),
    (["--epochs", "0"], "max_epoch=0"),
    (["-b", "100"], "leave no batch of 100"),
]


@pytest.mark.parametrize("extra,words", SURROGATE_REFUSED,
                         ids=[" ".join(c[0]) for c in SURROGATE_REFUSED])
def test_surrogate_train_refuses_before_writing(extra, words, data, tmp_path, monkeypatch):
    args = ["surrogate", "train", data["surrogate"], "--model", "8c5-16f", "-b", "2",
            "--epochs", "1", "--out", "srun", "--quiet", *extra]
    result = _invoke(args, tmp_path / "work", monkeypatch)
    assert result.exit_code == 1, result.output
    assert words in _one_error_line(result)
    assert _tree(tmp_path / "work") == []


# -- Ctrl-C during training -------------------------------------------------------------------

@pytest.mark.parametrize("how", ["KeyboardInterrupt", "inside torch.save"])
def test_ctrl_c_during_train_says_resume_and_keeps_the_files(how, data, tmp_path, monkeypatch):
    args = ["train", "--train", data[16] / "train.t7b", "--val", data[16] / "val.t7b",
            "--model", "8c5-16f", "-b", "2", "--epochs", "2", "--out", "run", "--quiet"]
    real_save = torch.save
    calls = []

    def interrupted_save(obj, f, *a, **kw):
        calls.append(1)
        if len(calls) == 2:  # the second checkpoint: epoch 2
            if how == "KeyboardInterrupt":
                raise KeyboardInterrupt
            try:  # what torch.save does when Ctrl-C lands in its writer
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise RuntimeError("[enforce fail at inline_container.cc:672] . "
                                   "unexpected pos 46 vs 0")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", interrupted_save)
    result = _invoke(args, tmp_path / "work", monkeypatch)
    assert result.exit_code == 130, result.output
    assert _one_error_line(result) == "Error: interrupted; resume with --resume"
    run = tmp_path / "work" / "run"
    assert not [n for n in os.listdir(run) if n.endswith(".tmp")]
    from luatorch_port.train.checkpoint import load_checkpoint
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1  # epoch 1's survived
    monkeypatch.setattr(torch, "save", real_save)
    resumed = _invoke(args + ["--resume"], tmp_path / "work", monkeypatch)
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 2


# -- predict: a model for one image size, test images of another -----------------------------

def test_predict_refuses_images_of_another_size(data, tmp_path, monkeypatch):
    trained = _invoke(["train", "--train", data[16] / "train.t7b", "--val",
                       data[16] / "val.t7b", "--model", "8c5-16f", "-b", "2", "--epochs", "1",
                       "--out", tmp_path, "--quiet"], tmp_path / "train", monkeypatch)
    assert trained.exit_code == 0, trained.output  # model.net and norm.t7 in tmp_path
    ok = _invoke(["predict", tmp_path / "model.net", data[16] / "test.t7b", "--out", "p.csv",
                  "--quiet"], tmp_path / "ok", monkeypatch)
    assert ok.exit_code == 0, ok.output
    result = _invoke(["predict", tmp_path / "model.net", data[32] / "test.t7b", "--out", "p.csv",
                      "--quiet"], tmp_path / "work", monkeypatch)
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert "images are 3x32x32" in line and "model.net does not take" in line, line
    assert _tree(tmp_path / "work") == []


# -- float64 models stay float64 through .pt --------------------------------------------------

def test_float64_pt_model_loads_exactly(tmp_path):
    from luatorch_port.nn import build_model, load_model, save_model
    model = build_model("8c5-16f", input_size=16, generator=torch.Generator().manual_seed(3))
    model = model.double()
    save_model(model, tmp_path / "m.pt")
    back = load_model(tmp_path / "m.pt")
    for (k, a), b in zip(model.state_dict().items(), back.state_dict().values()):
        assert b.dtype == a.dtype and torch.equal(a, b), k


def test_lua_double_model_t7_pt_t7_is_exact(tmp_path):
    from luatorch_port.nn import build_model, load_model, save_model
    model = build_model("8c5-16f", input_size=16, generator=torch.Generator().manual_seed(3))
    save_model(model.double(), tmp_path / "a.net")
    runner = CliRunner()
    assert runner.invoke(cli, ["t7", "convert", str(tmp_path / "a.net"),
                               str(tmp_path / "b.pt")]).exit_code == 0
    assert runner.invoke(cli, ["t7", "convert", str(tmp_path / "b.pt"),
                               str(tmp_path / "c.net")]).exit_code == 0
    a, c = t7.load(tmp_path / "a.net"), t7.load(tmp_path / "c.net")
    wa, wc = a.modules[0].weight, c.modules[0].weight
    assert wa.dtype == wc.dtype == torch.float64 and torch.equal(wa, wc)
    assert next(load_model(tmp_path / "c.net").parameters()).dtype == torch.float64
