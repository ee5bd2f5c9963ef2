"""Benchmark: `a2 surrogate build` patches/s against a per-patch PIL ``Image.transform`` loop.

Both produce the same geometric transformations (rotation, scale, translation, flip) of
the same seed windows; the PIL loop has no colour jitter (PIL has no per-patch HSV power),
the port is timed with and without it. Target (issue 8): >= 50,000 patches/s with colour
jitter on the 2-core machine, i.e. the report's 400,000 patches in under 10 s, where PIL
ran at about 32,000/s: 1.56x PIL, the ratio this benchmark checks.

How the pair is timed, on a shared box whose wall rates move +-15 % from one second to
the next:

* in ``--rounds`` rounds, the default build and the PIL loop back to back; the median of
  each and the median of the per-round ratios are reported;
* PIL's loop keeps each patch's ``tobytes`` (an array per patch cost it 30-40 %), its
  affine coefficients are computed before it is timed, and it runs once untimed first;
* the builds write under ``/dev/shm`` (RAM) when it is writable: writing to disk left
  the kernel's writeback busy for seconds after each build, which slowed the PIL loop
  that followed 1.7x (24,000 -> 13,000-15,000/s) and made the ratio flatter the port. One
  more default build writes to disk, for the rate a user sees there.

Also printed, all from the same run:

* ``render_reference`` (``F.affine_grid``, ``grid_sample``, RGB->HSV->jitter->RGB in
  float64): the straightforward torch path, as a second baseline and as the oracle of the
  agreement line (uint8 differences of the fast path).
* A per-stage split of the build on one thread (CPU time per patch): seed windows and
  parameters, grids, ``grid_sample``, colour jitter, uint8 conversion, writing.
* The limit of this design: ``grid_sample`` alone, over both cores.

Run: python benchmarks/bench_surrogate.py [--seeds 400] [--per-seed 100] [--pil 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image

from luatorch_port.surrogate import build as B
from luatorch_port.surrogate import transforms as T
from luatorch_port.util.threads import torch_threads

REPORT_PATCHES = 400_000
TARGET_VS_PIL = 50_000 / 32_000  # the target over its PIL rate
SHM = "/dev/shm"


def pil_coefficients(boxes, params, patch):
    """PIL AFFINE coefficients (output pixel -> source pixel), one row per transformation.

    boxes (n, 3), params (n, 12) -> float64 (n, 6) ``(a, b, c, d, e, f)``.
    """
    theta = T.affine_thetas(boxes, params, 1, 1)  # normalised for W = H = 1
    # theta maps u in [-1, 1] to x_norm = 2 x - 1 with W = 1, i.e. x = (x_norm + 1) / 2
    m = theta[:, :, :2] / 2.0          # pixels per unit u
    c = (theta[:, :, 2] + 1.0) / 2.0   # window centre in pixels
    # u = 2 (i + 0.5) / P - 1; PIL samples at (a i' + b j' + c) with i' = i + 0.5
    lin = m * 2.0 / patch
    shift = c - m.sum(2)
    return torch.stack([lin[:, 0, 0], lin[:, 0, 1], shift[:, 0],
                        lin[:, 1, 0], lin[:, 1, 1], shift[:, 1]], dim=1)


def pil_loop(images, coeffs, k, patch):
    """Raw bytes of ``b * k`` patches, one ``Image.transform`` per patch (coefficients given).

    The loop keeps PIL's own output: each patch's bytes (P x P x 3, interleaved) go into one
    buffer with ``tobytes``; turning them into an array per patch (``np.asarray`` and a copy
    into a channel-first array) cost PIL's loop 30-40 % here, so that is left to
    :func:`pil_patches`, outside the timed loop.
    """
    b = len(images)
    rows = coeffs.view(b, k, 6).tolist()
    size = patch * patch * 3
    out = bytearray(b * k * size)
    view = memoryview(out)
    at = 0
    for i in range(b):
        img = Image.fromarray(images[i].permute(1, 2, 0).numpy())
        for row in rows[i]:
            view[at:at + size] = img.transform((patch, patch), Image.Transform.AFFINE, row,
                                               resample=Image.Resampling.BILINEAR).tobytes()
            at += size
    return out


def pil_patches(raw, b, k, patch):
    """:func:`pil_loop`'s bytes as uint8 (b, k, 3, P, P), the port's layout."""
    pixels = np.frombuffer(raw, dtype=np.uint8).reshape(b, k, patch, patch, 3)
    return torch.from_numpy(pixels.copy()).permute(0, 1, 4, 2, 3)


def ram_fits(folder, nbytes):
    """Whether ``folder`` exists, is writable and has ``nbytes`` free (a container's
    /dev/shm is often 64 MB)."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return os.access(folder, os.W_OK) and stat.f_bavail * stat.f_frsize >= nbytes


