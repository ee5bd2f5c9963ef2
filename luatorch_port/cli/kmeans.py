"""`a2 kmeans ...`: report part 2.2, Coates-Lee-Ng k-means features (see docs/kmeans.md)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..kmeans.coates import FIT_PRECISION, PRESETS, SAMPLINGS
from ..kmeans.lloyd import PRECISIONS as FIT_PRECISIONS
from ..kmeans.encoder import DEFAULT_PRECISION, PRECISIONS
from ..kmeans.run import MAX_IMAGE_SIZE
from ..kmeans.svm import C_GRID, COATES_C
from .common import (CValue, device_option, meter, val_for_C, quiet_option, record_path, resolve_device, seed_everything,
                     seed_option)


@click.group("kmeans")
def group():
    """Part 2.2: Coates, Lee & Ng single-layer k-means features with an L2-SVM."""


def _preset_help(text, key):
    values = ", ".join(f"{name} {PRESETS[name][key] if PRESETS[name][key] is not None else 'all'}"
                       for name in PRESETS)
    return f"{text} [default: the preset's: {values}]"


@group.command("fit")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="coates", show_default=True,
              help="coates: Coates et al. (rf 6 on 32x32 images, 400,000 random patches); report: "
                   "the course report's 22x22 patches at stride 24 (16 per 96x96 image) of "
                   "20,000 random images. Options given explicitly override the preset.")
@click.option("--extra", default="data/extra.t7b", show_default=True,
              type=click.Path(dir_okay=False),
              help="Unlabelled images to draw patches from (any course split works).")
@click.option("--data", "data_alias", type=click.Path(dir_okay=False), default=None, hidden=True)
@click.option("--out", default="centroids.t7", show_default=True, type=click.Path(dir_okay=False),
              help="Where the dictionary goes (a Lua table; the record is <stem>.run.json beside it).")
@click.option("--k", type=click.IntRange(1), default=None, help=_preset_help("Centroids.", "k"))
@click.option("--rf", type=click.IntRange(1), default=None,
              help=_preset_help("Patch side (rfSize).", "rf"))
@click.option("--stride", type=click.IntRange(1), default=None,
              help=_preset_help("Step between patches when encoding (and of the grid "
                                "--sampling grid draws from); stored in the centroids file.",
                                "stride"))
@click.option("--patches", type=click.IntRange(1), default=None,
              help=_preset_help("Training patches.", "n_patches"))
@click.option("--sampling", type=click.Choice(SAMPLINGS), default=None,
              help=_preset_help("Training patches at random places (patch i from image i mod N) "
                                "or from the stride grid of every image.", "sampling"))
@click.option("--iterations", type=click.IntRange(0), default=None,
              help=_preset_help("k-means iterations.", "iterations"))
@click.option("--image-size", type=click.IntRange(1, MAX_IMAGE_SIZE), default=None,
              help=_preset_help("Resize images to this side first.", "image_size"))
@click.option("--whiten/--no-whiten", default=True, show_default=True, help="ZCA whitening (eps 0.1).")
@click.option("--init", type=click.Choice(["randn", "patches"]), default="randn", show_default=True,
              help="k-means start: randn*0.1 (Coates) or k random patches.")
@click.option("--limit", type=click.IntRange(1), default=None,
              help=_preset_help("Use N images of --extra drawn at random (seeded).", "limit"))
@click.option("--precision", type=click.Choice(FIT_PRECISIONS), default=FIT_PRECISION,
              show_default=True,
              help="k-means assignment scores: fp32, or a bf16 GEMM with fp32 accumulation "
                   "(faster; near ties may go to the other centroid: see docs/kmeans.md).")
@seed_option()
@device_option()
@quiet_option()
def fit(preset, extra, data_alias, out, k, rf, stride, patches, sampling, iterations, image_size,
        whiten, init, limit, precision, seed, device, quiet):
    """Learn a k-means dictionary from patches of unlabelled images."""
    from ..kmeans import run_fit
    from ..util.errors import A2Error
    from ..util.provenance import write_record

    extra = data_alias or extra
    if not Path(extra).is_file():
        raise A2Error(f"--extra {extra}: no such file (the unlabelled split, e.g. data/extra.t7b)")
    gen = seed_everything(seed, quiet)
    dev = resolve_device(device)
    c0 = time.process_time()
    res = run_fit(extra, out, preset=preset, k=k, rf=rf, stride=stride, n_patches=patches,
                  iterations=iterations, image_size=image_size, sampling=sampling, limit=limit,
                  whiten=whiten, init=init, precision=precision, generator=gen, device=dev,
                  progress=meter(quiet))
    model, out, settings = res["model"], Path(out), res["settings"]
    write_record(record_path(out, folder=False), "kmeans fit",
                 {"extra": extra, "out": out, "preset": preset, **settings, **model.config()},
                 seed=seed, device=dev,
                 results={"images": res["images"], "objective": model.objective_,
                          "final_inertia": model.inertia_, "reseeded": model.reseeded_,
                          "rescored": model.rescored_, "seconds": res["seconds"],
                          "cpu_seconds": time.process_time() - c0,
                          "load_seconds": res["load_seconds"],
                          "stage_seconds": res["stage_seconds"]})
    last = f", objective {model.objective_[-1]:.6g}" if model.objective_ else ""
    click.echo(f"wrote {out}: {model.k} centroids of {model.channels_}x{model.rf}x{model.rf} "
               f"({preset} preset, stride {model.stride}) from {model.n_patches_used_} patches of "
               f"{res['images']} images{last} ({res['seconds']:.1f} s)")


@group.command("eval")
@click.option("--centroids", default="centroids.t7", show_default=True,
              type=click.Path(exists=True, dir_okay=False), help="Dictionary from `a2 kmeans fit`.")
@click.option("--train", "train", default="data/train.t7b", show_default=True,
              type=click.Path(exists=True, dir_okay=False), help="Labelled training split.")
@click.option("--val", "val", default="data/val.t7b", show_default=True,
              type=click.Path(dir_okay=False),
              help="Labelled split that --C auto chooses C on (and that --refit adds to training).")
@click.option("--no-val", is_flag=True,
              help=f"Use no val split: --C auto falls back to Coates' fixed C = {COATES_C:g}.")
@click.option("--test", "test", default="data/test.t7b", show_default=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Split to score/predict (test.t7b; its labels, if any, give the test accuracy).")
@click.option("--C", "C", default="auto", show_default=True, type=CValue(),
              help="L2-SVM C (multiplies the mean squared hinge, as Coates' train_svm.m), or 'auto': "
                   f"the best val accuracy over the grid {', '.join(f'{c:g}' for c in C_GRID)}. "
                   f"--C {COATES_C:g} reproduces Coates.")
@click.option("--refit/--no-refit", default=True, show_default=True,
              help="With --C auto: refit the chosen C on train + val for the final predictions.")
@click.option("--precision", type=click.Choice(PRECISIONS), default=DEFAULT_PRECISION,
              show_default=True,
              help="Encoder distance GEMM: bf16 inputs and output with fp32 accumulation and "
                   "an fp32 epilogue, or fp32 throughout (Coates' arithmetic; see docs/kmeans.md).")
@click.option("--encoder", type=click.Choice(["saved", "triangle", "hard"]), default="saved",
              show_default=True, help="Activation: the one stored in --centroids, or override it.")
@click.option("--predictions", type=click.Path(dir_okay=False), default=None,
              help="Also write the test predictions as a Kaggle CSV (Id,Prediction 1..10).")
@click.option("--svm-out", type=click.Path(dir_okay=False), default=None,
              help="Where the SVM goes [default: <centroids stem>.svm.t7 beside --centroids].")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Read only the first N images of each split.")
@seed_option()
@device_option()
@quiet_option()
def eval_cmd(centroids, train, val, no_val, test, C, refit, precision, encoder, predictions,
             svm_out, limit, seed, device, quiet):
    """Encode the splits, fit the L2-SVM (C chosen on --val by default), print accuracies."""
    from ..kmeans import run_eval
    from ..util.provenance import write_record

    seed_everything(seed, quiet)
    dev = resolve_device(device)
    t0, c0 = time.perf_counter(), time.process_time()
    val = val_for_C(val, no_val, C)
    res = run_eval(centroids, train, test, val=val, C=C, refit=refit,
                   precision=precision, encoder=None if encoder == "saved" else encoder,
                   svm_out=svm_out, predictions=predictions, limit=limit, device=dev,
                   progress=meter(quiet))
    result, sizes, model, svm_path = res["evaluation"], res["sizes"], res["model"], res["svm_out"]
    if result.curve:
        click.echo("C on val:      C   train %    val %")
        for p in result.curve:
            mark = "  <- chosen" if p["C"] == result.C else ""
            click.echo(f"         {p['C']:7g}  {100 * p['train_accuracy']:7.2f}  "
                       f"{100 * p['val_accuracy']:7.2f}{mark}")
        click.echo(f"C = {result.C:g} (best val accuracy; ties go to the larger C), "
                   + ("refit on train + val" if result.refit else "trained on train only"))
    seconds = time.perf_counter() - t0
    results = {"train_accuracy": result.train_accuracy, "val_accuracy": result.val_accuracy,
               "test_accuracy": result.test_accuracy, "C": result.C, "c_source": result.c_source,
               "refit": result.refit, "val_curve": result.curve,
               **{f"{k}_images": v for k, v in sizes.items()}, "seconds": seconds,
               "cpu_seconds": time.process_time() - c0,
               "stage_seconds": result.seconds,
               "svm_evaluations": result.classifier.svm.info_.evaluations,
               "svm_objective": result.classifier.svm.info_.objective}
    write_record(record_path(svm_path, folder=False), "kmeans eval",
                 {"centroids": centroids, "train": train, "val": val,
                  "test": test, "C": C, "refit": refit, "precision": precision,
                  "encoder": model.encoder, "predictions": predictions, "svm_out": svm_path,
                  "limit": limit, **{f"model_{k}": v for k, v in model.config().items()}},
                 seed=seed, device=dev, results=results)
    click.echo(f"train accuracy: {100 * result.train_accuracy:.2f}% ({sizes['train']} images)")
    if result.val_accuracy is not None:
        click.echo(f"val accuracy: {100 * result.val_accuracy:.2f}% ({sizes['val']} images, "
                   f"C = {result.C:g} trained on train)")
    if result.test_accuracy is None:
        click.echo(f"test accuracy: n/a ({test} has no labels)")
    else:
        click.echo(f"test accuracy: {100 * result.test_accuracy:.2f}% ({sizes['test']} images)")
    click.echo(f"wrote {svm_path}" + (f" and {predictions}" if predictions else "")
               + f" ({seconds:.1f} s)")
