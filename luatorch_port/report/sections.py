"""The sections of ``a2 report``: each runs one part of the report and returns its numbers.

A section is a function ``(ctx) -> dict`` that writes its files under ``ctx.section_dir(name)``
and returns JSON-able results (paths relative to the report folder). It raises
:class:`Unavailable` when the library part it needs is not in this install, so the report says
so instead of showing made-up numbers.
"""

from __future__ import annotations

import functools
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from ..util.errors import A2Error
from ..util.progress import Counter, or_silent


class Unavailable(Exception):
    """A section cannot run in this install (a library part is missing); not an error."""


@dataclass
class Context:
    """What every section gets: where things are, its settings, seeds, device, output hooks."""

    data_dir: Path
    out_dir: Path
    budget_name: str
    settings: dict
    seed: int = 1
    device: Optional[torch.device] = None
    progress: Optional[Callable] = None
    echo: Callable = lambda line: None
    results: dict = field(default_factory=dict)

    def data(self, split: str) -> Path:
        path = self.data_dir / f"{split}.t7b"
        if not path.exists():
            raise A2Error(f"{path}: missing; DATA_DIR must hold train/val/test/extra.t7b (a2 data sample DIR)")
        return path

    def section_dir(self, name: str) -> Path:
        path = self.out_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def rel(self, path) -> str:
        return os.path.relpath(os.fspath(path), os.fspath(self.out_dir))

    def generator(self, name: str) -> torch.Generator:
        """A generator seeded from the report seed and the section name: a section gives the
        same numbers whether it runs alone (resume) or after the others."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(name.encode()))

    def seed_globals(self, name: str) -> torch.Generator:
        gen = self.generator(name)
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=self.generator(name + "/global"))))
        return gen


def _need(module: str, *names):
    """Import ``names`` from ``luatorch_port.<module>`` or raise Unavailable."""
    import importlib

    try:
        mod = importlib.import_module(f"luatorch_port.{module}")
    except ImportError as err:
        raise Unavailable(f"luatorch_port.{module} is not in this install ({err})") from None
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise Unavailable(f"luatorch_port.{module} has no {', '.join(missing)} yet")
    return [getattr(mod, n) for n in names] if len(names) > 1 else getattr(mod, names[0])


# ---------------------------------------------------------------------------------------- data

SPLITS = ("train", "val", "test", "extra")
# The course's STL-10 files (DESIGN.md): images per split, 96x96 colour.
STL10_COUNTS = {"train": 4000, "val": 1000, "test": 8000, "extra": 100000}


def describe_data(data_dir: Path) -> dict:
    """What the report ran on: a name, images per split (and per class), image size.

    ``kind`` is ``"digits"`` for the embedded sample (its class names are ``digit0..digit9``),
    ``"stl10"`` when the counts and size are the course's STL-10 files, else ``"other"``.
    Reads headers only (no pixels are kept).
    """
    from ..data import read_class_names, scan_split

    splits = {}
    for name in SPLITS:
        path = data_dir / f"{name}.t7b"
        if not path.exists():
            continue
        info = scan_split(path, expect="extra" if name == "extra" else "labelled")
        splits[name] = {"images": info.n_images, "per_class": info.counts if name != "extra" else None,
                        "image_shape": list(info.image_shape)}
    from ..data.sample import SAMPLE_CLASS_NAMES

    classes = read_class_names(data_dir / "train.t7b")  # class_names.txt beside the splits, else STL-10's
    kind = "digits" if tuple(classes) == SAMPLE_CLASS_NAMES else "other"
    if kind == "other" and splits and all(splits.get(k, {}).get("images") == n for k, n in STL10_COUNTS.items()) \
            and all(tuple(v["image_shape"]) == (3, 96, 96) for v in splits.values()):
        kind = "stl10"
    names = {"digits": "the embedded sample: scikit-learn's 8×8 handwritten digits, upscaled (not photographs)",
             "stl10": "STL-10 in the course's layout",
             "other": f"course-layout files in {data_dir.name or os.fspath(data_dir)}"}
    return {"kind": kind, "name": names[kind], "splits": splits,
            "extra_labels": (data_dir / "extra_labels.t7").exists()}


def dataset(ctx: Context) -> dict:
    """The data the report ran on (see :func:`describe_data`)."""
    return describe_data(ctx.data_dir)


# ---------------------------------------------------------------------------------------- part 1

def part1(ctx: Context) -> dict:
    """1.1 DAG backprop table and 1.2 batch-normalisation gradient check."""
    from ..backprop import batchnorm as bn
    from ..backprop import dag

    out = ctx.section_dir("part1")
    table = dag.dag_table()
    check = bn.batchnorm_check(generator=ctx.generator("part1"))
    (out / "dag.txt").write_text(dag.format_table(table) + "\n", encoding="utf-8")
    (out / "batchnorm.txt").write_text(bn.format_check(check) + "\n", encoding="utf-8")
    rows = [{"x1": r["x1"], "x2": r["x2"], "grad_output": r["grad_output"], "y": r["y"], "tie": r["tie"],
             "dx1": r["dx1"], "dx2": r["dx2"]} for r in table["rows"]]
    modes = [{"mode": m["mode"], "statistics": m["statistics"], "checks": m["checks"], "jacobian": m["jacobian"]}
             for m in check["modes"]]
    return {"dag": {"formula": table["formula"], "typo_note": table["typo_note"], "tie_rule": table["tie_rule"],
                    "rows": rows, "max_error": table["max_error"], "n_ties": table["n_ties"],
                    "text": ctx.rel(out / "dag.txt")},
            "batchnorm": {"config": check["config"], "formulas": check["formulas"], "modes": modes,
                          "max_error": check["max_error"], "text": ctx.rel(out / "batchnorm.txt")}}


# ---------------------------------------------------------------------------------- supervised

def baseline(ctx: Context) -> dict:
    """The starter's supervised baseline (train.lua) on train, validated on val, predicting test."""
    from ..train import TrainConfig
    from ..train.run import run_train

    s = ctx.settings["baseline"]
    out = ctx.section_dir("baseline")
    gen = ctx.seed_globals("baseline")
    config = TrainConfig(batch_size=s["batch_size"], learning_rate=s["learning_rate"], max_epoch=s["epochs"],
                         save_every=s["epochs"])
    t0 = time.perf_counter()
    result = run_train(config, train_path=ctx.data("train"), val_path=ctx.data("val"), model_name=s["model"],
                       out_dir=out, generator=gen, device=ctx.device, limit=s.get("limit"),
                       progress=ctx.progress, echo=ctx.echo)
    train_s = time.perf_counter() - t0
    res = {"model": s["model"], "epochs": s["epochs"], "batch_size": s["batch_size"],
           "train_acc": result.final.get("train_acc"), "val_acc": result.final.get("val_acc"),
           "train_seconds": train_s, "model_file": ctx.rel(out / "model.net"),
           "settings": f"{s['model']}, {s['epochs']} epochs, batch {s['batch_size']}, SGD lr {s['learning_rate']:g} "
                       "(starter's optim.sgd settings otherwise)"}
    res.update(_predict_test(ctx, out / "model.net", out))
    res.update(_cnn_figures(ctx, out, "baseline"))
    return res


