"""`a2 data ...` in-process: help, info, sample, convert, preview, one-line errors."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from luatorch_port import t7
from luatorch_port.cli import cli
from luatorch_port.data import load_split, save_split

from helpers import write_fake_stl10


def run(*args):
    return CliRunner().invoke(cli, ["data", *map(str, args)])


@pytest.mark.parametrize("command", ["info", "sample", "convert", "fetch", "preview"])
def test_every_data_command_has_help_with_defaults(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Usage: " in result.stdout
    if command in ("sample", "convert", "fetch"):
        assert "[default: 1]" in result.stdout  # --seed
    if command == "fetch":
        assert "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz" in \
            "".join(result.stdout.split())
        assert "--md5" not in result.stdout  # test-only option stays hidden


def test_info_reports_layout_counts_shape_and_pixel_stats(oracle):
    path = oracle("made", "misc", "mini_train.t7b")
    result = run("info", path, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    pixels = load_split(path).images.numpy().astype(np.float64)
    assert (info["layout"], info["images"], info["classes"]) == ("labelled", 30, 10)
    assert info["per_class"] == {name: 3 for name in info["per_class"]}
    assert list(info["per_class"])[:2] == ["airplane", "bird"]
    assert info["image_shape"] == [3, 96, 96] and info["bytes"] == path.stat().st_size
    assert info["mean"] == pytest.approx(pixels.mean(), rel=1e-9)
    assert info["std"] == pytest.approx(pixels.std(), rel=1e-9)
    assert info["channel_std"] == pytest.approx(pixels.std(axis=(0, 2, 3)).tolist(), rel=1e-9)
    text = run("info", path)
    assert "layout:      labelled" in text.stdout and " 1 airplane   3" in text.stdout


def test_info_on_extra_file(oracle):
    result = run("info", oracle("fetched", "stl10", "real_extra_246.t7b"), "--limit", "20")
    assert result.exit_code == 0
    assert "layout:      extra (first 20 images)" in result.stdout and "images:      20" in result.stdout


def test_bad_file_is_a_one_line_error_without_traceback(tmp_path):
    a = torch.zeros(3, 8, 8, dtype=torch.uint8)
    t7.save({"data": [[a], [a, torch.zeros(3, 4, 4, dtype=torch.uint8)]]}, tmp_path / "bad.t7b")
    result = run("info", tmp_path / "bad.t7b")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'bad.t7b'}: data[2][2] is 3x4x4, expected 3x8x8\n"


def test_sample_cli_writes_the_splits_and_a_record(tmp_path):
    result = run("sample", tmp_path / "s", "--image-size", "12", "--per-class", "9", "--seed", "4")
    assert result.exit_code == 0, result.output
    assert "train 20, val 10, test 20, extra 40" in result.stdout
    record = json.loads((tmp_path / "s" / "run.json").read_text())
    assert record["seed"] == 4 and record["results"] == {"train": 20, "val": 10, "test": 20,
                                                         "extra": 40}
    assert load_split(tmp_path / "s" / "val.t7b").images.shape == (10, 3, 12, 12)


def test_convert_cli(tmp_path):
    write_fake_stl10(tmp_path / "bin")
    result = run("convert", tmp_path / "bin", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output
    assert "train 40, val 10, test 30, extra 7" in result.stdout
    assert json.loads((tmp_path / "out" / "run.json").read_text())["results"]["extra"] == 7


@pytest.mark.parametrize("labelled", [True, False])
def test_preview_writes_a_png_grid_with_the_images_shown(tmp_path, labelled):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (30, 3, 16, 16), generator=g, dtype=torch.uint8)
    save_split(tmp_path / "s.t7b", images, torch.arange(30) % 10 if labelled else None)
    result = run("preview", tmp_path / "s.t7b", "--out", tmp_path / "grid.png", "--n", "12")
    assert result.exit_code == 0, result.output
    png = matplotlib.image.imread(tmp_path / "grid.png")
    assert png.ndim == 3 and png.shape[0] > 100 and png.shape[1] > 100
    shown = json.loads((tmp_path / "grid.run.json").read_text())["results"]["indices"]
    if labelled:  # round-robin: first of each class, then the second of classes 0 and 1
        split = load_split(tmp_path / "s.t7b")
        assert split.labels[shown].tolist() == list(range(10)) + [0, 1]
        assert shown[:2] == [0, 3] and shown[10] == 1
    else:
        assert shown == list(range(12))
