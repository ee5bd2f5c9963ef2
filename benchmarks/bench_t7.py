"""t7.load and data.load_split vs torchfile.load(path, use_list_heuristic=False) on a
course-layout extra file.

The file ({data = {{img1, ..., imgN}}}, N 3x96x96 random ByteTensors, 556 MB for N=20,000)
is written by ``t7.save`` into a temp dir (on /dev/shm where there is one). Each loader runs
in its own child process, ``REPEATS`` times alternating, so that its peak RSS is its own:
the growth is ``ru_maxrss`` after the load minus the RSS just before it. Prints absolute
numbers and the ratios of wall time and of CPU time (on a shared machine the CPU time is
the steadier of the two; only same-run ratios mean anything). Target: t7.load no slower
than torchfile. ``load_split`` is what the commands use: the course layout straight into one
uint8 tensor (torchfile's result is a table of tensors, not yet stacked).

    python benchmarks/bench_t7.py              # 20,000 images -> bench-out/t7.json
    BENCH_T7_N=2000 python benchmarks/bench_t7.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Result  # noqa: E402

N_IMAGES = int(os.environ.get("BENCH_T7_N", 20_000))
SHAPE = (3, 96, 96)
REPEATS = 2
# tmpfs when there is one: this times the parsers, not a (shared, throttled) disk
TMP_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None

CHILD = r"""
import json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]
if kind == "t7":
    from luatorch_port import t7
    load = t7.load
elif kind == "load_split":
    from luatorch_port.data import load_split
    load = load_split
else:
    import torchfile
    load = lambda p: torchfile.load(p, use_list_heuristic=False)
def rss_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
before = rss_now()
start, cpu0 = time.perf_counter(), cpu()
obj = load(path)
seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if kind == "t7":
    images = obj["data"][0]
elif kind == "load_split":  # the course-layout reader: one uint8 N x 3 x 96 x 96 tensor
    images = obj.images
else:  # without its list heuristic torchfile keeps Lua's keys: tables are dicts keyed 1..n
    table = obj[b"data"][1]
    images = [table[i] for i in range(1, len(table) + 1)]
checksum = int(sum(int(images[i].sum()) for i in (0, len(images) // 2, len(images) - 1)))
print(json.dumps({"seconds": seconds, "cpu": cpu_seconds, "peak": peak,
                  "growth": peak - before, "n": len(images), "checksum": checksum}))
"""


WRITER = r"""
import sys, torch
from luatorch_port import t7
path, n = sys.argv[1], int(sys.argv[2])
gen = torch.Generator().manual_seed(2016)
block = torch.randint(0, 256, (100, 3, 96, 96), dtype=torch.uint8, generator=gen)
images = [block[i % 100].clone() for i in range(n)]  # random pixels, cheaply
for i, image in enumerate(images):
    image[0, 0, 0] = i % 256  # and no two alike in a row
t7.save({"data": [images]}, path)
"""


def _write(path, n):
    """In a child process: Linux carries ru_maxrss across fork+exec, so this process stays small."""
    subprocess.run([sys.executable, "-c", WRITER, path, str(n)], check=True)
    return n * SHAPE[0] * SHAPE[1] * SHAPE[2]


def _run(kind, path):
    out = subprocess.run([sys.executable, "-c", CHILD, kind, path], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    with tempfile.TemporaryDirectory(prefix="bench_t7_", dir=TMP_DIR) as tmp:
        path = os.path.join(tmp, "extra.t7b")
        start = time.perf_counter()
        pixels = _write(path, N_IMAGES)
        size = os.path.getsize(path)
        print(f"wrote {N_IMAGES} images ({size / 1e6:.0f} MB) with t7.save in "
              f"{time.perf_counter() - start:.1f} s")
        runs = {"t7": [], "load_split": [], "torchfile": []}
        for _ in range(REPEATS):
            for kind in runs:
                runs[kind].append(_run(kind, path))
        best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
        best_cpu = {k: min(r["cpu"] for r in v) for k, v in runs.items()}
        assert best["t7"]["n"] == best["load_split"]["n"] == best["torchfile"]["n"] == N_IMAGES
        assert best["t7"]["checksum"] == best["load_split"]["checksum"] == best["torchfile"]["checksum"], \
            "loaders disagree"
        for kind, r in best.items():
            print(f"{kind:>10}: {r['seconds']:.2f} s wall, {best_cpu[kind]:.2f} s CPU (best of "
                  f"{REPEATS}), {size / r['seconds'] / 1e6:.0f} MB/s, "
                  f"peak RSS {r['peak'] / 1e6:.0f} MB, "
                  f"growth {r['growth'] / 1e6:.0f} MB = {r['growth'] / pixels:.2f}x the pixels")
        ratio = best["t7"]["seconds"] / best["torchfile"]["seconds"]
        cpu_ratio = best_cpu["t7"] / best_cpu["torchfile"]
        growth = best["t7"]["growth"] / best["torchfile"]["growth"]
        print(f"t7.load / torchfile: wall time {ratio:.2f}x, CPU time {cpu_ratio:.2f}x, RSS growth "
              f"{growth:.2f}x (target: time <= 1.0x) -> {'ok' if ratio <= 1.0 else 'SLOWER'}")
        res = Result("t7")
        res.context.update(n_images=N_IMAGES, file_bytes=size, repeats=REPEATS)
        for kind, r in best.items():
            res.figure(f"{kind}_load_wall", r["seconds"], "s", cpu_s=best_cpu[kind], mb_per_s=size / r["seconds"] / 1e6,
                       peak_rss_mb=r["peak"] / 1e6, rss_growth_over_pixels=r["growth"] / pixels)
        res.figure("t7_over_torchfile_wall", ratio, "x", target=1.0, cpu_ratio=cpu_ratio, rss_growth_ratio=growth,
                   note="t7.load / torchfile.load(use_list_heuristic=False), best of each, same run")
        split_ratio = best["load_split"]["seconds"] / best["torchfile"]["seconds"]
        split_cpu = best_cpu["load_split"] / best_cpu["torchfile"]
        print(f"load_split / torchfile: wall time {split_ratio:.2f}x, CPU time {split_cpu:.2f}x, RSS growth "
              f"{best['load_split']['growth'] / best['torchfile']['growth']:.2f}x")
        res.figure("load_split_over_torchfile_wall", split_ratio, "x", cpu_ratio=split_cpu,
                   rss_growth_ratio=best["load_split"]["growth"] / best["torchfile"]["growth"],
                   note="data.load_split (the course layout into one uint8 tensor) / torchfile.load "
                        "(a Lua table of tensors, not stacked), best of each, same run")
        res.write()


if __name__ == "__main__":
    main()
