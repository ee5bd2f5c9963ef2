"""The one progress callback type and its meter: a bar on a terminal, lines elsewhere, nothing quiet."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

from luatorch_port.util.progress import INTERVAL_ENV, Counter, Meter, interval_from_env, silent, track


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _meter(interval, tty=False):
    stream, clock = io.StringIO(), Clock()
    return Meter(stream, interval=interval, tty=tty, clock=clock), stream, clock


def test_off_a_terminal_interval_zero_prints_a_line_per_call_with_rate_and_eta():
    meter, stream, clock = _meter(0)
    for done in range(0, 5):
        meter(done, 4 * 10, stage="encoding", unit="img")
        clock.now += 2.0
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5
    assert lines[0] == "encoding: 0/40 (0%)"
    # 3 images in 6 s since the stage began: 0.5 img/s, 37 left -> 74 s
    assert lines[3] == "encoding: 3/40 (8%) 0.5 img/s ETA 1:14"
    assert "\r" not in stream.getvalue()


def test_bytes_are_shown_as_sizes():
    meter, stream, clock = _meter(0)
    meter(0, 24_935_763, stage="reading extra.t7b", unit="B")
    clock.now += 2.0
    meter(8_000_000, 24_935_763, stage="reading extra.t7b", unit="B")
    clock.now += 2.0
    meter(24_935_763, 24_935_763, stage="reading extra.t7b", unit="B")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "reading extra.t7b: 0 B/24.9 MB (0%)"
    assert lines[1] == "reading extra.t7b: 8 MB/24.9 MB (32%) 4 MB/s ETA 0:04"
    assert lines[2] == "reading extra.t7b: 24.9 MB/24.9 MB (100%) 6.23 MB/s in 0:04"


def test_off_a_terminal_a_line_every_tenth_and_at_the_end_when_the_interval_is_long():
    meter, stream, clock = _meter(3600)
    for done in range(101):
        meter(done, 100, stage="k-means")
        clock.now += 1.0
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [f"{d}/100" for d in range(0, 101, 10)]
    assert lines[-1] == "k-means: 100/100 (100%) 1.0/s in 1:40"


def test_off_a_terminal_a_line_when_the_interval_has_passed():
    meter, stream, clock = _meter(5)
    for done in range(1000):             # 0.1 % a step, 1 s a step: the interval decides
        meter(done, 100000, stage="extra.t7b")
        clock.now += 1.0
    shown = [int(line.split()[1].split("/")[0]) for line in stream.getvalue().splitlines()]
    assert shown == list(range(0, 1000, 5))


def test_info_is_shown_and_unknown_totals_have_no_eta():
    meter, stream, clock = _meter(0)
    meter(0, None, stage="download", unit="B")
    clock.now = 2.0
    meter(4096, None, stage="download", unit="B", text="loss 0.250", objective=1.23456789)
    assert stream.getvalue().splitlines()[-1] == "download: 4.1 kB 2.05 kB/s loss 0.250 objective 1.235"


def test_a_stage_that_comes_back_keeps_its_rate():
    meter, stream, clock = _meter(0)
    meter(0, 4, stage="report")
    clock.now = 10.0
    meter(5, 10, stage="epoch 1/1")
    meter(1, 4, stage="report")
    assert stream.getvalue().splitlines()[-1] == "report: 1/4 (25%) 0.1/s ETA 0:30"


def test_quiet_prints_nothing():
    stream = io.StringIO()
    meter = Meter(stream, quiet=True, interval=0)
    for done in range(11):
        meter(done, 10, stage="x")
    assert stream.getvalue() == ""


def test_on_a_terminal_one_redrawn_bar_ended_by_a_newline():
    meter, stream, clock = _meter(0, tty=True)
    for done in range(11):
        meter(done, 10, stage="epoch 1/2")
        clock.now += 1.0
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.count("\r") == 11
    last = text.split("\r")[-1]
    assert last.startswith("epoch 1/2: [" + "#" * 30 + "] 10/10 (100%)")


def test_on_a_terminal_close_ends_an_unfinished_bar():
    meter, stream, _ = _meter(0, tty=True)
    with meter:
        meter(3, 10, stage="predict")
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 1


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(INTERVAL_ENV, "0.25")
    assert interval_from_env() == 0.25
    assert Meter(io.StringIO()).interval == 0.25
    monkeypatch.setenv(INTERVAL_ENV, "soon")
    assert interval_from_env(7.0) == 7.0
    monkeypatch.delenv(INTERVAL_ENV)
    assert interval_from_env(7.0) == 7.0


def test_counter_and_track_report_cumulative_counts():
    calls = []

    def record(done, total, *, stage="", **info):
        calls.append((done, total, stage, info))

    tick = Counter(record, 10, "patches", unit="img")
    tick(4)
    tick(6, text="done")
    assert calls == [(0, 10, "patches", {"unit": "img"}), (4, 10, "patches", {"unit": "img"}),
                     (10, 10, "patches", {"unit": "img", "text": "done"})]
    calls.clear()
    assert list(track("abc", record, stage="letters")) == ["a", "b", "c"]
    assert [c[:3] for c in calls] == [(0, 3, "letters"), (1, 3, "letters"), (2, 3, "letters"),
                                      (3, 3, "letters")]
    assert silent(1, 2, stage="x", anything=3) is None
    assert list(track(range(2), None)) == [0, 1]      # None is silent


@pytest.fixture(scope="module")
def val_file(tmp_path_factory):
    from luatorch_port.data import build_sample
    out = tmp_path_factory.mktemp("sample_progress")
    build_sample(out, seed=1, image_size=32)
    return out / "val.t7b"


@pytest.mark.parametrize("quiet", [False, True])
def test_a_command_off_a_terminal_prints_progress_lines_unless_quiet(val_file, tmp_path, monkeypatch, quiet):
    from luatorch_port.cli import cli

    monkeypatch.setenv(INTERVAL_ENV, "0")
    args = ["tsne", str(val_file), "--out", str(tmp_path / "t.png"), "--limit", "60", "--perplexity", "5",
            "--iterations", "250", "--map-size", "64", "--thumb", "8"] + (["--quiet"] if quiet else [])
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if line.startswith("t-SNE: ")]
    if quiet:
        assert lines == [] and res.stderr == ""
    else:
        assert len(lines) == 250          # interval 0: one line per iteration
        assert lines[-1].startswith("t-SNE: 250/250 (100%)") and " it/s" in lines[-1]
        assert "ETA" in lines[100]


def test_kmeans_fit_reports_reading_its_split_then_patches_and_iterations(val_file, tmp_path, monkeypatch):
    from luatorch_port.cli import cli

    monkeypatch.setenv(INTERVAL_ENV, "0")
    res = CliRunner().invoke(cli, ["kmeans", "fit", "--extra", str(val_file), "--out", str(tmp_path / "c.t7"),
                                   "--k", "4", "--patches", "500", "--iterations", "2"])
    assert res.exit_code == 0, res.output
    stages = [line.split(":")[0] for line in res.stderr.splitlines()]
    assert "reading val.t7b" in stages and "patches" in stages and "k-means" in stages
    assert stages.index("reading val.t7b") < stages.index("patches") < stages.index("k-means")


def test_loading_a_split_reports_the_bytes_read(val_file):
    import os

    from luatorch_port.data import load_split

    calls = []
    split = load_split(val_file, progress=lambda done, total, **info: calls.append((done, total, info)))
    size = os.path.getsize(val_file)
    assert len(split) > 0 and calls
    assert all(total == size for _, total, _ in calls)
    assert [done for done, _, _ in calls] == sorted(done for done, _, _ in calls)
    assert calls[-1][0] == size and calls[-1][2] == {"stage": "reading val.t7b", "unit": "B"}


def test_training_reports_each_epochs_batches_with_loss_and_rate():
    import torch
    import torch.nn.functional as F
    from torch import nn

    from luatorch_port.train import TrainConfig, fit

    calls = []
    x, t = torch.randn(10, 3, 2, 2), torch.arange(10) % 3
    fit(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), (x, t), None,
        TrainConfig(batch_size=3, max_epoch=2, n_classes=3, flip=False, channels_last=False),
        generator=torch.Generator().manual_seed(0), save_model_fn=None,
        loss_fn=lambda out, tgt, info: F.cross_entropy(out, tgt),
        progress=lambda done, total, **info: calls.append((done, total, info)))
    for epoch in (1, 2):
        seen = [(d, n) for d, n, info in calls if info["stage"] == f"epoch {epoch}/2"]
        assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    last = calls[-1][2]["text"]
    assert last.startswith("loss ") and " acc " in last and last.endswith(" img/s")
