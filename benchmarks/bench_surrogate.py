"""Benchmark: `a2 surrogate build` patches/s against a per-patch PIL ``Image.transform`` loop.

Both produce the same geometric transformations (rotation, scale, translation, flip) of
the same seed windows; the PIL loop has no colour jitter (PIL has no per-patch HSV power).
The port is timed with both presets: ``report`` (rotation, scale, translation) and
``exemplar`` (adds flip and the colour jitter). Targets: >= 100,000 patches/s with the
report preset, >= 60,000/s with colour, and the report's 400,000 patches in <= 6 s wall
through ``a2 surrogate build`` in a fresh process (start-up and reading extra.t7b
included). Results: ``bench-out/surrogate.json`` (benchmarks/harness.py).

How the pair is timed, on a shared box whose wall rates move +-15 % from one second to
the next:

* in ``--rounds`` rounds, a report-preset build, an exemplar-preset build and the PIL
  loop back to back; the median of each is reported;
* PIL's loop keeps each patch's ``tobytes`` (an array per patch cost it 30-40 %), its
  affine coefficients are computed before it is timed, and it runs once untimed first;
* the builds write under ``/dev/shm`` (RAM) when it is writable: writing to disk left
  the kernel's writeback busy for seconds after each build, which slowed the PIL loop
  that followed and made the ratio flatter the port.

Also printed, all from the same run:

* ``render_reference`` (``F.affine_grid``, ``grid_sample``, RGB->HSV->jitter->RGB in
  float64): the straightforward torch path, as a second baseline and as the oracle of the
  agreement line (uint8 differences of the fast path).
* A per-stage split of the build on one thread (CPU time per patch), for each preset:
  seed windows and parameters, grids, ``grid_sample``, colour jitter, uint8 conversion,
  writing.
* The limit of this design: its ``grid_sample`` calls alone, over all threads.
* ``a2 surrogate build`` of 4000 x 100 patches in a child process, wall time from its start
  to its exit (``--wall-rounds``, median), reading an extra.t7b of ``--images`` images.

Run: python benchmarks/bench_surrogate.py [--seeds 400] [--per-seed 100] [--pil 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from harness import Result

from luatorch_port.data import save_split
from luatorch_port.surrogate import build as B
from luatorch_port.surrogate import transforms as T
from luatorch_port.util.threads import torch_threads

REPORT_PATCHES = 400_000
TARGETS = {"report": 100_000, "exemplar": 60_000}  # patches/s
TARGET_WALL_S = 6.0   # 400,000 patches through the command, start-up and loading included
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


def stage_split(images, n_seeds, per_seed, path, preset="exemplar"):
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
        ranges = T.PRESETS[preset]
        params = T.sample_params(n_seeds * per_seed, ranges, gen).view(n_seeds, per_seed, -1)
        t = _lap(split, "seed windows + parameters", t, clock)
        theta_all = T.affine_thetas(boxes.repeat_interleave(per_seed, 0),
                                    params.reshape(n_seeds * per_seed, -1),
                                    *images.shape[2:]).view(n_seeds, per_seed, 2, 3)
        margin = B.mirror_margin(theta_all, B.PATCH, *images.shape[2:])
        constants_all = T.JitterConstants(params, 255.0) if ranges.color else None
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
                out = B.render(images[seeds[g0:g1]], boxes[g0:g1], params[g0:g1], patch, ranges.color,
                               buffers=buffers, theta=theta_all[g0:g1], margin=margin, stage=stage,
                               constants=None if constants_all is None else constants_all[g0:g1, :])
                f.write(memoryview(out.numpy().reshape(-1)))
                stage("write")
    return split


def _lap(split, name, t, clock):
    now = clock()
    split[name] += now - t
    return now


def grid_sample_limit(images, n_seeds, per_seed, workers):
    """patches/s of the ``grid_sample`` calls alone, as the build makes them (sources padded
    with mirrored pixels, border padding), on ``workers`` threads of one op thread."""
    gen = torch.Generator().manual_seed(3)
    boxes = B.seed_windows(images[:n_seeds], gen)
    params = T.sample_params(n_seeds * per_seed, T.PRESETS["exemplar"], gen).view(n_seeds, per_seed, -1)
    theta_all = T.affine_thetas(boxes.repeat_interleave(per_seed, 0), params.reshape(-1, 12), 96, 96)
    margin = B.mirror_margin(theta_all, B.PATCH, 96, 96)
    mode = "border" if margin >= 0 else T.PADDING
    theta_all = theta_all.view(n_seeds, per_seed, 2, 3)
    if margin >= 0:
        theta_all = T.theta_in_padded(theta_all, margin, 96, 96)
    per_chunk, step = B.chunking(n_seeds, per_seed)
    jobs = []
    for i in range(0, n_seeds, per_chunk):
        i1 = min(n_seeds, i + per_chunk)
        src = images[i:i1] if margin < 0 else T.pad_mirrored(images[i:i1], margin)
        for j in range(0, per_seed, step):
            j1 = min(per_seed, j + step)
            theta = theta_all[i:i1, j:j1].reshape(-1, 2, 3)
            grid = T.affine_grid(theta, B.PATCH).view(i1 - i, (j1 - j) * B.PATCH, B.PATCH, 2)
            jobs.append((src.float(), grid, mode))
    with torch_threads(1), ThreadPoolExecutor(workers) as pool:
        _, dt = timed(lambda: list(pool.map(lambda job: T.sample(*job), jobs)))
    return n_seeds * per_seed / dt


def command_wall(extra_path, out_path, classes, per_seed, rounds):
    """Median wall seconds of ``a2 surrogate build`` (report preset) in a fresh interpreter,
    from before its start to its exit, and the rate the command printed."""
    cmd = [sys.executable, "-m", "luatorch_port", "surrogate", "build", "--extra", extra_path,
           "--out", out_path, "--classes", str(classes), "--per-seed", str(per_seed), "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    walls = []
    for _ in range(rounds):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - t)
    return statistics.median(walls), walls


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=400)
    ap.add_argument("--per-seed", type=int, default=100)
    ap.add_argument("--pil", type=int, default=10000, help="patches for the PIL loop")
    ap.add_argument("--reference", type=int, default=5000,
                    help="patches for render_reference (timing and agreement)")
    ap.add_argument("--images", type=int, default=4000,
                    help="source images (smooth noise, 96x96); the command reads them from a t7b")
    ap.add_argument("--out-dir", default=None,
                    help=f"where the builds write (default {SHM} when writable with room: in RAM, so the "
                         "disk's writeback, which here slowed the next measurement 1.7x for "
                         "seconds, stays out of the rates)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds of (report build, exemplar build, PIL loop) back to back; medians")
    ap.add_argument("--wall-rounds", type=int, default=3,
                    help="runs of the 400,000-patch command (0: skip)")
    args = ap.parse_args()
    res = Result("surrogate")

    gen = torch.Generator().manual_seed(0)
    # Smooth random images (upsampled noise) so bilinear differences are meaningful.
    small = torch.rand(args.images, 3, 12, 12, generator=gen)
    images = (torch.nn.functional.interpolate(small, size=96, mode="bilinear") * 255).round().to(torch.uint8)
    n = args.seeds * args.per_seed
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.1f}; {n} patches ({args.seeds} seeds x {args.per_seed}), 32x32 from 96x96")

    # PIL: the same geometric transformations of the same windows, one call per patch.
    k = args.per_seed
    g = torch.Generator().manual_seed(2)
    b = max(1, args.pil // k)
    src = images[:b]
    boxes = B.seed_windows(src, g)
    params = T.sample_params(b * k, T.preset("exemplar", color=False), g).view(b, k, -1)
    coeffs = pil_coefficients(boxes.repeat_interleave(k, 0), params.reshape(b * k, -1), 32)

    out_dir = args.out_dir or (SHM if ram_fits(SHM, 2 * REPORT_PATCHES * 3 * 32 * 32) else None)
    where = f"a temporary directory under {out_dir}" if out_dir else "the default temporary directory"
    print(f"build output: {where}{' (RAM)' if out_dir == SHM else ''}")
    rates = {}
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        def build(preset, n_threads=threads, workers=threads):
            with torch_threads(n_threads):
                _, dt = timed(lambda: B.build_surrogate(
                    images, os.path.join(tmp, "s.t7b"), torch.Generator().manual_seed(1),
                    n_seeds=args.seeds, per_seed=args.per_seed, preset=preset, workers=workers))
            return n / dt

        pil_loop(src[:max(1, b // 10)], coeffs[:max(1, b // 10) * k], k, 32)  # warm-up
        rounds = []
        for _ in range(args.rounds):  # the box is shared: each round's rates are moments apart
            report, exemplar = build("report"), build("exemplar")
            raw, dt = timed(lambda: pil_loop(src, coeffs, k, 32))
            rounds.append((report, exemplar, b * k / dt))
        rates["report"] = statistics.median(r[0] for r in rounds)
        rates["exemplar"] = statistics.median(r[1] for r in rounds)
        rates["pil"] = statistics.median(r[2] for r in rounds)
        rates["exemplar_1thread"] = build("exemplar", 1, 1)
        split = stage_split(images, min(args.seeds, 160), args.per_seed, os.path.join(tmp, "split.bin"))
        split_report = stage_split(images, min(args.seeds, 160), args.per_seed,
                                   os.path.join(tmp, "split.bin"), preset="report")
        wall = None
        if args.wall_rounds:
            extra = os.path.join(tmp, "extra.t7b")
            save_split(extra, images)
            wall, walls = command_wall(extra, os.path.join(tmp, "big.t7b"), REPORT_PATCHES // 100, 100,
                                       args.wall_rounds)

    # The straightforward torch path (float64, HSV round trip), on one thread.
    nr = max(1, args.reference // k)
    ref_boxes = B.seed_windows(images[:nr], g)
    ref_params = T.sample_params(nr * k, T.PRESETS["exemplar"], g).view(nr, k, -1)
    with torch_threads(1):
        reference, dt = timed(lambda: B.render_reference(images[:nr], ref_boxes, ref_params))
    rates["reference_1thread"] = nr * k / dt
    agree = (B.render(images[:nr], ref_boxes, ref_params).int() - reference.int()).abs()

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

    pil_rate = rates["pil"]
    for preset in ("report", "exemplar"):
        rate = rates[preset]
        res.figure(f"build_{preset}", rate, "patches/s", baseline=pil_rate,
                   ratio=rate / pil_rate, limit=limit, fraction_of_limit=rate / limit,
                   target=TARGETS[preset], met=rate >= TARGETS[preset],
                   rounds=[r[0 if preset == "report" else 1] for r in rounds])
    res.figure("pil_transform_per_patch", pil_rate, "patches/s", rounds=[r[2] for r in rounds],
               note="geometry only, one Image.transform per patch")
    res.figure("build_exemplar_1thread", rates["exemplar_1thread"], "patches/s")
    res.figure("render_reference_1thread", rates["reference_1thread"], "patches/s",
               note="float64 affine_grid + grid_sample + HSV round trip")
    res.figure("limit_grid_sample_alone", limit, "patches/s",
               note=f"the grid_sample calls alone, {threads} workers")
    if wall is not None:
        res.figure("command_wall_400k", wall, "s", target=TARGET_WALL_S, met=wall <= TARGET_WALL_S,
                   rounds=walls, note="a2 surrogate build --classes 4000 --per-seed 100 (report "
                                      "preset) in a fresh process, start-up and loading included")
    per = min(args.seeds, 160) * k
    res.figure("stage_split_1thread", {name: seconds / per * 1e6 for name, seconds in split.items()},
               "us CPU per patch (exemplar preset)")
    res.figure("stage_split_1thread_report",
               {name: seconds / per * 1e6 for name, seconds in split_report.items()},
               "us CPU per patch (report preset)")
    res.figure("agreement_vs_reference", {"max_abs": int(agree.max()),
                                          "share_differing": float((agree > 0).double().mean()),
                                          "share_above_1": float((agree > 1).double().mean())},
               "uint8 levels")
    res.figure("geometry_vs_pil", diff, "mean |difference|, grey levels, interior patches")

    print(f"{'method':40s} {'patches/s':>12s} {'vs PIL':>8s}")
    for name, rate in rates.items():
        print(f"{name:40s} {rate:12,.0f} {rate / pil_rate:7.2f}x")
    print(f"limit (grid_sample alone): {limit:,.0f}/s; report preset at "
          f"{rates['report'] / limit:.0%} of it")
    for preset in ("report", "exemplar"):
        print(f"target {preset}: {rates[preset]:,.0f}/s against {TARGETS[preset]:,}/s: "
              f"{'met' if rates[preset] >= TARGETS[preset] else 'NOT met'}")
    if wall is not None:
        print(f"a2 surrogate build, {REPORT_PATCHES:,} patches, fresh process: {wall:.2f} s wall "
              f"(rounds {', '.join(f'{w:.2f}' for w in walls)}) against {TARGET_WALL_S} s: "
              f"{'met' if wall <= TARGET_WALL_S else 'NOT met'}")
    for preset, stages in (("exemplar", split), ("report", split_report)):
        total = sum(stages.values())
        print(f"stage split, {preset} preset, one thread ({total / per * 1e6:.1f} us CPU per patch):")
        for name, seconds in stages.items():
            print(f"  {name:28s} {seconds / per * 1e6:6.2f} us  {100 * seconds / total:5.1f} %")
    print(f"fast path vs render_reference: max |difference| {agree.max().item()}, "
          f"{(agree > 0).double().mean().item():.2e} differ; geometry vs PIL: {diff:.3f} grey levels")
    res.write()


if __name__ == "__main__":
    main()
