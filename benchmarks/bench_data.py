"""load_split on an extra.t7b of 20,000 images vs torchfile.load + numpy.stack, same run.

Each loader runs in its own child process (so its peak RSS is its own: ``ru_maxrss`` after
the load minus the RSS just before it), ``REPEATS`` times alternating; the best time of each is kept.
Prints absolute numbers and the ratios. Targets (issue 3): >= 3x faster than the baseline,
RSS growth <= 1.3x the pixel payload.

    python benchmarks/bench_data.py            # 20,000 images (553 MB file in a temp dir)
    BENCH_DATA_N=2000 python benchmarks/bench_data.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

N_IMAGES = int(os.environ.get("BENCH_DATA_N", 20_000))
SHAPE = (3, 96, 96)
REPEATS = 2
CHUNK = 1000


def _rss_peak_bytes():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _rss_now_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return _rss_peak_bytes()  # no /proc: the peak so far is an upper bound


def child(kind, path):
    """Load ``path`` with one loader; print {seconds, rss_growth, n} as JSON."""
    import numpy as np
    import torch  # noqa: F401  (imported before the baseline RSS in both children)

    if kind == "load_split":
        from luatorch_port.data import load_split
    else:
        import torchfile
    before = _rss_now_bytes()
    t0 = time.perf_counter()
    if kind == "load_split":
        images = load_split(path).images
    else:
        table = torchfile.load(path, use_list_heuristic=False)[b"data"][1]
        images = np.stack([table[j] for j in range(1, len(table) + 1)])
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "rss_growth": _rss_peak_bytes() - before,
                      "n": int(images.shape[0])}))


def write_extra(path, n):
    import torch

    from luatorch_port.data import CourseWriter

    g = torch.Generator().manual_seed(0)
    with open(path, "wb") as f:
        writer = CourseWriter(f, [n], SHAPE)
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            writer.write(torch.randint(0, 256, (m,) + SHAPE, generator=g, dtype=torch.uint8))
        writer.close()


def run_child(kind, path):
    out = subprocess.run([sys.executable, __file__, "--child", kind, path], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    payload = N_IMAGES * SHAPE[0] * SHAPE[1] * SHAPE[2]
    with tempfile.TemporaryDirectory(prefix="bench_data.") as tmp:
        path = os.path.join(tmp, "extra.t7b")
        write_extra(path, N_IMAGES)
        print(f"extra.t7b: {N_IMAGES} images of {'x'.join(map(str, SHAPE))}, "
              f"{os.path.getsize(path) / 1e6:.0f} MB file, pixel payload {payload / 1e6:.0f} MB")
        results = {"load_split": [], "torchfile": []}
        for _ in range(REPEATS):
            for kind in results:
                r = run_child(kind, path)
                assert r["n"] == N_IMAGES, r
                results[kind].append(r)
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in results.items()}
    rss = {k: max(r["rss_growth"] for r in v) for k, v in results.items()}
    for kind in results:
        times = ", ".join(f"{r['seconds']:.3f}" for r in results[kind])
        print(f"{kind:>10}: best {best[kind]['seconds']:.3f} s (runs {times}); "
              f"{N_IMAGES / best[kind]['seconds']:.0f} img/s, "
              f"{payload / best[kind]['seconds'] / 1e9:.2f} GB/s; "
              f"peak RSS growth {rss[kind] / 1e6:.0f} MB = {rss[kind] / payload:.2f}x payload")
    speedup = best["torchfile"]["seconds"] / best["load_split"]["seconds"]
    print(f"ratio: load_split is {speedup:.2f}x faster than torchfile+np.stack (target >= 3x); "
          f"RSS {rss['load_split'] / payload:.2f}x payload (target <= 1.3x) vs "
          f"{rss['torchfile'] / payload:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
