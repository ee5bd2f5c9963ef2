"""Loading a course-layout extra file: t7.load and data.load_split against torchfile, same run.

The file ({data = {{img1, ..., imgN}}}, N random 3x96x96 ByteTensors, 556 MB for N=20,000)
is streamed by ``CourseWriter`` into a temp dir (on /dev/shm where there is one, so this times
the parsers, not a shared disk). Three loaders, each in its own child process, ``REPEATS``
rounds alternating:

- ``t7.load`` (the whole object, one tensor per image),
- ``load_split`` (the data layer: every image into one preallocated N x 3 x 96 x 96 tensor),
- ``torchfile.load(path, use_list_heuristic=False)``, the baseline, timed once per round;
  the ``numpy.stack`` that gives it load_split's result is timed after it in the same child.

Each child reports wall and CPU seconds and its RSS growth: its own peak (``VmHWM``) minus its
resident set just before the load (torchfile's also after the stack). Figures are medians of the rounds; ratios are taken within
this run. Targets: t7.load no slower than torchfile; load_split >= 3x faster than
torchfile + numpy.stack, with RSS growth <= 1.3x the pixels. Writes bench-out/t7.json.

    python benchmarks/bench_t7.py              # 20,000 images -> bench-out/t7.json
    BENCH_T7_N=2000 python benchmarks/bench_t7.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from harness import Result, run_child_json

N_IMAGES = int(os.environ.get("BENCH_T7_N", 20_000))
SHAPE = (3, 96, 96)
REPEATS = 3
TMP_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
LOADERS = ("t7.load", "load_split", "torchfile")
TARGET_T7_RATIO = 1.0      # t7.load time / torchfile.load time
TARGET_SPLIT_SPEEDUP = 3.0  # (torchfile.load + np.stack) time / load_split time
TARGET_SPLIT_RSS = 1.3      # load_split RSS growth / pixel bytes

CHILD = r"""
import json, sys, time
import numpy as np
import torch  # imported before the RSS baseline in every child
from harness import cpu_seconds, rss_now_bytes, rss_peak_bytes
kind, path = sys.argv[1], sys.argv[2]
if kind == "t7.load":
    from luatorch_port import t7
elif kind == "load_split":
    from luatorch_port.data import load_split
else:
    import torchfile
before = rss_now_bytes()
start, cpu0 = time.perf_counter(), cpu_seconds()
stack = None
if kind == "t7.load":
    images = t7.load(path)["data"][0]
elif kind == "load_split":
    images = load_split(path).images
else:  # without its list heuristic torchfile keeps Lua's keys: tables are dicts keyed 1..n
    table = torchfile.load(path, use_list_heuristic=False)[b"data"][1]
    images = [table[i] for i in range(1, len(table) + 1)]
seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
peak = rss_peak_bytes()
stack = stack_growth = None
if kind == "torchfile":
    start = time.perf_counter()
    stacked = np.stack(images)
    stack, stack_growth = time.perf_counter() - start, rss_peak_bytes() - before
