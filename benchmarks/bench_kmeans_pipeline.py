"""The full default k-means pipeline on photographs, as a user types it: `a2 kmeans fit`, then
`a2 kmeans eval` (C chosen on val), wall time end to end. Target: <= 60 s on 2 cores.

Data: the development set (CIFAR-10 photographs in the course layout, 96x96: train 4,000,
val 1,000, test 3,000, extra 5,000; built from ``../shared/devdata``), or ``--data DIR``;
skipped cleanly (a note in the JSON) without either. Each command runs in its own process,
so start-up and loading count. Beside it in the same run: the baseline eval at Coates' fixed
C = 100 (``--C 100 --no-val``, one SVM fit), and the machine limit: the pipeline's k-means and
encoding GEMMs at the fp32 GEMM peak measured in the same run. ``--sklearn`` adds a plain
scikit-learn transcription of the classification on the same features (StandardScaler +
LinearSVC over the same C grid, C chosen on val), which takes many minutes.

    python benchmarks/bench_kmeans_pipeline.py [--data DIR] [--sklearn] [--fit-precision bf16]

Results: bench-out/kmeans_pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench_kmeans import gemm_peak
from harness import OUT_DIR, Result

TARGET_SECONDS = 60.0


def a2(*args):
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "luatorch_port", *map(str, args)], check=True)
    return time.perf_counter() - t


def selftrain(d: Path, cents: Path, work: Path, auto: dict, res: Result) -> None:
    """2.4 as typed on the same centroids; its test accuracy beside k-means alone (auto C, refit)."""
    from luatorch_port.data import load_split
    from luatorch_port.data.kaggle import read_predictions

    out, pred = work / "selftrain", work / "selftrain.csv"
    labelled_extra = d / "extra_labels.t7"  # only scores the pseudo-labels
    extra_labels = ["--extra-labels", labelled_extra] if labelled_extra.exists() else []
    seconds = a2("pseudolabel", "train", "--learner", "kmeans", "--centroids", cents,
                 "--train", d / "train.t7b", "--val", d / "val.t7b", "--extra", d / "extra.t7b",
                 *extra_labels,
                 "--test", d / "test.t7b", "--predictions", pred, "--rounds", 3,
                 "--add-fraction", 0.1, "--out", out, "--quiet")
    rec = json.loads((out / "run.json").read_text())["results"]
    labels = load_split(d / "test.t7b", expect="labelled").labels
    acc = 100 * float((read_predictions(pred, n_expected=len(labels)) == labels).double().mean())
    ref = 100 * auto["test_accuracy"]
    res.figure("selftrain.test_accuracy", acc, "%", baseline=ref, delta=acc - ref, target=1.0,
               C=rec["C"], seconds=seconds,
               rounds=[{k: r[k] for k in ("round", "added", "added_accuracy", "val_accuracy")}
                       for r in rec["rounds"]],
               note="a2 pseudolabel train --learner kmeans (3 rounds of 10 % of extra, C chosen on "
                    "val before round 0); baseline: a2 kmeans eval (auto C, refit) on the same centroids")
    print(f"2.4 self-training: test accuracy {acc:.2f} % against k-means alone {ref:.2f} % "
          f"({acc - ref:+.2f} points; target +1) in {seconds:.1f} s")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="course-layout folder")
    ap.add_argument("--sklearn", action="store_true",
                    help="also the scikit-learn transcription with C chosen on val (minutes)")
    ap.add_argument("--smoke", action="store_true", help="k 16, 2,000 patches, 2 iterations")
    ap.add_argument("--selftrain", action="store_true",
                    help="also 2.4: a2 pseudolabel train --learner kmeans on the same centroids "
                         "(3 rounds of 10 %% of extra, C on val) against k-means alone")
    ap.add_argument("--fit-precision", choices=("fp32", "bf16"), default=None,
                    help="a2 kmeans fit --precision (default: the command's own default)")
    args = ap.parse_args(argv)
    res = Result("kmeans_pipeline")
    d = args.data
    if d is None:
        from bench_accuracy import devset
        d = devset(OUT_DIR / "devdata96")
    if d is None:
        res.note("skipped: no development set (../shared/devdata is absent) and no --data")
        print("skipped: no development set; give --data DIR")
        res.write()
        return
    res.context["data"] = str(d)
    work = OUT_DIR / "kmeans-pipeline"
    work.mkdir(parents=True, exist_ok=True)
    cents = work / "centroids.t7"
    splits = ["--train", d / "train.t7b", "--test", d / "test.t7b"]
    smoke = ["--k", 16, "--patches", 2000, "--iterations", 2] if args.smoke else []
    precision = ["--precision", args.fit_precision] if args.fit_precision else []
    t_fit = a2("kmeans", "fit", "--extra", d / "extra.t7b", "--out", cents, "--quiet", *smoke,
               *precision)
    t_eval = a2("kmeans", "eval", "--centroids", cents, *splits, "--val", d / "val.t7b",
                "--svm-out", work / "auto.svm.t7", "--quiet")
    auto = json.loads((work / "auto.svm.run.json").read_text())["results"]
    t_base = a2("kmeans", "eval", "--centroids", cents, *splits, "--C", "100", "--no-val",
                "--svm-out", work / "c100.svm.t7", "--quiet")
    base = json.loads((work / "c100.svm.run.json").read_text())["results"]
    fit = json.loads((work / "centroids.run.json").read_text())
    cfg = fit["config"]
    # the machine limit: k-means distance GEMMs (iterations + the final assignment) and the
    # encoder's whitening and distance GEMMs, all at this run's fp32 GEMM peak
    k, d_patch = cfg["k"], 3 * cfg["rf"] ** 2
    per_image = ((cfg["image_size"] - cfg["rf"]) // cfg["stride"] + 1) ** 2
    images = auto["train_images"] + auto["val_images"] + auto["test_images"]
    flop = (2 * cfg["n_patches"] * (d_patch + 1) * k * (cfg["iterations"] + 1)
            + 2 * images * per_image * (d_patch * d_patch + (d_patch + 2) * k))
    peak = gemm_peak(torch.float32)
    limit = flop / peak / 1e9
    total = t_fit + t_eval
    res.figure("pipeline_seconds", total, "s", target=TARGET_SECONDS, limit=limit,
               fraction_of_limit=limit / total, fit_seconds=t_fit, eval_seconds=t_eval,
               note="a2 kmeans fit + a2 kmeans eval (auto C, refit), each its own process; "
                    "limit: the k-means and encoding GEMMs at the fp32 peak of this run")
    fit_stages = fit["results"].get("stage_seconds", {})
    precision = cfg.get("precision", "fp32")
    fit_peak = gemm_peak(torch.bfloat16) if precision == "bf16" else peak
    fit_limit = 2 * cfg["n_patches"] * (d_patch + 1) * k * (cfg["iterations"] + 1) / fit_peak / 1e9
    res.figure("fit_seconds", t_fit, "s", stages=fit_stages, precision=precision,
               startup_seconds=t_fit - fit["results"]["seconds"], limit=fit_limit,
               fraction_of_limit=fit_limit / t_fit, gemm_peak=fit_peak,
               note="a2 kmeans fit in its own process; stages from its record (startup: the "
                    "process's wall time outside run_fit); limit: the k-means score GEMMs at "
                    "this run's 2048^3 peak of the fit's precision")
    res.figure("eval_seconds", t_eval, "s", baseline=t_base, ratio=t_eval / t_base,
               stages=auto["stage_seconds"], baseline_stages=base["stage_seconds"],
               note="baseline: a2 kmeans eval --C 100 --no-val (one SVM fit), same run")
    res.figure("gemm_peak.fp32", peak, "GFLOP/s")
    for name, r in (("auto", auto), ("c100", base)):
        res.figure(f"{name}.test_accuracy", 100 * r["test_accuracy"], "%", C=r["C"],
                   train_accuracy=100 * r["train_accuracy"],
                   val_accuracy=None if r["val_accuracy"] is None else 100 * r["val_accuracy"])
    print("a2 kmeans fit stages: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in fit_stages.items())
          + f", startup {t_fit - fit['results']['seconds']:.1f} s")
    print(f"a2 kmeans fit {t_fit:.1f} s + eval {t_eval:.1f} s = {total:.1f} s (target <= "
          f"{TARGET_SECONDS:g} s; GEMM limit {limit:.1f} s at {peak:.0f} GFLOP/s); eval at C=100 "
          f"{t_base:.1f} s; test accuracy auto C={auto['C']:g} {100 * auto['test_accuracy']:.2f} %, "
          f"C=100 {100 * base['test_accuracy']:.2f} %")
    if args.selftrain:
        selftrain(d, cents, work, auto, res)
    if args.sklearn:
        from kmeans_accuracy import sklearn_transcription

        from luatorch_port.data import load_split
        from luatorch_port.kmeans import CoatesKMeans
        model = CoatesKMeans.load(cents)
        sp = [load_split(d / f"{s}.t7b", expect="labelled") for s in ("train", "val", "test")]
        sk = sklearn_transcription([model.transform(s.images) for s in sp], [s.labels for s in sp],
                                   res, "sklearn_transcription")
        res.figure("auto_minus_sklearn", 100 * auto["test_accuracy"] - sk, "points", target=1.0)
    res.write()


if __name__ == "__main__":
    main()
