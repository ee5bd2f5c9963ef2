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
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10)
        sha = out.stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
        return sha + ("-dirty" if dirty.strip() else "") if sha else None
    except (OSError, subprocess.SubprocessError):
        return None


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


def rss_now_bytes() -> int:
    """This process's resident set now (Linux /proc), else its peak so far."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss_peak_bytes()


def rss_peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def run_child_json(code: str, *args: str, env: dict | None = None) -> dict:
    """Run ``python -c code args...`` in a fresh process; parse its last stdout line as JSON.

    A child's peak RSS is its own (Linux carries ru_maxrss across fork+exec only from the
    parent's image at exec time, and a fresh interpreter starts small).
    """
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