def timed(fn):
    t = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t


def stage_split(images, n_seeds, per_seed, path):
    """CPU seconds per stage of a one-thread build of ``n_seeds`` x ``per_seed`` patches.

    Does what :func:`build.build_surrogate` does, group by group, through :func:`build.render`
    itself (its ``stage`` callback marks the end of each stage), timing each stage with
    ``time.thread_time``.
    """
    clock = time.thread_time
    split = dict.fromkeys(["seed windows + parameters", "thetas + jitter constants",
                           "grid terms", "compose grids", "grid_sample", "colour jitter",
                           "uint8", "write"], 0.0)
    with torch_threads(1):
        gen = torch.Generator().manual_seed(1)
        t = clock()
        seeds = torch.randperm(len(images), generator=gen)[:n_seeds]
        boxes = B.seed_windows(images[seeds], gen)
        params = T.sample_params(n_seeds * per_seed, T.TransformRanges(), gen).view(n_seeds, per_seed, -1)
        t = _lap(split, "seed windows + parameters", t, clock)
        theta_all = T.affine_thetas(boxes.repeat_interleave(per_seed, 0),
                                    params.reshape(n_seeds * per_seed, -1),
                                    *images.shape[2:]).view(n_seeds, per_seed, 2, 3)
        constants_all = T.JitterConstants(params, 255.0)
        _lap(split, "thetas + jitter constants", t, clock)
        patch, group = B.PATCH, B.SEEDS_PER_GROUP
        per_chunk, step = B.chunking(group, per_seed)
        buffers = B.RenderBuffers(per_chunk * step, patch)
        state = {}

        def stage(name):
            state["t"] = _lap(split, name, state["t"], clock)

        with open(path, "wb") as f:
            for g0 in range(0, n_seeds, group):
                state["t"] = clock()
                g1 = min(n_seeds, g0 + group)
                out = B.render(images[seeds[g0:g1]], boxes[g0:g1], params[g0:g1], patch, buffers=buffers,
                               theta=theta_all[g0:g1], constants=constants_all[g0:g1, :], stage=stage)
                f.write(memoryview(out.numpy().reshape(-1)))
                stage("write")
    return split


def _lap(split, name, t, clock):
    now = clock()
    split[name] += now - t
    return now