checksum = int(sum(int(images[i].sum()) for i in (0, len(images) // 2, len(images) - 1)))
print(json.dumps({"seconds": seconds, "cpu": cpu, "stack_seconds": stack, "peak": peak,
                  "growth": peak - before, "growth_with_stack": stack_growth,
                  "n": len(images), "checksum": checksum}))
"""

WRITER = r"""
import json, sys, torch
from luatorch_port.data import CourseWriter
path, n = sys.argv[1], int(sys.argv[2])
gen = torch.Generator().manual_seed(2016)
block = torch.randint(0, 256, (100, 3, 96, 96), dtype=torch.uint8, generator=gen)
with open(path, "wb") as f:
    writer = CourseWriter(f, [n], (3, 96, 96))
    for start in range(0, n, 100):
        rows = block[: min(100, n - start)].clone()
        rows[:, 0, 0, 0] = torch.arange(start, start + len(rows)) % 256  # no two alike in a row
        writer.write(rows)
    writer.close()
print(json.dumps({"n": n}))
"""


def main():
    res = Result("t7")
    pixels = N_IMAGES * SHAPE[0] * SHAPE[1] * SHAPE[2]
    with tempfile.TemporaryDirectory(prefix="bench_t7_", dir=TMP_DIR) as tmp:
        path = os.path.join(tmp, "extra.t7b")
        start = time.perf_counter()
        run_child_json(WRITER, path, str(N_IMAGES))  # a child: this process stays small
        size = os.path.getsize(path)
        print(f"wrote {N_IMAGES} images ({size / 1e6:.0f} MB) with CourseWriter in "
              f"{time.perf_counter() - start:.1f} s")
        runs = {k: [] for k in LOADERS}
        for _ in range(REPEATS):
            for kind in LOADERS:
                runs[kind].append(run_child_json(CHILD, kind, path))
    for kind, rounds in runs.items():
        assert all(r["n"] == N_IMAGES for r in rounds), (kind, rounds)
    checksums = {r["checksum"] for rounds in runs.values() for r in rounds}
    assert len(checksums) == 1, f"loaders disagree: {checksums}"

    def med(kind, key):
        return statistics.median(r[key] for r in runs[kind])

    tf, tf_cpu = med("torchfile", "seconds"), med("torchfile", "cpu")
    tf_stack = statistics.median(r["seconds"] + r["stack_seconds"] for r in runs["torchfile"])
    t7_s, t7_cpu, split_s = med("t7.load", "seconds"), med("t7.load", "cpu"), med("load_split", "seconds")
    res.figure("images", N_IMAGES, "images", file_mb=round(size / 1e6, 1))
    res.figure("torchfile_load", tf, "s", rounds=[r["seconds"] for r in runs["torchfile"]])
    res.figure("torchfile_load_plus_np_stack", tf_stack, "s")
    res.figure("t7_load", t7_s, "s", baseline=tf, ratio=t7_s / tf, target=TARGET_T7_RATIO,
               rounds=[r["seconds"] for r in runs["t7.load"]])
    res.figure("t7_load_cpu", t7_cpu, "s", baseline=tf_cpu, ratio=t7_cpu / tf_cpu)
    res.figure("load_split", split_s, "s", baseline=tf_stack, speedup=tf_stack / split_s,
               target=TARGET_SPLIT_SPEEDUP, rounds=[r["seconds"] for r in runs["load_split"]])
    for kind in LOADERS:
        growth = max(r["growth"] for r in runs[kind])
        extra = {"target": TARGET_SPLIT_RSS} if kind == "load_split" else {}
        res.figure(f"rss_growth_{kind.replace('.', '_')}", growth / pixels, "x pixel bytes",
                   bytes=growth, peak_bytes=max(r["peak"] for r in runs[kind]), **extra)
        if kind == "torchfile":
            both = max(r["growth_with_stack"] for r in runs[kind])
            res.figure("rss_growth_torchfile_plus_np_stack", both / pixels, "x pixel bytes",
                       bytes=both)
        print(f"{kind:>10}: {med(kind, 'seconds'):.2f} s wall, {med(kind, 'cpu'):.2f} s CPU "
              f"(median of {REPEATS}), {size / med(kind, 'seconds') / 1e6:.0f} MB/s, "
              f"RSS growth {growth / 1e6:.0f} MB = {growth / pixels:.2f}x the pixels")
    print(f"t7.load / torchfile: wall {t7_s / tf:.2f}x, CPU {t7_cpu / tf_cpu:.2f}x "
          f"(target <= {TARGET_T7_RATIO}x)")
    print(f"load_split vs torchfile + np.stack ({tf_stack:.2f} s): {tf_stack / split_s:.2f}x faster "
          f"(target >= {TARGET_SPLIT_SPEEDUP}x)")
    res.write()


if __name__ == "__main__":
    main()