def _predict_test(ctx: Context, model_path, out: Path) -> dict:
    """Kaggle CSV of a trained CNN on test.t7b, scored against the file's labels."""
    from ..train.run import run_predict

    labels, _, _ = run_predict(model_path, ctx.data("test"), device=ctx.device)
    return _write_test_predictions(ctx, labels, out)


def _write_test_predictions(ctx: Context, labels0, out: Path) -> dict:
    from ..data import load_split
    from ..data.kaggle import write_predictions
    from ..train.confusion import score

    path = out / "test_predictions.csv"
    write_predictions(path, labels0)
    test = load_split(ctx.data("test"), expect="labelled")
    sc = score(labels0, test.labels, n_classes=len(test.classes))
    return {"test_predictions": ctx.rel(path), "test_acc": sc.accuracy * 100}


def _cnn_figures(ctx: Context, out: Path, title: str) -> dict:
    from ..nn import load_model
    from ..visualize.figures import filter_grid, first_conv_weight, read_logger, save_curves, save_image

    figs = {}
    model = load_model(out / "model.net")
    save_image(out / "filters.png", filter_grid(first_conv_weight(model), padding=1), zoom=8)
    figs["filters"] = ctx.rel(out / "filters.png")
    if (out / "val.log").exists():
        save_curves(out / "curves.png", read_logger(out / "val.log"), title=f"{title}: accuracy per epoch")
        figs["curves"] = ctx.rel(out / "curves.png")
    return {"figures": figs}


