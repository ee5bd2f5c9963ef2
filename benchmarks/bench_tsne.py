"""Benchmark: `a2 tsne val.t7b` end to end (the report's 3.2: val's 1,000 images), beside
scikit-learn's Barnes-Hut t-SNE on the same input, in the same run.

Ours: the command as a user types it, a fresh process each round (start-up, loading, t-SNE of
channel 1 of each image (9,216 values), trustworthiness, both figures, the CSV): the default
(exact gradient, one thread), ``--threads 0`` (all cores) and ``--method barnes-hut`` (the
command with scikit-learn's t-SNE), the variants interleaved round by round so that a busy
machine weighs on each alike. Baseline: scikit-learn's TSNE (Barnes-Hut, θ 0.5, same
perplexity, iterations and initialisation) on the same 9,216-d features, timed in-process (its
fit only, no start-up, loading or figures). The floor: ``python -c "import torch"``, which every
run of the command pays before any work (``limit``; ``fraction_of_limit`` = floor / wall).
Each map's trustworthiness (k = 5, against the raw features) is measured the same way for all.
The distance GEMM is timed alone in float32 (the default) and float64, with how far apart
their distances and nearest neighbours are. ``--compare DIR`` also runs the command from
another checkout (e.g. the previous commit) in the same rounds.

Input: ``--data FILE``, else the development val split (``../devdata/d96/val.t7b`` beside
the checkout), else the first 1,000 images of the embedded digits sample at 96×96.

    python benchmarks/bench_tsne.py [--data val.t7b] [--rounds 3] [--compare DIR]   -> bench-out/tsne.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from harness import ROOT, Result, load_average  # noqa: E402
from luatorch_port.visualize import features, tsne, tsne_exact  # noqa: E402
from luatorch_port.visualize.pca import sq_distances  # noqa: E402
from luatorch_port.visualize.trust import trustworthiness  # noqa: E402

N = 1000
TARGET_S = 5.0
DEV_VAL = ROOT.parent / "devdata" / "d96" / "val.t7b"
VARIANTS = {"default": [], "threads0": ["--threads", "0"], "barnes_hut": ["--method", "barnes-hut"]}


def input_file(arg, tmp: Path) -> Path:
    if arg:
        return Path(arg)
    if DEV_VAL.exists():
        return DEV_VAL
    from luatorch_port.data import save_split
    from luatorch_port.data.sample import make_sample_images
    images, labels, _ = make_sample_images(seed=1, image_size=96)
    path = tmp / "digits_val.t7b"
    save_split(path, images[:N], labels[:N], n_classes=10)
    return path


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_command(path: Path, out: Path, extra: list[str], root: Path = ROOT) -> tuple[float, float, dict]:
    """Wall and CPU seconds of ``a2 tsne path`` (the checkout at ``root``) in a fresh process, and
    its JSON record's results. On a loaded machine the CPU time (all threads) is the steadier."""
    env = dict(os.environ, PYTHONPATH=str(root))
    c0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "luatorch_port", "tsne", str(path), "--out", str(out), "--quiet",
                    *extra], check=True, env=env, capture_output=True, cwd=root)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - c0
    record = json.loads(out.with_name(out.stem + ".run.json").read_text())  # cli.common.record_path
    return wall, cpu, record["results"]


def import_torch_wall() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - t0


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])


def median_steps(results: list[dict]) -> dict:
    keys = results[0]["seconds"].keys()
    return {k: round(median([r["seconds"][k] for r in results]), 4) for k in keys}


