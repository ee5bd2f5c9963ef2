"""The L2-SVM's solvers on real k-means features: the default (L-BFGS in the rows' span)
must choose the same C and score the same test accuracy as the previous one (L-BFGS on
the features), and here is how long each takes.

Encodes the train / val / test splits of a course-layout directory with a dictionary made
by ``a2 kmeans fit`` (once; the features are cached beside the result), then runs
``fit_svm(C="auto")`` (the C grid on val, the refit on train + val, as ``a2 kmeans eval``)
and one fit at Coates' C = 100 with each solver. Result: bench-out/svm_real.json.

    python benchmarks/svm_accuracy.py --data DIR --centroids centroids.t7
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import harness
from harness import Result

from luatorch_port.data import load_split
from luatorch_port.kmeans import CoatesKMeans
from luatorch_port.kmeans.svm import COATES_C, L2SVM, Standardizer, accuracy, fit_svm

TIGHT_TOL = 1e-8            # L2SVM tol of the converged comparison


def features(data: Path, centroids: Path, cache: Path) -> dict:
    if cache.exists():
        return torch.load(cache, weights_only=True)
    model = CoatesKMeans.load(centroids)
    out = {}
    for split in ("train", "val", "test"):
        s = load_split(data / f"{split}.t7b", expect="labelled")
        out[split] = (model.transform(s.images), s.labels)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, cache)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="directory of train/val/test.t7b")
    ap.add_argument("--centroids", type=Path, required=True, help="a2 kmeans fit's centroids.t7")
    args = ap.parse_args(argv)
    for p in [args.data / f"{s}.t7b" for s in ("train", "val", "test")] + [args.centroids]:
        if not p.exists():
            sys.exit(f"Error: {p} does not exist")
    res = Result("svm_real")
    feats = features(args.data, args.centroids, harness.OUT_DIR / "svm_real_features.pt")
    (xtr, ytr), (xva, yva), (xte, yte) = feats["train"], feats["val"], feats["test"]
    print(f"features: train {tuple(xtr.shape)}, val {tuple(xva.shape)}, test {tuple(xte.shape)}")
    st = Standardizer().fit(xtr)
    xs, xts = st.transform(xtr), st.transform(xte)
    out = {}
    for solver in ("auto", "features"):
        t = time.perf_counter()
        svm = L2SVM(C=COATES_C, solver=solver).fit(xs, ytr)
        one_s = time.perf_counter() - t
        t = time.perf_counter()
        fit = fit_svm(xtr, ytr, xva, yva, C="auto", solver=solver)
        stage_s = time.perf_counter() - t
        out[solver] = {"one_fit_seconds": one_s, "one_fit_solver": svm.solver_,
                       "one_fit_objective": svm.info_.objective,
                       "one_fit_test_accuracy": accuracy(svm.predict(xts), yte),
                       "auto_seconds": stage_s, "grid_seconds": fit.seconds["grid"],
                       "refit_seconds": fit.seconds["refit"], "chosen_C": fit.C,
                       "val_accuracy": fit.val_accuracy,
                       "test_accuracy": accuracy(fit.classifier.predict(xte), yte),
                       "val_curve": [round(p["val_accuracy"], 4) for p in fit.curve]}
        r = out[solver]
        print(f"{solver:8s} one fit C=100 {one_s:6.2f} s ({svm.solver_}), test "
              f"{100 * r['one_fit_test_accuracy']:.2f} %; --C auto {stage_s:6.2f} s (grid "
              f"{r['grid_seconds']:.2f} + refit {r['refit_seconds']:.2f}), C={fit.C:g}, val "
              f"{100 * fit.val_accuracy:.2f} %, test {100 * r['test_accuracy']:.2f} %")
    new, old = out["auto"], out["features"]
    same = new["chosen_C"] == old["chosen_C"] and new["test_accuracy"] == old["test_accuracy"]
    # at the default tolerance both L-BFGS runs stop within tol of the optimum, at slightly
    # different points; converged further, the two solvers must predict the same classes
    c_tight = new["chosen_C"]
    tight = {s: L2SVM(C=c_tight, tol=TIGHT_TOL, solver=s).fit(xs, ytr) for s in ("auto", "features")}
    tight_pred = {s: svm.predict(xts) for s, svm in tight.items()}
    tight_diff = int((tight_pred["auto"] != tight_pred["features"]).sum())
    print(f"at C={c_tight:g}, tol {TIGHT_TOL:g}: test accuracy {100 * accuracy(tight_pred['auto'], yte):.2f} % "
          f"(span) and {100 * accuracy(tight_pred['features'], yte):.2f} % (features); "
          f"{tight_diff} of {len(yte)} test predictions differ")
    res.figure("svm_real.tight_test_predictions_differing", tight_diff, "images", C=c_tight,
               tol=TIGHT_TOL, test_accuracy=accuracy(tight_pred["auto"], yte),
               baseline_test_accuracy=accuracy(tight_pred["features"], yte),
               evaluations=tight["auto"].info_.evaluations,
               baseline_evaluations=tight["features"].info_.evaluations,
               note="one fit on train at the chosen C with both solvers converged further "
                    "(L2SVM tol); baseline: solver='features'")
    res.figure("svm_real.auto_seconds", new["auto_seconds"], "s", baseline=old["auto_seconds"],
               ratio=old["auto_seconds"] / new["auto_seconds"], chosen_C=new["chosen_C"],
               baseline_chosen_C=old["chosen_C"], test_accuracy=new["test_accuracy"],
               baseline_test_accuracy=old["test_accuracy"], same_C_and_accuracy=same,
               note="fit_svm(C='auto') as in a2 kmeans eval; baseline: solver='features', same run")
    res.figure("svm_real.one_fit_seconds", new["one_fit_seconds"], "s",
               baseline=old["one_fit_seconds"], ratio=old["one_fit_seconds"] / new["one_fit_seconds"],
               test_accuracy=new["one_fit_test_accuracy"],
               baseline_test_accuracy=old["one_fit_test_accuracy"],
               note="one fit at C = 100; baseline: solver='features', same run")
    res.context["solvers"] = out
    res.context["data"] = str(args.data)
    res.context["centroids"] = str(args.centroids)
    print(f"same chosen C and test accuracy: {same}")
    res.write()


if __name__ == "__main__":
    main()