# ------------------------------------------------------------------------- the feature pipelines' SVM

def svm_text(fit) -> str:
    """How the L2-SVM's C was set, for a section's settings line (``fit``: a kmeans.svm.SVMFit
    or kmeans.Evaluation: ``C``, ``c_source``, ``curve``, ``refit``)."""
    if fit.c_source == "val":
        grid = ", ".join(f"{p['C']:g}" for p in fit.curve)
        return (f"L2-SVM, C chosen on val from {{{grid}}}: C={fit.C:g}"
                + (", then refit on train + val" if fit.refit else ", trained on train only"))
    return f"L2-SVM, fixed C={fit.C:g} (Coates), trained on train only"


def svm_record(fit) -> dict:
    """The SVM's C, where it came from and the val curve, for a section's results."""
    return {"C": fit.C, "c_source": fit.c_source, "refit": fit.refit,
            "c_curve": [{"C": p["C"], "train_acc": p["train_accuracy"] * 100, "val_acc": p["val_accuracy"] * 100}
                        for p in fit.curve]}


# ---------------------------------------------------------------------------------- 2.1 surrogate

def surrogate(ctx: Context) -> dict:
    """Exemplar-CNN surrogate classes: build from extra, train, evaluate features with an L2-SVM."""
    build_surrogate = _need("surrogate", "build_surrogate")
    from ..data import load_split
    from ..surrogate.build import WINDOW
    from ..surrogate.run import run_eval, run_train
    from ..surrogate.transforms import DEFAULT_PRESET
    from ..train import TrainConfig

    s = ctx.settings["surrogate"]
    out = ctx.section_dir("surrogate")
    gen = ctx.seed_globals("surrogate")
    extra = load_split(ctx.data("extra"), expect="extra", progress=ctx.progress)
    side = min(extra.images.shape[-2:])
    n_seeds = min(s["classes"], len(extra))
    preset = s.get("preset", DEFAULT_PRESET)
    t0 = time.perf_counter()
    build_surrogate(extra.images, out / "surrogate.t7b", gen, n_seeds=n_seeds, per_seed=s["per_seed"],
                    patch=s["patch"], window=tuple(min(w, side) for w in s.get("window", WINDOW)),
                    preset=preset, progress=ctx.progress)
    del extra
    build_s = time.perf_counter() - t0
    config = TrainConfig(batch_size=s["batch_size"], learning_rate=s["learning_rate"], learning_rate_decay=0.0,
                         weight_decay=s["weight_decay"], momentum=s.get("momentum", 0.9), max_epoch=s["epochs"],
                         epoch_step=s.get("epoch_step", TrainConfig.epoch_step), save_every=s["epochs"], flip=False)
    t0 = time.perf_counter()
    fit = run_train(out / "surrogate.t7b", s["model"], config, out_dir=out, generator=gen,
                    device=ctx.device, val_per_seed=s.get("val_per_seed", 0), progress=ctx.progress,
                    echo=ctx.echo)
    train_s = time.perf_counter() - t0
    os.remove(out / "surrogate.t7b")  # large and rebuilt from the seed on demand
    t0 = time.perf_counter()
    on_test = run_eval(out / "model.pt", ctx.data("train"), ctx.data("test"), val_path=ctx.data("val"),
                       C=s.get("C", "auto"), device=ctx.device, progress=ctx.progress)
    eval_s = time.perf_counter() - t0
    # the control: the same architecture untrained, the same normalisation, features and SVM
    t0 = time.perf_counter()
    control = run_eval(out / "model.pt", ctx.data("train"), ctx.data("test"), val_path=ctx.data("val"),
                       C=s.get("C", "auto"), random_init=True, generator=ctx.generator("surrogate-control"),
                       device=ctx.device, progress=ctx.progress)
    control_s = time.perf_counter() - t0
    svm_line = svm_text(on_test["svm"])
    surrogate_acc = fit.final.get("val_acc") if s.get("val_per_seed") else None
    notes = [f"surrogate-class training accuracy after the last epoch: "
             f"{fit.final.get('train_acc', float('nan')):.2f} % over {n_seeds} classes (chance "
             f"{100 / n_seeds:.2g} %)"]
    if surrogate_acc is not None:
        notes.append(f"surrogate-class accuracy on {s['val_per_seed']} held-out patches per class: "
                     f"{surrogate_acc:.2f} % (chance {100 / n_seeds:.2g} %)")
    notes.append(f"time: build {build_s:.1f} s, train {train_s:.1f} s, features + SVM {eval_s:.1f} s, "
                 f"control {control_s:.1f} s")
    res = {"model": s["model"], "classes": n_seeds, "per_seed": s["per_seed"], "patches": n_seeds * s["per_seed"],
           "preset": preset, "surrogate_train_acc": fit.final.get("train_acc"),
           "surrogate_heldout_acc": surrogate_acc,
           "train_acc": on_test["train_acc"] * 100, "val_acc": on_test["val_acc"] * 100,
           "n_features": on_test["n_features"], "C": on_test["C"], "c_source": on_test["c_source"],
           "seconds": {"build": build_s, "train": train_s, "evaluate": eval_s, "control": control_s},
           "settings": f"{s['model']} on {n_seeds} seeds × {s['per_seed']} transformations ({s['patch']}px, "
                       f"{preset} preset), {s['epochs']} epochs; 4-quadrant max-pooled features of every layer "
                       f"({on_test['n_features']}), {svm_line}",
           "control": {"train_acc": control["train_acc"] * 100, "val_acc": control["val_acc"] * 100,
                       "test_acc": control["test_acc"] * 100, "seconds": control_s, "C": control["C"],
                       "settings": f"{s['model']} untrained (Lua reset()), the same normalisation, "
                                   f"features and {svm_text(control['svm'])}"},
           "notes": notes}
    res.update(_write_test_predictions(ctx, on_test["test_pred"], out))
    res.update(_cnn_figures(ctx, out, "surrogate classes"))
    return res