def distance_precision(x: torch.Tensor, rounds: int) -> dict:
    """The distance GEMM in float32 and float64 (1 thread): seconds, and how far apart they land."""
    torch.set_num_threads(1)          # as `a2 tsne --threads 1`, the default
    out = {}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            d2 = sq_distances(x, dtype=dtype)
            times.append(time.perf_counter() - t0)
        out[name] = (median(times), times, d2)
    d32, d64 = out["float32"][2], out["float64"][2]
    off = ~torch.eye(len(x), dtype=torch.bool)
    rel = float(((d32 - d64).abs()[off] / d64[off].clamp_min(1e-300)).max())
    k = min(len(x) - 1, int(3 * tsne.PERPLEXITY + 1))
    i32 = tsne_exact.nearest_from_sq_distances(d32, k)[1].sort(1).values
    i64 = tsne_exact.nearest_from_sq_distances(d64, k)[1].sort(1).values
    return {"times": {n: (m, t) for n, (m, t, _) in out.items()}, "max_rel_diff": rel, "k": k,
            "same_neighbour_sets": float((i32 == i64).all(1).double().mean())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="a course-layout split (default: the dev val split, else digits)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compare", help="another checkout whose `a2 tsne` (default options) runs in the same rounds")
    args = ap.parse_args()
    res = Result("tsne")
    variants = dict(VARIANTS)
    if args.compare:
        variants["compare"] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = input_file(args.data, tmp)
        res.context["input"] = str(path)
        res.context["compare"] = args.compare
        print(f"input: {path}; {os.cpu_count()} cores, load average {load_average()}")

        runs = {name: {"wall": [], "cpu": [], "results": []} for name in variants}
        floor = []
        for r in range(args.rounds):
            floor.append(import_torch_wall())
            for name, extra in variants.items():
                root = Path(args.compare) if name == "compare" else ROOT
                wall, cpu, result = run_command(path, tmp / f"{name}.png", extra, root=root)
                runs[name]["wall"].append(wall)
                runs[name]["cpu"].append(cpu)
                runs[name]["results"].append(result)
            print(f"round {r + 1}: " + ", ".join(f"{n} {runs[n]['wall'][-1]:.2f} s" for n in variants)
                  + f", import torch {floor[-1]:.2f} s; load average {load_average()}")
        for name, run in runs.items():
            last = run["results"][-1]
            print(f"a2 tsne {' '.join(variants[name]) or '(default)'}{' [' + args.compare + ']' if name == 'compare' else ''}: "
                  f"median {median(run['wall']):.2f} s wall of {[round(w, 2) for w in run['wall']]}, "
                  f"{median(run['cpu']):.2f} s CPU; steps {median_steps(run['results'])}; "
                  f"trustworthiness {last['trustworthiness']:.4f}")

        from luatorch_port.data import load_split
        from sklearn.manifold import TSNE
        x = features.raw_channel_features(load_split(path).images[:N], channel=1).to(torch.float64)
        base, base_cpu, base_trusts = [], [], []
        for r in range(args.rounds):
            c0, t0 = time.process_time(), time.perf_counter()
            coords = TSNE(n_components=2, perplexity=tsne.PERPLEXITY, angle=tsne.THETA, max_iter=tsne.N_ITER,
                          init="pca", learning_rate="auto", method="barnes_hut",
                          random_state=r).fit_transform(x.numpy())
            base.append(time.perf_counter() - t0)
            base_cpu.append(time.process_time() - c0)
            base_trusts.append(trustworthiness(x, coords, n_neighbors=tsne.TRUST_NEIGHBORS))
        base_trust = median(base_trusts)
        print(f"scikit-learn Barnes-Hut on the same {x.shape[1]}-d input: median {median(base):.2f} s "
              f"(fit only) of {[round(b, 2) for b in base]}, {median(base_cpu):.2f} s CPU; "
              f"trustworthiness {[round(t, 4) for t in base_trusts]} (random_state 0..{args.rounds - 1})")
        # The exact method is deterministic, but its map moves with the last bits of its input (t-SNE
        # is chaotic): its maps from float64 and from float32 distances show how far trustworthiness
        # moves for reasons that are not the method's.
        exact_trusts = {}
        torch.set_num_threads(1)
        for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
            d2 = sq_distances(x, dtype=dtype)
            coords = tsne_exact.tsne_exact(None, perplexity=tsne.PERPLEXITY, n_iter=tsne.N_ITER, sq_dists=d2).coords
            exact_trusts[name] = trustworthiness(None, coords.double(), n_neighbors=tsne.TRUST_NEIGHBORS, sq_dists=d2)
        print(f"exact t-SNE in-process, trustworthiness from float32 / float64 distances: "
              f"{exact_trusts['float32']:.4f} / {exact_trusts['float64']:.4f}")
        dist = distance_precision(x, args.rounds)
        flops = 2.0 * x.shape[0] ** 2 * x.shape[1]
        for name, (m, _) in dist["times"].items():
            print(f"distance GEMM alone ({x.shape[0]}x{x.shape[1]}, {name}, 1 thread): median {m:.3f} s "
                  f"({flops / m / 1e9:.1f} GFLOP/s)")
        print(f"float32 against float64 distances: max relative difference {dist['max_rel_diff']:.2e}; "
              f"rows with the same {dist['k']} nearest neighbours: {dist['same_neighbour_sets']:.4f}")

    d = runs["default"]
    t_def, lim = median(d["wall"]), median(floor)
    steps = median_steps(d["results"])
    res.figure("a2_tsne_wall", t_def, "s", rounds=d["wall"], target=TARGET_S, met=t_def <= TARGET_S,
               baseline=median(base), ratio=median(base) / t_def, limit=lim, fraction_of_limit=lim / t_def,
               steps=steps, startup=round(t_def - steps["total"], 4),
               trustworthiness=d["results"][-1]["trustworthiness"], baseline_trustworthiness=base_trust,
               baseline_trustworthiness_rounds=base_trusts,
               method=d["results"][-1]["method"], threads=1,
               note="a2 tsne FILE (defaults), fresh process, end to end, median of rounds; baseline: scikit-learn "
                    "Barnes-Hut fit only, in-process; limit: `python -c 'import torch'` in the same rounds; "
                    "steps: the command's own timings (median per step), startup = wall - steps.total")
    res.figure("a2_tsne_cpu", median(d["cpu"]), "s", rounds=d["cpu"], target=TARGET_S,
               baseline=median(base_cpu), ratio=median(base_cpu) / median(d["cpu"]),
               note="CPU seconds of the same runs (all threads): what a quiet machine's wall time approaches "
                    "when one thread does the work")
    for name, label in (("threads0", "--threads 0 (all cores)"), ("barnes_hut", "--method barnes-hut"),
                        ("compare", f"the checkout at {args.compare}, defaults")):
        if name not in runs:
            continue
        run = runs[name]
        w = median(run["wall"])
        res.figure(f"a2_tsne_{name}_wall", w, "s", rounds=run["wall"], cpu_s=median(run["cpu"]),
                   ratio_to_default=w / t_def, steps=median_steps(run["results"]),
                   trustworthiness=run["results"][-1]["trustworthiness"], method=run["results"][-1]["method"],
                   note=f"a2 tsne FILE {label}, same rounds as the default")
    res.figure("import_torch_wall", lim, "s", rounds=floor, note="python -c 'import torch', fresh process")
    res.figure("sklearn_barnes_hut_fit", median(base), "s", rounds=base, cpu_s=median(base_cpu),
               trustworthiness=base_trust, trustworthiness_rounds=base_trusts, input_dims=int(x.shape[1]),
               note="trustworthiness: median over random_state 0..rounds-1, each round's in trustworthiness_rounds")
    res.figure("exact_trustworthiness_by_distance_dtype", exact_trusts["float32"], "1", float64=exact_trusts["float64"],
               note="in-process exact t-SNE (the default's algorithm) from float32 (value) and float64 distances: "
                    "the spread of trustworthiness under rounding alone")
    for name, (m, times) in dist["times"].items():
        res.figure(f"distance_gemm_{name}", m, "s", rounds=times, gflops=flops / m / 1e9,
                   note="the one N×N distance GEMM of the default (centred features), alone, 1 thread")
    res.figure("distance_float32_max_rel_diff", dist["max_rel_diff"], "1",
               note="max over pairs of |d32 - d64| / d64, squared distances")
    res.figure("distance_float32_same_neighbour_sets", dist["same_neighbour_sets"], "fraction of rows", k=dist["k"],
               note="rows whose k nearest neighbours (the affinities' support) are the same set in float32 and float64")
    res.write()
    print(f"target <= {TARGET_S:.0f} s: {'met' if t_def <= TARGET_S else 'NOT met'} ({t_def:.2f} s; "
          f"load average {load_average()})")


if __name__ == "__main__":
    main()
