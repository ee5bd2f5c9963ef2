"""Accuracy of report part 2.2 on photographs: the C choices and the two presets, one run.

On the development set (CIFAR-10 photographs in the course layout at 96x96; see
``../shared/devdata``): fit the dictionary with ``--preset coates``, encode train / val /
test once, then on the same features

- the SVM at Coates' fixed C = 100 (``a2 kmeans eval --C 100``),
- C chosen on val without refit (``--C auto --no-refit``) and with refit (``--C auto``),
- a plain scikit-learn transcription: ``StandardScaler`` + ``LinearSVC(squared hinge)``
  over the same C grid, C chosen on val, trained on train;

the same with bf16 encoding (the accuracy change that decides ``--precision``'s default);
then ``--preset report`` (train / val / test accuracy, k-means iterations, time). Tuned on
val, reported on test. Writes ``bench-out/kmeans_accuracy.json`` after every stage. Not part
of ``make bench`` (tens of minutes on 2 cores):

    python benchmarks/kmeans_accuracy.py [--data DIR] [--report-iterations N] [--no-sklearn]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from harness import OUT_DIR, Result

from luatorch_port.data import load_split
from luatorch_port.kmeans import C_GRID, COATES_ITERATIONS, accuracy, fit_classifier, run_fit, select_C
from luatorch_port.kmeans.svm import COATES_C


def pct(x):
    return None if x is None else round(100.0 * x, 2)


def svm_variants(feats, labels, res, tag):
    """C = 100, auto without refit, auto with refit on the same features; figures under tag."""
    (xtr, xva, xte), (ytr, yva, yte) = feats, labels
    out = {}
    t = time.perf_counter()
    clf = fit_classifier(xtr, ytr, C=COATES_C, n_classes=10)
    out["c100"] = {"seconds": time.perf_counter() - t, "C": COATES_C}
    t = time.perf_counter()
    best, curve, auto = select_C(xtr, ytr, xva, yva, n_classes=10)
    out["auto"] = {"seconds": time.perf_counter() - t, "C": best}
    t = time.perf_counter()
    refit = fit_classifier(torch.cat([xtr, xva]), torch.cat([ytr, yva]), C=best, n_classes=10,
                           init=auto.svm)
    out["auto_refit"] = {"seconds": time.perf_counter() - t, "C": best}
    for name, c in (("c100", clf), ("auto", auto), ("auto_refit", refit)):
        for split, x, y in (("train", xtr, ytr), ("val", xva, yva), ("test", xte, yte)):
            out[name][f"{split}_acc"] = pct(accuracy(c.predict(x), y))
        res.figure(f"{tag}.{name}.test_acc", out[name]["test_acc"], "%", C=out[name]["C"],
                   train_acc=out[name]["train_acc"], val_acc=out[name]["val_acc"],
                   seconds=round(out[name]["seconds"], 2))
    res.figure(f"{tag}.val_curve", [{k: (pct(v) if k.endswith("accuracy") else v)
                                     for k, v in p.items()} for p in curve], "list")
    print(f"{tag}: C=100 {out['c100']['test_acc']} %, auto C={best:g} "
          f"{out['auto']['test_acc']} %, refit {out['auto_refit']['test_acc']} % (test)", flush=True)
    return out


def sklearn_transcription(feats, labels, res, tag):
    """StandardScaler + LinearSVC(squared hinge) per C of the grid, C chosen on val."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    (xtr, xva, xte), (ytr, yva, yte) = [[a.numpy() for a in g] for g in (feats, labels)]
    t = time.perf_counter()
    sc = StandardScaler().fit(xtr)
    xtr, xva, xte = sc.transform(xtr), sc.transform(xva), sc.transform(xte)
    curve = []
    for c in C_GRID:
        # C on the sum of squared hinges = Coates' C (on their mean) / M: the same grid
        svc = LinearSVC(C=c / len(xtr), loss="squared_hinge", dual=True, max_iter=1000).fit(xtr, ytr)
        curve.append((float((svc.predict(xva) == yva).mean()), c, svc))
        print(f"  sklearn C={c:g}: val {100 * curve[-1][0]:.2f} %", flush=True)
    val, c, svc = max(curve, key=lambda p: (p[0], p[1]))
    test = float((svc.predict(xte) == yte).mean())
    res.figure(f"{tag}.sklearn.test_acc", pct(test), "%", C=c, val_acc=pct(val),
               seconds=round(time.perf_counter() - t, 1),
               val_curve=[{"C": cc, "val_acc": pct(v)} for v, cc, _ in curve])
    print(f"{tag}: sklearn C={c:g} {pct(test)} % (test)", flush=True)
    return pct(test)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="course-layout folder (default: the dev set)")
    ap.add_argument("--report-iterations", type=int, default=COATES_ITERATIONS)
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="k 16, 2 iterations, 2,000 patches")
    args = ap.parse_args(argv)
    if args.data is None:
        from bench_accuracy import devset
        args.data = devset(OUT_DIR / "devdata96")
        if args.data is None:
            print("skipped: no development set (../shared/devdata is absent); give --data DIR")
            return
    d, work = args.data, OUT_DIR / "kmeans-accuracy"
    work.mkdir(parents=True, exist_ok=True)
    res = Result("kmeans_accuracy")
    res.context["data"] = str(d)
    splits = {s: load_split(d / f"{s}.t7b", expect="labelled") for s in ("train", "val", "test")}
    labels = [splits[s].labels for s in ("train", "val", "test")]
    for s, sp in splits.items():
        res.figure(f"images.{s}", len(sp), "images")
    fp32_out = None
    for preset in ("coates", "report"):
        gen = torch.Generator().manual_seed(args.seed)
        kw = {"iterations": args.report_iterations} if preset == "report" else {}
        if args.smoke:
            kw = {"k": 16, "iterations": 2, "n_patches": 2000}
        t = time.perf_counter()
        fit = run_fit(d / "extra.t7b", work / f"centroids_{preset}.t7", preset=preset,
                      generator=gen, **kw)
        fit_s = time.perf_counter() - t
        model = fit["model"]
        res.figure(f"{preset}.fit_seconds", round(fit_s, 1), "s", images=fit["images"],
                   patches=model.n_patches_used_, iterations=model.iterations,
                   final_inertia=model.inertia_, settings=fit["settings"])
        print(f"{preset}: fit {fit_s:.1f} s ({model.n_patches_used_} patches, "
              f"{model.iterations} iterations)", flush=True)
        res.write()
        for precision in (("fp32", "bf16") if preset == "coates" else ("fp32",)):
            t = time.perf_counter()
            feats = [model.transform(splits[s].images, precision=precision)
                     for s in ("train", "val", "test")]
            enc_s = time.perf_counter() - t
            n = sum(len(f) for f in feats)
            res.figure(f"{preset}.{precision}.encode_rate", round(n / enc_s, 1), "img/s",
                       seconds=round(enc_s, 1))
            print(f"{preset} {precision}: encoded {n} images in {enc_s:.1f} s", flush=True)
            out = svm_variants(feats, labels, res, f"{preset}.{precision}")
            if preset == "coates" and precision == "fp32":
                fp32_out = out
                res.figure("coates.auto_refit_minus_c100",
                           round(out["auto_refit"]["test_acc"] - out["c100"]["test_acc"], 2),
                           "points", target=3.0)
                if not args.no_sklearn:     # the comparison the targets name, before the rest
                    sk = sklearn_transcription(feats, labels, res, "coates.fp32")
                    res.figure("coates.auto_refit_minus_sklearn",
                               round(out["auto_refit"]["test_acc"] - sk, 2), "points", target=1.0)
            res.figure(f"{preset}.{precision}.pipeline_seconds",
                       round(fit_s + enc_s + out["auto"]["seconds"] + out["auto_refit"]["seconds"], 1),
                       "s", note="fit + encode + C grid + refit, in-process")
            if precision == "bf16":
                for name in ("c100", "auto", "auto_refit"):
                    res.figure(f"coates.bf16_minus_fp32.{name}",
                               round(out[name]["test_acc"] - fp32_out[name]["test_acc"], 2), "points",
                               val=round(out[name]["val_acc"] - fp32_out[name]["val_acc"], 2))
            res.write()
    res.write()


if __name__ == "__main__":
    main()
