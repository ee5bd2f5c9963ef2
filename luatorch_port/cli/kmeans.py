"""`a2 kmeans ...`: report part 2.2, Coates-Lee-Ng k-means features (see docs/kmeans.md)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..kmeans.pipeline import MAX_IMAGE_SIZE
from ..util.progress import Counter
from .common import device_option, meter, quiet_option, resolve_device, seed_everything, seed_option


@click.group("kmeans")
def group():
    """Part 2.2: Coates, Lee & Ng single-layer k-means features with an L2-SVM."""


def _record_path(path: Path, what: str) -> Path:
    return path.with_name(f"{path.stem}.{what}.run.json")


@group.command("fit")
@click.option("--data", "data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Unlabelled images to draw patches from (extra.t7b; any course split works).")
@click.option("--out", default="centroids.t7", show_default=True, type=click.Path(dir_okay=False),
              help="Where the dictionary goes (a Lua table; provenance in <stem>.fit.run.json).")
@click.option("--k", default=1600, show_default=True, type=click.IntRange(1), help="Centroids.")
@click.option("--rf", default=6, show_default=True, type=click.IntRange(1), help="Patch side (rfSize).")
@click.option("--patches", default=400000, show_default=True, type=click.IntRange(1),
              help="Random training patches (image index cycles through the file).")
@click.option("--iterations", default=50, show_default=True, type=click.IntRange(0),
              help="k-means iterations.")
@click.option("--image-size", default=32, show_default=True,
              type=click.IntRange(1, MAX_IMAGE_SIZE),
              help="Resize images to this side first (Coates used 32 for STL-10; 96 keeps full size).")
@click.option("--whiten/--no-whiten", default=True, show_default=True, help="ZCA whitening (eps 0.1).")
@click.option("--init", type=click.Choice(["randn", "patches"]), default="randn", show_default=True,
              help="k-means start: randn*0.1 (Coates) or k random patches.")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Read only the first N images of --data.")
@seed_option()
@device_option()
@quiet_option()
def fit(data, out, k, rf, patches, iterations, image_size, whiten, init, limit, seed, device, quiet):
    """Learn a k-means dictionary from random patches of unlabelled images."""
    from ..data import load_split
    from ..kmeans import CoatesKMeans
    from ..util.provenance import write_record

    gen = seed_everything(seed, quiet)
    dev = resolve_device(device)
    t0, c0 = time.perf_counter(), time.process_time()
    split = load_split(data, limit=limit)
    t_load = time.perf_counter() - t0
    model = CoatesKMeans(k=k, rf=rf, n_patches=patches, iterations=iterations,
                         image_size=image_size, whiten=whiten, init=init)
    with meter(quiet) as progress:
        model.fit(split.images, generator=gen, device=dev,
                  on_images=Counter(progress, len(split), "patches", unit="img"),
                  on_iteration=lambda i, obj: progress(i + 1, iterations, stage="k-means", objective=obj))
    model.save(out)
    seconds = time.perf_counter() - t0
    out = Path(out)
    write_record(_record_path(out, "fit"), "kmeans fit", {"data": data, "out": out, "limit": limit,
                                                          **model.config()},
                 seed=seed, device=dev,
                 results={"images": len(split), "objective": model.objective_,
                          "final_inertia": model.inertia_, "reseeded": model.reseeded_,
                          "seconds": seconds, "cpu_seconds": time.process_time() - c0,
                          "load_seconds": t_load})
    last = f", objective {model.objective_[-1]:.6g}" if model.objective_ else ""
    click.echo(f"wrote {out}: {k} centroids of {split.images.shape[1]}x{rf}x{rf} from {patches} "
               f"patches of {len(split)} images{last} ({seconds:.1f} s)")


@group.command("eval")
@click.option("--centroids", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Dictionary from `a2 kmeans fit`.")
@click.option("--train", "train", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Labelled training split (train.t7b).")
@click.option("--test", "test", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Split to score/predict (val.t7b, or test.t7b).")
@click.option("--C", "C", default=100.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="L2-SVM C (multiplies the mean squared hinge, as Coates' train_svm.m).")
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
def eval_cmd(centroids, train, test, C, encoder, predictions, svm_out, limit, seed, device, quiet):
    """Encode --train and --test, fit the L2-SVM, print train and test accuracy."""
    from .. import t7 as t7io
    from ..data import load_split
    from ..kmeans import CoatesKMeans, evaluate
    from ..util.provenance import write_record

    seed_everything(seed, quiet)
    dev = resolve_device(device)
    t0, c0 = time.perf_counter(), time.process_time()
    model = CoatesKMeans.load(centroids)
    if encoder != "saved":
        model.encoder = encoder
    tr = load_split(train, limit=limit, expect="labelled")
    te = load_split(test, limit=limit)
    with meter(quiet) as progress:
        result = evaluate(model, tr.images, tr.labels, te.images, te.labels, C=C, n_classes=len(tr.classes),
                          device=dev, on_images=Counter(progress, len(tr) + len(te), "encoding", unit="img"))
    cpath = Path(centroids)
    svm_path = Path(svm_out) if svm_out else cpath.with_name(f"{cpath.stem}.svm.t7")
    t7io.save(result.classifier.state_dict(), svm_path)
    if predictions:
        from ..data.kaggle import write_predictions
        write_predictions(predictions, result.test_predictions, n_classes=len(tr.classes))
    seconds = time.perf_counter() - t0
    results = {"train_accuracy": result.train_accuracy, "test_accuracy": result.test_accuracy,
               "train_images": len(tr), "test_images": len(te), "seconds": seconds,
               "cpu_seconds": time.process_time() - c0,
               "stage_seconds": result.seconds, "svm_evaluations": result.classifier.svm.info_.evaluations,
               "svm_objective": result.classifier.svm.info_.objective}
    write_record(_record_path(cpath, "eval"), "kmeans eval",
                 {"centroids": centroids, "train": train, "test": test, "C": C,
                  "encoder": model.encoder, "predictions": predictions, "svm_out": svm_path,
                  "limit": limit, **{f"model_{k}": v for k, v in model.config().items()}},
                 seed=seed, device=dev, results=results)
    click.echo(f"train accuracy: {100 * result.train_accuracy:.2f}% ({len(tr)} images)")
    if result.test_accuracy is None:
        click.echo(f"test accuracy: n/a ({test} has no labels)")
    else:
        click.echo(f"test accuracy: {100 * result.test_accuracy:.2f}% ({len(te)} images)")
    click.echo(f"wrote {svm_path}" + (f" and {predictions}" if predictions else "")
               + f" ({seconds:.1f} s)")