def augmentations_figure(ctx: Context) -> dict:
    """Figure 3.1: seed patches from extra and their surrogate transformations."""
    augmentation_examples = _need("surrogate", "augmentation_examples")
    from ..data import load_split
    from ..surrogate.build import WINDOW
    from ..visualize.figures import augmentation_grid, save_image

    s = ctx.settings["figures"]
    out = ctx.section_dir("figures")
    extra = load_split(ctx.data("extra"), limit=2000)
    side = min(extra.images.shape[-2:])
    ex = augmentation_examples(extra.images, min(s["aug_seeds"], len(extra)), s["aug_per_seed"],
                               ctx.generator("augmentations"), window=tuple(min(w, side) for w in WINDOW))
    save_image(out / "augmentations.png", augmentation_grid(ex), zoom=2)
    return {"augmentations": ctx.rel(out / "augmentations.png"), "seeds": int(ex.shape[0]),
            "per_seed": int(ex.shape[1] - 1), "patch": int(ex.shape[-1])}


# ---------------------------------------------------------------------------------- 2.2 k-means

def _kmeans_pipeline(ctx: Context, model, extra_images, splits: dict, C, stage: str) -> dict:
    """Fit ``model`` (a CoatesKMeans) on ``extra_images``, then :func:`kmeans.evaluate` on
    ``splits`` (train/val/test): encoding, the L2-SVM with C on val, refit on train + val."""
    from ..kmeans import evaluate

    device = ctx.device or "cpu"
    t0 = time.perf_counter()
    model.fit(extra_images, generator=ctx.generator(stage), device=device,
              on_images=Counter(ctx.progress, len(extra_images), f"{stage} patches", unit="img"),
              on_iteration=lambda i, obj: or_silent(ctx.progress)(i + 1, model.iterations, stage=stage,
                                                                  objective=obj))
    fit_s = time.perf_counter() - t0
    tr, va, te = splits["train"], splits["val"], splits["test"]
    ev = evaluate(model, tr.images, tr.labels, te.images, te.labels, val_images=va.images,
                  val_labels=va.labels, C=C, refit=True, n_classes=len(tr.classes), device=device,
                  on_images=Counter(ctx.progress, len(tr) + len(va) + len(te), f"{stage}: encoding",
                                    unit="img"))
    seconds = {"fit": fit_s, "encode": ev.seconds["encode"],
               "svm": sum(v for k, v in ev.seconds.items() if k != "encode")}
    return {"svm": ev, "test_pred": ev.test_predictions, "n_features": ev.classifier.standardizer.mean_.numel(),
            "train_acc": ev.train_accuracy * 100, "val_acc": ev.val_accuracy * 100,
            "test_acc": float((ev.test_predictions == te.labels).double().mean()) * 100,  # as the CSV scores
            "seconds": seconds}


