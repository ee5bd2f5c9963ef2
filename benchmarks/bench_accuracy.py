"""Accuracy of the report's methods on photographs, each beside the number it must beat.

Runs ``a2 report`` (the library's ``run_report``) on a natural-image set in the course layout
at the ``standard`` budget, then writes ``bench-out/accuracy.json``: train/val/test accuracy
of every method, its reference (2.1: the same network untrained; 2.3: the supervised
baseline; 2.4: k-means alone), the differences, and whether each target is met. Tune on val,
report test: nothing here chooses a setting by its test accuracy.

The data: ``--data DIR``, else the development set built from ``../shared/devdata``
(CIFAR-10 photographs, train 10x400, val 10x100, test 10x300, extra 5,000, at 96x96) into
``bench-out/devdata96`` (skipped cleanly when ../shared/devdata is absent). The report folder
is kept (``bench-out/accuracy-report``), so an interrupted run resumes where it stopped.

    python benchmarks/bench_accuracy.py [--data DIR] [--budget standard] [--seed 1]

About an hour on a 2-core CPU at the standard budget (``make bench-accuracy``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from harness import OUT_DIR, ROOT, Result

DEVDATA = ROOT.parent / "shared" / "devdata"
# Targets: points above the reference on the test split, measured by this benchmark.
TARGETS = {"surrogate": 3.0, "pseudolabel": 1.0, "combo": 1.0}


def devset(out: Path) -> Path | None:
    """The photographs in the course layout, built once; None when ../shared/devdata is absent."""
    if (out / "test.t7b").exists():
        return out
    builder = DEVDATA / "build_devset.py"
    if not builder.exists():
        return None
    subprocess.run([sys.executable, str(builder), str(out), "--size", "96"], check=True)
    return out


def summarize(states: dict, res: Result) -> None:
    """Every method's accuracy, and each semi-supervised one against its reference and target."""
    from luatorch_port.report.render import METHOD_ROWS, comparisons

    for name, _label, _sec in METHOD_ROWS:
        st = states.get(name) or {}
        if st.get("status") != "done":
            res.note(f"{name}: {st.get('status', 'not run')}")
            continue
        for split in ("train", "val", "test"):
            if st["results"].get(f"{split}_acc") is not None:
                res.figure(f"{name}.{split}_acc", st["results"][f"{split}_acc"], "%")
        res.figure(f"{name}.seconds", st.get("seconds"), "s")
    for c in comparisons(states):
        if c["status"] != "compared":
            res.note(f"{c['method']} vs {c['reference']}: {c['status']}")
            continue
        target = TARGETS[c["method"]]
        res.figure(f"{c['method']}.test_vs_reference", c["test_delta"], "points", reference=c["reference"],
                   reference_test_acc=c["reference_test_acc"], reference_val_acc=c["reference_val_acc"],
                   val_delta=c["val_delta"], noise=c["noise"], target=target, met=c["test_delta"] >= target)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="course-layout folder (default: the dev set)")
    ap.add_argument("--budget", default="standard")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT_DIR / "accuracy-report")
    args = ap.parse_args()
    data = args.data or devset(OUT_DIR / "devdata96")
    if data is None:
        print(f"skipped: no --data and no {DEVDATA}")
        return 0
    from luatorch_port.report import run_report

    res = Result("accuracy")
    res.context.update(data=str(data), budget=args.budget, seed=args.seed, report=str(args.out))
    result = run_report(data, args.out, budget_name=args.budget, seed=args.seed,
                        echo=lambda line: print(line, flush=True))
    summarize(result["states"], res)
    res.write()
    for key, fig in res.figures.items():
        if key.endswith("test_vs_reference"):
            print(f"{key}: {fig['value']:+.2f} points (target +{fig['target']:g}: "
                  f"{'met' if fig['met'] else 'not met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
