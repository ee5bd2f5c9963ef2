"""What every benchmark shares: the machine it ran on, medians of rounds, child-process RSS,
and one JSON result file per benchmark (``bench-out/NAME.json``).

A result file holds the run's context (git sha, torch version, CPU model and flags, load
average before and after, date, argv) and ``figures``: a flat mapping name -> {value, unit}
(plus optional ``baseline``/``ratio``/``limit``/``fraction_of_limit``/``target`` keys).
Docs quote a figure together with its file and the command that made it.

    from harness import Result, median_of
    res = Result("kmeans")
    res.figure("encode_rate", 1234.5, "img/s", baseline=430.0)
    res.write()                      # -> bench-out/kmeans.json

Children: ``run_child_json(code)`` runs code in a fresh interpreter that can import this
module; ``rss_peak_bytes()`` there is the child's own ``VmHWM``. ``gemm_peak_gflops()`` and
``count_flops(fn)`` give a machine limit and a workload's size measured in the same run.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = Path(os.environ.get("BENCH_OUT", ROOT / "bench-out"))


def _git_sha() -> str | None:
    from luatorch_port.util.provenance import git_revision

    return git_revision(ROOT)


def _cpu() -> dict:
    model, flags = platform.processor() or None, []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "model name":
                    model = value.strip()
                elif key == "flags":
                    flags = value.split()
                    break
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")
    return {"model": model, "count": os.cpu_count(),
            "flags": [f for f in wanted if f in flags]}


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict:
    """Where and when this ran: enough to tell two result files apart."""
    import torch
    return {"git_sha": _git_sha(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "cpu": _cpu(), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "argv": sys.argv}


def median_of(fn, rounds: int) -> tuple[float, list[float]]:
    """Call ``fn()`` ``rounds`` times; return (median seconds, every round's seconds)."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def _proc_status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return None


def rss_now_bytes() -> int:
    """This process's resident set now (``VmRSS``), else its peak so far."""
    now = _proc_status_bytes("VmRSS")
    return rss_peak_bytes() if now is None else now


def rss_peak_bytes() -> int:
    """This process's peak resident set (``VmHWM``; without /proc, ``ru_maxrss``).

    ``VmHWM`` belongs to the process image and starts afresh at exec; ``ru_maxrss`` does not
    (Linux carries the parent's over fork+exec), so a child measures its own peak with this.
    """
    peak = _proc_status_bytes("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 if peak is None else peak


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child_env(extra: dict | None = None) -> dict:
    """The environment for a child: this one, with benchmarks/ and the project on PYTHONPATH."""
    paths = [str(Path(__file__).resolve().parent), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **(extra or {})}


def run_child_json(code: str, *args: str, env: dict | None = None) -> dict:
    """Run ``python -c code args...`` in a fresh process; parse its last stdout line as JSON.

    The child can ``from harness import rss_now_bytes, rss_peak_bytes``: its peak RSS
    (``VmHWM``) is its own, whatever the parent holds.
    """
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=child_env(env))
    if out.returncode != 0:
        raise RuntimeError(f"child failed (status {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def count_flops(fn) -> int:
    """Floating-point operations ``fn()`` runs, counted by torch's FlopCounterMode
    (matmuls and convolutions, forward and backward; elementwise work is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def gemm_peak_gflops(n: int = 2048, rounds: int = 5, dtype=None) -> dict:
    """The machine's matmul peak now, at the current torch thread count: the best GFLOP/s of
    ``rounds`` n x n float32 products (after one warm-up), with their median.

    Measure it in the same run as the figure it scales, so a busy machine lowers both.
    """
    import torch

    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=g, dtype=dtype) for _ in range(2))
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up
    _, times = median_of(lambda: torch.mm(a, b, out=out), rounds)
    flops = 2 * n ** 3
    return {"gflops": flops / min(times) / 1e9,
            "median_gflops": flops / statistics.median(times) / 1e9,
            "n": n, "rounds": rounds, "threads": torch.get_num_threads()}


class Result:
    """One benchmark's result file: context plus named figures, written atomically."""

    def __init__(self, name: str):
        self.name = name
        self.context = machine()
        self.context["load_average_start"] = load_average()
        self.figures: dict[str, dict] = {}
        self.notes: list[str] = []

    def figure(self, key: str, value, unit: str, **extra) -> dict:
        """Record one figure; ``extra`` may hold baseline, ratio, limit, target, ... ."""
        entry = {"value": value, "unit": unit, **extra}
        self.figures[key] = entry
        return entry

    def note(self, text: str) -> None:
        self.notes.append(text)

    def write(self, out_dir: Path | None = None) -> Path:
        out_dir = Path(out_dir or OUT_DIR)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.context["load_average_end"] = load_average()
        path = out_dir / f"{self.name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"benchmark": self.name, "context": self.context,
                                   "figures": self.figures, "notes": self.notes},
                                  indent=2, default=float) + "\n")
        os.replace(tmp, path)
        print(f"results: {path}")
        return path