def kmeans(ctx: Context) -> dict:
    """Coates-Lee-Ng: k-means centroids on extra, triangle features, L2-SVM on train (C on val);
    then the report's own setting (22x22 patches at stride 24) beside it, as the report's Table 2.1."""
    CoatesKMeans = _need("kmeans", "CoatesKMeans")
    from ..data import load_split
    from ..kmeans.coates import PRESETS
    from ..kmeans.run import choose_images
    from ..visualize.figures import centroids_figure, save_image

    s = ctx.settings["kmeans"]
    out = ctx.section_dir("kmeans")
    extra = load_split(ctx.data("extra"), expect="extra", progress=ctx.progress)
    splits = {name: load_split(ctx.data(name), expect="labelled") for name in ("train", "val", "test")}
    km = CoatesKMeans(k=s["k"], rf=s["rf"], n_patches=s["patches"], iterations=s["iterations"],
                      image_size=s["image_size"])
    run = _kmeans_pipeline(ctx, km, extra.images, splits, s.get("C", "auto"), "k-means")
    km.save(out / "centroids.t7")
    svm, sec = run["svm"], run["seconds"]
    presets = [{"preset": "coates", "k": km.k, "rf": km.rf, "stride": km.stride, "patches": km.n_patches_used_,
                "iterations": len(km.objective_), "C": svm.C, "train_acc": run["train_acc"],
                "val_acc": run["val_acc"], "test_acc": run["test_acc"], "seconds": sum(sec.values())}]
    if s.get("report_preset") is not None:
        # the report's setting: 22x22 patches at stride 24 of the 96x96 images (16 per image) of
        # 20,000 random unlabelled images; the budget may shrink k and the iterations
        p = {**PRESETS["report"], **s["report_preset"]}
        pick = choose_images(len(extra), p["limit"], ctx.generator("k-means report images"))
        images = extra.images if pick is None else extra.images[pick]
        rk = CoatesKMeans(k=p["k"], rf=p["rf"], n_patches=min(p["n_patches"], 16 * len(images)),
                          iterations=p["iterations"], image_size=p["image_size"], stride=p["stride"],
                          sampling=p["sampling"])
        rr = _kmeans_pipeline(ctx, rk, images, splits, s.get("C", "auto"), "k-means (report preset)")
        presets.append({"preset": "report", "k": rk.k, "rf": rk.rf, "stride": rk.stride,
                        "patches": rk.n_patches_used_, "iterations": len(rk.objective_), "C": rr["svm"].C,
                        "train_acc": rr["train_acc"], "val_acc": rr["val_acc"], "test_acc": rr["test_acc"],
                        "seconds": sum(rr["seconds"].values())})
    del extra
    image, info = centroids_figure(out / "centroids.t7", space="unwhitened", max_count=400)
    save_image(out / "centroids.png", image, zoom=4)
    res = {"k": s["k"], "rf": s["rf"], "patches": s["patches"], "iterations": s["iterations"],
           "image_size": s["image_size"], "n_features": run["n_features"],
           "objective": [float(v) for v in km.objective_],
           "train_acc": run["train_acc"], "val_acc": run["val_acc"], "centroids_file": ctx.rel(out / "centroids.t7"),
           "seconds": sec, **svm_record(svm), "presets": presets,
           "settings": f"k={s['k']}, rf={s['rf']}, {s['patches']} patches, {s['iterations']} iterations, "
                       f"images at {s['image_size']}px, triangle + 4-quadrant sum pooling "
                       f"({run['n_features']} features), {svm_text(svm)}",
           "notes": [f"k-means objective: {km.objective_[0]:.4g} after iteration 1, {km.objective_[-1]:.4g} "
                     f"after {len(km.objective_)}" if km.objective_ else "k-means objective not recorded",
                     f"time: k-means {sec['fit']:.1f} s, encoding {sec['encode']:.1f} s, SVM {sec['svm']:.1f} s"],
           "figures": {"centroids": ctx.rel(out / "centroids.png")}}
    res.update(_write_test_predictions(ctx, run["test_pred"], out))
    return res


# ------------------------------------------------------------------------------ 2.3 / 2.4

