"""Accuracy of the encoder's precisions on photographs: ``a2 kmeans eval`` with fp32 and bf16.

The same dictionary, the same splits and the same SVM settings (``--C auto``: C chosen on
val, refit on train + val) for ``--precision fp32`` and ``--precision bf16``; C is tuned on
val, test is only reported. The change of test accuracy decides the default precision
(budget: 0.2 points). Writes ``bench-out/encode_accuracy.json``. Not part of ``make bench``
(minutes on 2 cores); skipped cleanly without the data:

    python benchmarks/encode_accuracy.py --centroids CENTROIDS.t7 --data DIR

DIR holds train.t7b, val.t7b and test.t7b in the course layout; CENTROIDS.t7 comes from
``a2 kmeans fit --extra DIR/extra.t7b`` (default preset).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from harness import Result

from luatorch_port.kmeans import run_eval

ACCURACY_BUDGET = 0.2      # points of test accuracy bf16 may lose against fp32


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--centroids", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    args = ap.parse_args(argv)
    splits = {s: args.data / f"{s}.t7b" for s in ("train", "val", "test")}
    missing = [str(p) for p in [args.centroids, *splits.values()] if not p.exists()]
    if missing:
        print(f"skipped: missing {', '.join(missing)}")
        return 0
    res = Result("encode_accuracy")
    acc = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16"):
            t = time.perf_counter()
            out = run_eval(args.centroids, splits["train"], splits["test"], val=splits["val"],
                           precision=precision, svm_out=Path(tmp) / f"{precision}.svm.t7")
            ev = out["evaluation"]
            acc[precision] = {"train": round(100 * ev.train_accuracy, 2), "C": ev.C,
                              "val": round(100 * ev.val_accuracy, 2),
                              "test": round(100 * ev.test_accuracy, 2)}
            res.figure(f"encode_accuracy.{precision}.test", acc[precision]["test"], "%",
                       val=acc[precision]["val"], train=acc[precision]["train"], C=ev.C,
                       seconds=round(time.perf_counter() - t, 1), sizes=out["sizes"])
            print(f"{precision}: C = {ev.C:g}, train {acc[precision]['train']:.2f} %, val "
                  f"{acc[precision]['val']:.2f} %, test {acc[precision]['test']:.2f} %", flush=True)
    change = round(acc["bf16"]["test"] - acc["fp32"]["test"], 2)
    res.figure("encode_accuracy.bf16_minus_fp32.test", change, "points",
               val=round(acc["bf16"]["val"] - acc["fp32"]["val"], 2), limit=-ACCURACY_BUDGET,
               met=bool(change >= -ACCURACY_BUDGET),
               note="test accuracy, bf16 encoding minus fp32, same dictionary and SVM settings")
    print(f"bf16 - fp32: test {change:+.2f} points (budget -{ACCURACY_BUDGET})")
    res.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
