"""`a2 visualize ...` and `a2 tsne` in-process: outputs, their numbers, provenance, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from luatorch_port import t7
from luatorch_port.cli import cli


@pytest.fixture(scope="module")
def sample(sample_data):
    return sample_data(image_size=32, per_class=18)  # 40/10/40/90 images of 3x32x32


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


@pytest.mark.parametrize("cmd", [["visualize", "filters"], ["visualize", "centroids"],
                                 ["visualize", "augmentations"], ["visualize", "curves"], ["tsne"]])
def test_help_shows_defaults(cmd):
    result = invoke(*cmd, "--help")
    assert result.exit_code == 0
    assert "[default:" in result.stdout


@pytest.mark.parametrize("suffix", [".t7", ".pt"])
def test_filters(tmp_path, suffix):
    from luatorch_port.nn import build_model, save_model

    model = build_model("8c5-16f", n_classes=10, input_size=32, generator=torch.Generator().manual_seed(0))
    path = tmp_path / f"model{suffix}"
    save_model(model, path)
    out = tmp_path / "f.png"
    result = invoke("visualize", "filters", path, "--out", out, "--zoom", 2)
    assert result.exit_code == 0, result.output
    # 8 colour filters of 5x5, 3 per row (ceil sqrt 8), padding 1 -> 18x18, zoom 2
    with Image.open(out) as im:
        assert im.size == (36, 36) and im.mode == "RGB"
        arr = np.asarray(im)[::2, ::2]
    w = model[0].weight.detach().double()
    cell = (w[4] - w[4].min()) / (w[4].max() - w[4].min())  # filter 5: row 1, col 1
    np.testing.assert_array_equal(arr[6:11, 6:11], (cell.permute(1, 2, 0) * 255).round().byte().numpy())
    record = json.loads((tmp_path / "f.run.json").read_text())
    assert record["command"] == "visualize filters" and record["results"]["filters"] == [8, 3, 5, 5]


def test_filters_of_model_without_conv(tmp_path):
    from luatorch_port.nn import save_model
    from luatorch_port.nn.layers import Linear

    save_model(Linear(4, 2), tmp_path / "lin.t7")
    result = invoke("visualize", "filters", tmp_path / "lin.t7", "--out", tmp_path / "x.png")
    assert result.exit_code == 1
    assert "no 2-D convolution" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("space", ["whitened", "unwhitened"])
def test_centroids(tmp_path, space):
    g = torch.Generator().manual_seed(0)
    k, rf = 6, 4
    cents = torch.randn(k, 3 * rf * rf, generator=g)
    p = torch.eye(3 * rf * rf) * 2.0
    t7.save({"centroids": cents, "M": torch.zeros(3 * rf * rf), "P": p, "rfSize": rf, "channels": 3,
             "imageSize": 32, "whiten": True}, tmp_path / "c.t7")
    out = tmp_path / "c.png"
    result = invoke("visualize", "centroids", tmp_path / "c.t7", "--out", out, "--space", space, "--zoom", 1)
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        # round(sqrt(6)) = 2 columns, 3 rows of (4+1)
        assert im.size == (10, 15)
        arr = np.asarray(im).astype(np.float64) / 255
    c0 = cents[0].double()
    if space == "unwhitened":  # P = 2I: c/2, then standardised per centroid
        c0 = (c0 - c0.mean()) / c0.std()
    want = ((c0.reshape(3, rf, rf).permute(1, 2, 0) + 1.5) / 3).clamp(0, 1).numpy()
    np.testing.assert_allclose(arr[:rf, :rf], want, atol=0.5 / 255 + 1e-9)
    assert json.loads((tmp_path / "c.run.json").read_text())["results"]["space"] == space


def test_centroids_rejects_other_tables(tmp_path):
    t7.save({"weights": torch.zeros(2)}, tmp_path / "w.t7")
    result = invoke("visualize", "centroids", tmp_path / "w.t7", "--out", tmp_path / "w.png")
    assert result.exit_code == 1 and "'centroids'" in result.stderr


def test_augmentations(sample, tmp_path):
    out = tmp_path / "aug.png"
    result = invoke("visualize", "augmentations", "--data", sample / "extra.t7b", "--out", out, "--seeds", 3,
                    "--per-seed", 4, "--patch", 16, "--zoom", 1, "--quiet")
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.size == (5 * 18, 3 * 18)  # 1 + 4 columns, 3 rows, cells of 16 + padding 2
        arr = np.asarray(im)
    assert (arr[0] == 255).all()  # white padding row
    assert arr[1:17, 1:17].std() > 0  # a real patch, not blank
    again = tmp_path / "aug2.png"
    invoke("visualize", "augmentations", "--data", sample / "extra.t7b", "--out", again, "--seeds", 3,
           "--per-seed", 4, "--patch", 16, "--zoom", 1, "--quiet")
    assert again.read_bytes() == out.read_bytes()  # same seed, same figure


def test_curves(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "val.log").write_text("% mean class accuracy (train set)\t% mean class accuracy (test set)\t\n"
                                 "10.0\t12.0\t\n40.0\t35.0\t\n70.0\t55.0\t\n")
    result = invoke("visualize", "curves", run, "--out", tmp_path / "cur.png")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "cur.png") as im:
        assert im.size == (640, 400)
    record = json.loads((tmp_path / "cur.run.json").read_text())
    assert record["results"]["epochs"] == 3
    assert record["results"]["last"]["% mean class accuracy (test set)"] == 55.0
    result = invoke("visualize", "curves", tmp_path, "--out", tmp_path / "x.png")
    assert result.exit_code == 1 and "no val.log" in result.stderr


def test_tsne_raw(sample, tmp_path):
    out = tmp_path / "t" / "tsne.png"
    result = invoke("tsne", sample / "test.t7b", "--out", out, "--iterations", 300, "--threads", 1,
                    "--map-size", 256, "--thumb", 16, "--quiet")
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "t" / "tsne.csv").read_text().splitlines()
    assert lines[0] == "index,x,y,label,class" and len(lines) == 1 + 40
    coords = np.array([[float(v) for v in ln.split(",")[1:3]] for ln in lines[1:]])
    assert np.isfinite(coords).all() and coords.std(0).min() > 0
    record = json.loads((tmp_path / "t" / "tsne.run.json").read_text())
    # manifold's default: no PCA (--pca 0)
    assert record["results"]["input_dims"] == 32 * 32 and record["results"]["pca_dims"] == 32 * 32
    assert 0.5 < record["results"]["trustworthiness"] <= 1
    with Image.open(tmp_path / "t" / "tsne_map.png") as im:
        assert im.size == (256, 256)
    with Image.open(out) as im:
        assert im.size == (700, 600)


def test_tsne_model_features(sample, tmp_path):
    from luatorch_port.nn import build_model, save_model

    model = build_model("4c5-8f", n_classes=10, input_size=32, generator=torch.Generator().manual_seed(0))
    save_model(model, tmp_path / "m.t7")
    out = tmp_path / "m.png"
    result = invoke("tsne", sample / "test.t7b", "--out", out, "--features", tmp_path / "m.t7", "--iterations",
                    250, "--threads", 1, "--map-size", 128, "--thumb", 8, "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "m.run.json").read_text())
    assert record["results"]["input_dims"] == 8  # the input of the last Linear (8 hidden units)


@pytest.mark.parametrize("args,message", [
    (["--channel", "4"], "--channel 4"),
    (["--features", "nope.t7"], "--features nope.t7"),
    (["--thumb", "64", "--map-size", "32"], "--thumb 64"),
])
def test_tsne_errors(sample, tmp_path, args, message):
    result = invoke("tsne", sample / "val.t7b", "--out", tmp_path / "e.png", "--quiet", *args)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output


def test_tsne_and_centroids_from_a_fitted_kmeans(sample, tmp_path):
    from luatorch_port.kmeans import CoatesKMeans

    images = torch.randint(0, 256, (30, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    km = CoatesKMeans(k=4, rf=3, n_patches=300, iterations=2, image_size=16)
    km.fit(images, generator=torch.Generator().manual_seed(0))
    km.save(tmp_path / "centroids.t7")
    result = invoke("tsne", sample / "test.t7b", "--out", tmp_path / "k.png", "--features", tmp_path / "centroids.t7",
                    "--iterations", 250, "--perplexity", 10, "--map-size", 64, "--thumb", 8, "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "k.run.json").read_text())["results"]["input_dims"] == 16  # 4 quadrants x k
    result = invoke("visualize", "centroids", tmp_path / "centroids.t7", "--out", tmp_path / "c.png", "--zoom", 1)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "c.png") as im:
        assert im.size == (2 * 4, 2 * 4)  # round(sqrt(4)) = 2 columns of rf + 1


@pytest.mark.parametrize("method,used", [("auto", "exact"), ("barnes-hut", "barnes-hut")])
def test_tsne_method_option(sample, tmp_path, method, used):
    out = tmp_path / "tsne.png"
    result = invoke("tsne", sample / "test.t7b", "--out", out, "--method", method, "--iterations", 250,
                    "--map-size", 64, "--thumb", 8, "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "tsne.run.json").read_text())
    assert record["config"]["method"] == method and record["results"]["method"] == used


def test_tsne_rejects_an_unknown_method(sample, tmp_path):
    result = invoke("tsne", sample / "test.t7b", "--out", tmp_path / "t.png", "--method", "fast")
    assert result.exit_code != 0 and "'fast' is not one of" in result.stderr


@pytest.mark.slow
def test_tsne_imports_only_what_it_uses(sample, tmp_path):
    """`a2 tsne` (exact, raw features) in a fresh process imports neither the other commands'
    code nor matplotlib, scikit-learn or scipy: their imports would cost more than its work."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\nfrom luatorch_port.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "heavy = ('matplotlib', 'sklearn', 'scipy', 'luatorch_port.train', 'luatorch_port.kmeans',\n"
            "         'luatorch_port.surrogate', 'luatorch_port.pseudolabel', 'luatorch_port.nn', 'luatorch_port.report')\n"
            "print(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy)))\n")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", code, "tsne", str(sample / "test.t7b"), "--out", str(tmp_path / "t.png"),
                          "--iterations", "250", "--map-size", "64", "--thumb", "8", "--quiet"],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