def pseudolabel(ctx: Context) -> dict:
    """Lee (2013) pseudo-labels: train + extra (unlabelled), alpha(t) schedule."""
    run_pseudolabel = _need("pseudolabel.run", "run_train")
    from ..pseudolabel.lee import PseudoLabelConfig
    from ..train import TrainConfig

    s = ctx.settings["pseudolabel"]
    out = ctx.section_dir("pseudolabel")
    gen = ctx.seed_globals("pseudolabel")
    config = TrainConfig(batch_size=s["batch_size"], learning_rate=s["learning_rate"], max_epoch=s["epochs"],
                         save_every=s["epochs"])
    pl = PseudoLabelConfig(alpha_final=s["alpha_final"], t1=s["t1"], t2=s["t2"],
                           unlabelled_per_batch=s["unlabelled_per_batch"], warmup=s["warmup"],
                           threshold=s["threshold"])
    labels = ctx.data_dir / "extra_labels.t7"
    t0 = time.perf_counter()
    fit = run_pseudolabel(config, pl, train_path=ctx.data("train"), val_path=ctx.data("val"),
                          extra_path=ctx.data("extra"), model_name=s["model"], out_dir=out, generator=gen,
                          device=ctx.device, extra_labels_path=labels if labels.exists() else None,
                          extra_limit=s.get("unlabelled_limit"), monitor_size=s["monitor"],
                          progress=ctx.progress, echo=ctx.echo)
    train_s = time.perf_counter() - t0
    final = fit.final
    notes = [f"α(t): 0 until epoch {s['t1']:g}, rising to {s['alpha_final']:g} at epoch {s['t2']:g}; "
             f"{s['unlabelled_per_batch']} unlabelled images per batch of {s['batch_size']} labelled"]
    if s["warmup"]:
        notes.append(f"supervised warm-up: no unlabelled images in epochs 1..{s['warmup']}")
    if s["threshold"] is not None:
        notes.append(f"only pseudo-labels with softmax confidence >= {s['threshold']:g} count")
        confident = final.get("pl_confident")
        if confident is not None and confident == confident:
            right = final.get("pl_confident_acc")
            notes.append(f"monitored unlabelled images at or above that confidence after the last epoch: "
                         f"{confident:.1f} %" + (f", {right:.2f} % of them right" if right is not None and
                                                 right == right else "")
                         + " (rows below it add nothing to the loss)")
    if final.get("pl_acc") is not None and final.get("pl_acc") == final.get("pl_acc"):
        notes.append(f"pseudo-labels right on the monitored unlabelled images after the last epoch: "
                     f"{final['pl_acc']:.2f} % (true labels of extra, used only for this score)")
    res = {"model": s["model"], "epochs": s["epochs"], "train_acc": final.get("train_acc"),
           "val_acc": final.get("val_acc"), "pl_acc": final.get("pl_acc"), "train_seconds": train_s,
           "settings": f"{s['model']}, {s['epochs']} epochs, batch {s['batch_size']} labelled + "
                       f"{s['unlabelled_per_batch']} unlabelled, α_f={s['alpha_final']:g}, "
                       f"T1={s['t1']:g}, T2={s['t2']:g}",
           "notes": notes}
    res.update(_predict_test(ctx, out / "model.net", out))
    res.update(_cnn_figures(ctx, out, "pseudo-labels"))
    return res