def grid_sample_limit(images, n_seeds, per_seed, workers):
    """patches/s of the ``grid_sample`` calls alone, on ``workers`` threads of one op thread."""
    gen = torch.Generator().manual_seed(3)
    boxes = B.seed_windows(images[:n_seeds], gen)
    params = T.sample_params(n_seeds * per_seed, T.TransformRanges(), gen).view(n_seeds, per_seed, -1)
    per_chunk, step = B.chunking(n_seeds, per_seed)
    jobs = []
    for i in range(0, n_seeds, per_chunk):
        i1 = min(n_seeds, i + per_chunk)
        for j in range(0, per_seed, step):
            j1 = min(per_seed, j + step)
            theta = T.affine_thetas(boxes[i:i1].repeat_interleave(j1 - j, 0),
                                    params[i:i1, j:j1].reshape(-1, 12), 96, 96)
            grid = T.affine_grid(theta, B.PATCH).view(i1 - i, (j1 - j) * B.PATCH, B.PATCH, 2)
            jobs.append((images[i:i1].float(), grid))
    with torch_threads(1), ThreadPoolExecutor(workers) as pool:
        _, dt = timed(lambda: list(pool.map(lambda job: T.sample(*job), jobs)))
    return n_seeds * per_seed / dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=400)
    ap.add_argument("--per-seed", type=int, default=100)
    ap.add_argument("--pil", type=int, default=10000, help="patches for the PIL loop")
    ap.add_argument("--reference", type=int, default=5000,
                    help="patches for render_reference (timing and agreement)")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--out-dir", default=None,
                    help=f"where the builds write (default {SHM} when writable with room: in RAM, so the "
                         "disk's writeback, which here slowed the next measurement 1.7x for "
                         "seconds, stays out of the rates)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds of (default build, PIL loop) back to back; medians reported")
    ap.add_argument("--omp", action="store_true",
                    help="also time workers=1 with torch's OpenMP threads (slow on a busy machine)")
    args = ap.parse_args()

    gen = torch.Generator().manual_seed(0)
    # Smooth random images (upsampled noise) so bilinear differences are meaningful.
    small = torch.rand(args.images, 3, 12, 12, generator=gen)
    images = (torch.nn.functional.interpolate(small, size=96, mode="bilinear") * 255).round().to(torch.uint8)
    n = args.seeds * args.per_seed
    threads = torch.get_num_threads()
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} cpus, load average "
          f"{load:.1f}; {n} patches ({args.seeds} seeds x {args.per_seed}), 32x32 from 96x96")

    # PIL: the same geometric transformations of the same windows, one call per patch.
    k = args.per_seed
    g = torch.Generator().manual_seed(2)
    b = max(1, args.pil // k)
    src = images[:b]
    boxes = B.seed_windows(src, g)
    params = T.sample_params(b * k, T.TransformRanges(color=False), g).view(b, k, -1)
    coeffs = pil_coefficients(boxes.repeat_interleave(k, 0), params.reshape(b * k, -1), 32)

    results = {}
    # (name, colour, torch intra-op threads, worker threads); the default is the first
    runs = [(f"port, colour, {threads} workers", True, threads, threads),
            (f"port, geometry, {threads} workers", False, threads, threads),
            ("port, colour, 1 thread", True, 1, 1)]
    if args.omp and threads > 1:
        runs.append((f"port, colour, {threads} omp threads", True, threads, 1))
    out_dir = args.out_dir or (SHM if ram_fits(SHM, 2 * n * 3 * 32 * 32) else None)
    where = f"a temporary directory under {out_dir}" if out_dir else "the default temporary directory"
    print(f"build output: {where}{' (RAM)' if out_dir == SHM else ''}")
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp, tempfile.TemporaryDirectory() as disk:
        def build(color, n_threads, workers, where=tmp):
            with torch_threads(n_threads):
                _, dt = timed(lambda: B.build_surrogate(
                    images, os.path.join(where, "s.t7b"), torch.Generator().manual_seed(1),
                    n_seeds=args.seeds, per_seed=args.per_seed,
                    ranges=T.TransformRanges(color=color), workers=workers))
            return n / dt

        # The target's pair, default build and PIL, back to back in each round: the box is
        # shared, so each round's ratio compares rates taken moments apart.
        pil_loop(src[:max(1, b // 10)], coeffs[:max(1, b // 10) * k], k, 32)  # warm-up (its
        # first pass ran 1.5x slower than the next ones here); the builds warm up in round 1
        rounds = []
        for _ in range(args.rounds):
            ours_rate = build(*runs[0][1:])
            raw, dt = timed(lambda: pil_loop(src, coeffs, k, 32))
            rounds.append((ours_rate, b * k / dt))
        results[runs[0][0]] = statistics.median(r[0] for r in rounds)
        for name, color, n_threads, workers in runs[1:]:
            results[name] = build(color, n_threads, workers)
        if out_dir == SHM:  # the default once more, its file on disk (writeback takes CPU too)
            results[runs[0][0] + ", file on disk"] = build(*runs[0][1:], where=disk)
        results["PIL Image.transform per patch"] = statistics.median(r[1] for r in rounds)
        split = stage_split(images, min(args.seeds, 160), args.per_seed, os.path.join(tmp, "split.bin"))

    # The straightforward torch path (float64, HSV round trip), on one thread.
    nr = max(1, args.reference // k)
    ref_boxes = B.seed_windows(images[:nr], g)
    ref_params = T.sample_params(nr * k, T.TransformRanges(), g).view(nr, k, -1)
    with torch_threads(1):
        reference, dt = timed(lambda: B.render_reference(images[:nr], ref_boxes, ref_params))
    results["render_reference, colour, 1 thread"] = nr * k / dt
    fast = B.render(images[:nr], ref_boxes, ref_params)
    agree = (fast.int() - reference.int()).abs()

    pil = pil_patches(raw, b, k, 32)
    ours = B.render(src, boxes, params, 32, color=False)

    # Geometry agreement where the window stays inside the image (PIL fills outside black).
    theta = T.affine_thetas(boxes.repeat_interleave(k, 0), params.reshape(b * k, -1), 96, 96)
    corners = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [-1.0, 1.0, 1.0], [-1.0, -1.0, 1.0]],
                           dtype=torch.float64)
    norm = torch.einsum("nij,cj->nci", theta, corners)  # corners in [-1, 1] when inside
    inside = (norm.abs() <= 1.0 - 2.0 / 96).all(2).all(1)
    diff = (pil.float() - ours.float()).abs().reshape(b * k, -1)[inside].mean().item()

    limit = grid_sample_limit(images, min(args.seeds, 80), k, threads)
    results[f"limit: grid_sample alone, {threads} workers"] = limit

    base = results["PIL Image.transform per patch"]
    print(f"{'method':40s} {'patches/s':>12s} {'vs PIL':>8s}")
    for name, rate in results.items():
        print(f"{name:40s} {rate:12,.0f} {rate / base:7.2f}x")
    default = results[runs[0][0]]
    print(f"port colour vs render_reference: {default / results['render_reference, colour, 1 thread']:.1f}x "
          f"(1 thread: {results['port, colour, 1 thread'] / results['render_reference, colour, 1 thread']:.1f}x)")
    print(f"{REPORT_PATCHES:,} patches with colour jitter: {REPORT_PATCHES / default:.1f} s at the "
          f"default (target < 10 s, i.e. >= 50,000/s; 1.56x PIL at PIL's quiet 32,000/s)")
    print(f"rounds, default build then PIL back to back (target >= 50,000/s and >= "
          f"{TARGET_VS_PIL:.2f}x PIL):")
    for i, (ours_rate, pil_rate) in enumerate(rounds, 1):
        print(f"  {i}: {ours_rate:9,.0f}/s  PIL {pil_rate:9,.0f}/s  {ours_rate / pil_rate:5.2f}x")
    ratios = [ours_rate / pil_rate for ours_rate, pil_rate in rounds]
    ratio = statistics.median(ratios)
    print(f"  median ratio {ratio:.2f}x (lowest {min(ratios):.2f}x) against the target's "
          f"{TARGET_VS_PIL:.2f}x: {'met' if ratio >= TARGET_VS_PIL else 'NOT met'}; "
          f"median rate {default:,.0f}/s against 50,000/s: "
          f"{'met' if default >= 50_000 else 'not met'} (this box's wall rates vary +-15 % run to run)")
    total = sum(split.values())
    per = min(args.seeds, 160) * k
    print(f"stage split, one thread, CPU time ({total / per * 1e6:.1f} us per patch, "
          f"{per / total:,.0f} patches/s per core):")
    for name, seconds in split.items():
        print(f"  {name:28s} {seconds / per * 1e6:6.2f} us  {100 * seconds / total:5.1f} %")
    print(f"fast path vs render_reference (float64), {agree.numel():,} uint8 values: max |difference| "
          f"{agree.max().item()}, {(agree > 0).double().mean().item():.2e} differ, "
          f"{(agree > 1).double().mean().item():.2e} by more than 1")
    print(f"geometry vs PIL: mean |difference| {diff:.3f} grey levels over {int(inside.sum())} "
          f"interior patches")


if __name__ == "__main__":
    main()
