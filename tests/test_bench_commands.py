"""The benchmarks that time `a2` commands read the records those commands write: run them at
smoke size on the digits sample so that a renamed record or option breaks a test, not a
benchmark run an hour later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(script, tmp_path, *args):
    env = dict(os.environ, BENCH_OUT=str(tmp_path / "bench-out"), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


@pytest.mark.slow
def test_kmeans_pipeline_benchmark_reads_the_commands_records(sample_data, tmp_path):
    data = sample_data(image_size=32, per_class=18)
    _bench("bench_kmeans_pipeline.py", tmp_path, "--smoke", "--selftrain", "--data", data,
           "--fit-precision", "bf16")
    out = json.loads((tmp_path / "bench-out" / "kmeans_pipeline.json").read_text())
    assert "auto.test_accuracy" in out["figures"] and "selftrain.test_accuracy" in out["figures"]
    assert out["figures"]["fit_seconds"]["precision"] == "bf16"


@pytest.mark.slow
def test_kmeans_benchmark_writes_every_figure_and_one_inertia_pair_per_seed(sample_data, tmp_path):
    data = sample_data(image_size=32, per_class=None)
    _bench("bench_kmeans.py", tmp_path, "--scale", 0.02, "--data", data, "--inertia-seeds", 2)
    figures = json.loads((tmp_path / "bench-out" / "kmeans.json").read_text())["figures"]
    for name in ("kmeans.bf16_seconds_per_iteration", "encode.bf16_rate", "svm.one_fit_seconds",
                 "svm.grid_seconds"):
        assert "value" in figures[name], name
    assert {f"kmeans.inertia_50.seed{s}.{p}" for s in (0, 1) for p in ("fp32", "bf16")} <= set(figures)
    assert len(figures["kmeans.bf16_seconds_per_iteration"]["inertia_rel_diff_50"]) == 2
    assert f"patches: {data / 'extra.t7b'}" in figures["kmeans.bf16_seconds_per_iteration"]["note"]


@pytest.mark.slow
def test_tsne_benchmark_reads_the_commands_record(sample_data, tmp_path):
    data = sample_data(image_size=32, per_class=None)  # 100 val images: enough for perplexity 30
    _bench("bench_tsne.py", tmp_path, "--data", data / "val.t7b", "--rounds", 1, "--compare", ROOT)
    out = json.loads((tmp_path / "bench-out" / "tsne.json").read_text())
    assert out["figures"], out
    # --compare: the other checkout's command timed in the same rounds (here this checkout again)
    assert out["context"]["compare"] == str(ROOT) and "value" in out["figures"]["a2_tsne_compare_wall"]


@pytest.mark.slow
def test_encode_accuracy_benchmark_compares_the_two_precisions(sample_data, tmp_path):
    import torch

    from luatorch_port.kmeans import run_fit

    data = sample_data(image_size=32, per_class=18)
    centroids = tmp_path / "centroids.t7"
    run_fit(data / "extra.t7b", centroids, k=16, n_patches=2000, iterations=2,
            generator=torch.Generator().manual_seed(1))
    _bench("encode_accuracy.py", tmp_path, "--centroids", centroids, "--data", data)
    figures = json.loads((tmp_path / "bench-out" / "encode_accuracy.json").read_text())["figures"]
    change = figures["encode_accuracy.bf16_minus_fp32.test"]
    assert change["value"] == pytest.approx(figures["encode_accuracy.bf16.test"]["value"]
                                            - figures["encode_accuracy.fp32.test"]["value"], abs=0.011)
    assert change["met"] == (change["value"] >= -0.2)


def test_encode_accuracy_benchmark_skips_without_the_data(tmp_path):
    proc = _bench("encode_accuracy.py", tmp_path, "--centroids", tmp_path / "none.t7",
                  "--data", tmp_path)
    assert "skipped" in proc.stdout
    assert not (tmp_path / "bench-out" / "encode_accuracy.json").exists()
