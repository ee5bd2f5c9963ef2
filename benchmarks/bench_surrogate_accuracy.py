"""Accuracy of surrogate-class features on photographs, beside the random-init control.

Builds the surrogate set of ``surrogate.settings.STANDARD`` from the data's extra split,
trains the network on it (with held-out patches of every class: the surrogate task's own
accuracy against chance 1/classes), then scores a fixed-C linear SVM on the 4-quadrant
max-pooled features of the trained net and of the same net untrained (``a2 surrogate eval``
and ``--random-init``), trained on train and scored on ``--splits`` (val to choose
settings; test once, for the chosen setting). Writes ``bench-out/surrogate_accuracy.json``.

The data: ``--data DIR`` in the course layout (default ``../devdata/d96`` beside the
checkout, the CIFAR-10 development set at 96x96); skipped cleanly when it is absent.
``--run DIR`` reuses a trained run folder (model.pt, surrogate_norm.t7, run.json) instead
of building and training again. Tens of minutes on a 2-core CPU: like bench_accuracy.py, it
is meant to be skipped by ``make bench`` and run on its own.

    python benchmarks/bench_surrogate_accuracy.py [--data DIR] [--splits val] [--run DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from harness import ROOT, Result

from luatorch_port.nn import load_model
from luatorch_port.surrogate.run import run_build, run_eval, run_train
from luatorch_port.surrogate.settings import STANDARD
from luatorch_port.train import TrainConfig

DEVDATA = ROOT.parent / "devdata" / "d96"
TARGET_POINTS = 3.0  # surrogate features >= the random-init control + 3 points (test split)


def train_standard(data: Path, run: Path, seed: int) -> dict:
    """Build and train STANDARD into ``run``; the surrogate task's numbers."""
    s = STANDARD
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        sur = Path(tmp) / "surrogate.t7b"
        built = run_build(data / "extra.t7b", sur, gen, classes=s["classes"], per_seed=s["per_seed"],
                          patch=s["patch"], window=s["window"], preset=s["preset"])
        config = TrainConfig(batch_size=s["batch_size"], learning_rate=s["learning_rate"],
                             learning_rate_decay=0.0, weight_decay=s["weight_decay"],
                             momentum=s["momentum"], epoch_step=s["epoch_step"],
                             max_epoch=s["epochs"], save_every=s["epochs"], flip=False)
        t = time.perf_counter()
        fit = run_train(sur, s["model"], config, out_dir=run, generator=gen,
                        val_per_seed=s["val_per_seed"], echo=print)
        train_s = time.perf_counter() - t
    out = {"build_s": built["seconds"], "train_s": train_s, "history": fit.history}
    (run / "run.json").write_text(json.dumps({"results": out}, default=float))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEVDATA)
    ap.add_argument("--splits", default="val", help="comma-separated: val, test")
    ap.add_argument("--run", type=Path, default=None, help="a trained run folder to reuse")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--C", default=None,
                    help="the feature SVM's C: a number, or 'auto' (a2 surrogate eval's default: "
                         "chosen on val, refit on train + val); default STANDARD's fixed C")
    args = ap.parse_args()
    splits = [x for x in args.splits.split(",") if x]
    if not all((args.data / f"{name}.t7b").exists() for name in ["train", "extra", *splits]):
        print(f"skipped: no course-layout data in {args.data}")
        return
    res = Result("surrogate_accuracy")
    res.context.update({"data": str(args.data), "settings": STANDARD, "splits": splits})
    run = args.run or ROOT / "bench-out" / "surrogate-standard"
    if not (run / "model.pt").exists():
        run.mkdir(parents=True, exist_ok=True)
        trained = train_standard(args.data, run, args.seed)
    else:
        trained = json.loads((run / "run.json").read_text())["results"]
        res.note(f"reused the trained run in {run}")
    final = trained["history"][-1]
    classes = [m for m in load_model(run / "model.pt").modules() if isinstance(m, torch.nn.Linear)]
    chance = 100.0 / classes[-1].out_features  # one output per surrogate class
    res.figure("surrogate_heldout_acc", final.get("val_acc"), "%", chance=chance,
               times_chance=final.get("val_acc", 0) / chance)
    res.figure("surrogate_train_acc", final.get("train_acc"), "%")
    if "train_s" in trained:
        res.figure("train_seconds", trained["train_s"], "s")
    # run_eval scores one "test" split and an optional "val": only val asked for is the test slot
    scored = "test" if "test" in splits else "val"
    val = args.data / "val.t7b" if scored == "test" and "val" in splits else None
    svm_c = STANDARD["C"] if args.C is None else args.C if args.C == "auto" else float(args.C)
    res.context["svm_C"] = svm_c
    scores = {}
    for name, random_init in (("trained", False), ("control", True)):
        t = time.perf_counter()
        r = run_eval(run / "model.pt", args.data / "train.t7b", args.data / f"{scored}.t7b",
                     val_path=val, C=svm_c, random_init=random_init,
                     generator=torch.Generator().manual_seed(args.seed))
        scores[name] = {"train": r["train_acc"] * 100, scored: r["test_acc"] * 100,
                        "seconds": time.perf_counter() - t, "n_features": r["n_features"], "C": r["C"]}
        if val is not None:
            scores[name]["val"] = r["val_acc"] * 100
        print(name, scores[name], flush=True)
    for split in splits:
        a, c = scores["trained"][split], scores["control"][split]
        extra = {"target_points": TARGET_POINTS, "met": a - c >= TARGET_POINTS} if split == "test" else {}
        res.figure(f"{split}_acc", a, "%", baseline=c, difference=a - c, C=scores["trained"]["C"],
                   control_C=scores["control"]["C"], **extra)
        res.figure(f"{split}_acc_control", c, "%")
    for name in scores:
        res.figure(f"train_acc_{name}", scores[name]["train"], "%")
        res.figure(f"eval_seconds_{name}", scores[name]["seconds"], "s")
    res.write()


if __name__ == "__main__":
    sys.exit(main())