def combo(ctx: Context) -> dict:
    """k-means features + pseudo-labels: self-training of the L2-SVM on extra (needs the kmeans section)."""
    run_selftrain = _need("pseudolabel.run", "run_selftrain")
    from ..data.kaggle import read_predictions
    from ..pseudolabel.selftrain import SelfTrainConfig
    from ..pseudolabel.run import PREDICTIONS_NAME

    if "kmeans" not in ctx.results:
        raise Unavailable("needs the kmeans section's centroids, and that section did not finish")
    s = ctx.settings["combo"]
    out = ctx.section_dir("combo")
    labels = ctx.data_dir / "extra_labels.t7"
    config = SelfTrainConfig(rounds=s["rounds"], add_fraction=s["add_fraction"])
    t0 = time.perf_counter()
    result = run_selftrain(config, centroids_path=ctx.out_dir / ctx.results["kmeans"]["centroids_file"],
                           train_path=ctx.data("train"), val_path=ctx.data("val"), extra_path=ctx.data("extra"),
                           out_dir=out, extra_labels_path=labels if labels.exists() else None,
                           test_path=ctx.data("test"), device=ctx.device or "cpu", progress=ctx.progress,
                           echo=ctx.echo)
    seconds = time.perf_counter() - t0
    rounds = [r.as_dict() for r in result.rounds]
    last = rounds[-1]
    pred = read_predictions(out / PREDICTIONS_NAME)
    notes = [f"round {r['round']}: +{r['added']} pseudo-labelled images (total {r['total_added']}"
             + (f", {r['added_accuracy']:.2f} % right" if r["added_accuracy"] == r["added_accuracy"] else "")
             + f"), val {r['val_accuracy']:.2f} %" for r in rounds]
    res = {"rounds": rounds, "train_acc": last["train_accuracy"], "val_acc": last["val_accuracy"],
           "seconds": seconds,
           "C": result.C, "c_source": result.c_source, "refit": result.refit,
           "settings": f"the kmeans section's features; {s['rounds']} rounds adding the most confident "
                       f"{s['add_fraction']:.0%} of extra per round, class-balanced; L2-SVM "
                       + (f"C={result.C:g} chosen on val before round 0 and kept" if result.c_source == "val"
                          else f"fixed C={result.C:g}")
                       + (", then refit on train + val + the pseudo-labels" if result.refit else ""),
           "notes": notes}
    res.update(_write_test_predictions(ctx, pred, out))
    return res


# ---------------------------------------------------------------------------------- 3.2 t-SNE

def tsne(ctx: Context) -> dict:
    """t-SNE of val: the report's raw first channel, and the baseline model's features if trained."""
    from ..visualize.run import run_tsne

    s = ctx.settings["tsne"]
    out = ctx.section_dir("tsne")
    maps = {}
    variants = [("raw", "raw")]
    model = ctx.out_dir / "baseline" / "model.net"
    if model.exists():
        variants.append(("baseline", os.fspath(model)))
    for name, features in variants:
        png = out / f"tsne_{name}.png"
        r = run_tsne(ctx.data("val"), png, features=features, limit=s.get("limit"), n_iter=s["iterations"],
                     perplexity=s["perplexity"], threads=s.get("threads", 1),
                     map_size=s["map_size"], thumb=s["thumb"], device=ctx.device,
                     generator=ctx.generator(f"tsne/{name}"), progress=ctx.progress)
        maps[name] = {"scatter": ctx.rel(r["scatter"]), "image_map": ctx.rel(r["image_map"]),
                      "coords_csv": ctx.rel(r["coords_csv"]),
                      "features": r["features"] if name == "raw" else r["features"].replace(features,
                                                                                            ctx.rel(features)),
                      "n_images": r["n_images"], "input_dims": r["input_dims"], "pca_dims": r["pca_dims"],
                      "method": r["method"], "trustworthiness": r["trustworthiness"], "seconds": r["seconds"]["total"]}
    return {"maps": maps}


# ---------------------------------------------------------------------------------- predictions

METHODS = ("baseline", "surrogate", "kmeans", "pseudolabel", "combo")


def predictions(ctx: Context) -> dict:
    """REPORT_DIR/predictions.csv: the test predictions of the method with the best val accuracy."""
    import shutil

    best = None
    for name in METHODS:
        r = ctx.results.get(name)
        if not r or "test_predictions" not in r or r.get("val_acc") is None:
            continue
        if best is None or r["val_acc"] > ctx.results[best]["val_acc"]:
            best = name
    if best is None:
        raise Unavailable("no method produced test predictions")
    src = ctx.out_dir / ctx.results[best]["test_predictions"]
    dst = ctx.out_dir / "predictions.csv"
    tmp = dst.with_name(".predictions.csv.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return {"method": best, "file": ctx.rel(dst), "val_acc": ctx.results[best]["val_acc"],
            "test_acc": ctx.results[best].get("test_acc")}


SECTIONS = {
    "dataset": dataset,
    "part1": part1,
    "baseline": baseline,
    "surrogate": surrogate,
    "kmeans": kmeans,
    "pseudolabel": pseudolabel,
    "combo": combo,
    "augmentations": augmentations_figure,
    "tsne": tsne,
    "predictions": predictions,
}
# Sections rerun whenever these ran again (they read those sections' files).
DEPENDS = {"tsne": ("baseline",), "combo": ("kmeans",), "predictions": METHODS}
ALWAYS = ("dataset", "predictions")
