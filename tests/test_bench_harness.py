"""benchmarks/harness.py: medians of rounds, the JSON result file, a child's own peak RSS,
counted FLOPs and the GEMM peak's record (no timing is asserted)."""

from __future__ import annotations

import json
import math

import torch

import harness


def test_median_of_calls_the_function_once_per_round():
    calls = []
    median, times = harness.median_of(lambda: calls.append(1), 5)
    assert len(calls) == 5 and len(times) == 5
    assert median == sorted(times)[2]


def test_result_file_holds_context_and_figures(tmp_path):
    res = harness.Result("unit")
    res.figure("rate", 12.5, "img/s", baseline=5.0, ratio=2.5)
    res.note("a note")
    path = res.write(tmp_path)
    assert path == tmp_path / "unit.json" and not list(tmp_path.glob("*.tmp"))
    data = json.loads(path.read_text())
    assert data["benchmark"] == "unit" and data["notes"] == ["a note"]
    assert data["figures"]["rate"] == {"value": 12.5, "unit": "img/s", "baseline": 5.0, "ratio": 2.5}
    ctx = data["context"]
    assert {"git_sha", "torch", "cpu", "date", "argv", "load_average_start",
            "load_average_end"} <= set(ctx)


def test_a_child_reports_its_own_peak_rss():
    code = ("import json\n"
            "from harness import rss_now_bytes, rss_peak_bytes\n"
            "before = rss_now_bytes()\n"
            "block = bytearray(48 << 20)\n"
            "block[::4096] = b'x' * len(block[::4096])\n"
            "print(json.dumps({'growth': rss_peak_bytes() - before, 'peak': rss_peak_bytes()}))\n")
    ballast = bytearray(96 << 20)  # this process's pages are not the child's
    ballast[::4096] = b"y" * len(ballast[::4096])
    out = harness.run_child_json(code)
    assert (48 << 20) * 0.95 <= out["growth"] < (48 << 20) * 1.5
    # a fresh interpreter's own peak: ru_maxrss would start from this process's (> ballast)
    assert out["peak"] - out["growth"] < len(ballast)
    assert harness.rss_peak_bytes() >= harness.rss_now_bytes() >= len(ballast)


def test_a_failing_child_is_an_error_with_its_stderr():
    try:
        harness.run_child_json("raise SystemExit('no luck')")
    except RuntimeError as err:
        assert "no luck" in str(err)
    else:
        raise AssertionError("no error")


def test_count_flops_of_a_matmul_and_a_training_step():
    a, b = torch.randn(64, 32), torch.randn(32, 16)
    assert harness.count_flops(lambda: a @ b) == 2 * 64 * 32 * 16
    layer = torch.nn.Linear(32, 16, bias=False)
    x = torch.randn(8, 32)
    # forward (x W^T) and backward's weight gradient; x needs no gradient
    assert harness.count_flops(lambda: layer(x).sum().backward()) == 2 * (2 * 8 * 32 * 16)


def test_gemm_peak_record():
    peak = harness.gemm_peak_gflops(n=64, rounds=3)
    assert peak["n"] == 64 and peak["rounds"] == 3 and peak["threads"] == torch.get_num_threads()
    assert math.isfinite(peak["gflops"]) and peak["gflops"] >= peak["median_gflops"] > 0


def test_make_bench_runs_every_bench_script_without_arguments():
    """`make bench` runs each benchmarks/bench_*.py with no arguments (but the two long
    accuracy runs it skips): none of them may require one."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    makefile = (root / "Makefile").read_text()
    for script in sorted((root / "benchmarks").glob("bench_*.py")):
        if f"*{script.name}" in makefile:   # skipped by the make bench loop
            continue
        assert "required=True" not in script.read_text(), f"{script.name} needs an argument"
