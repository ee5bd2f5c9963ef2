"""`a2 surrogate build|train|eval` (report 2.1): Exemplar-CNN surrogate classes."""

from __future__ import annotations

import os

import click

from ..surrogate.build import MAX_PATCH
from .common import (device_option, ensure_parent, meter, quiet_option, resolve_device,
                     resumable, seed_everything, seed_option, sgd_options)


def _record_path(out):
    return os.path.splitext(os.fspath(out))[0] + ".json"


def _range(name, default, help_text):
    return click.option(f"--{name}", type=(float, float), default=default, show_default=True,
                        help=help_text)


@click.group("surrogate")
def group():
    """Report part 2.1: surrogate classes (Exemplar-CNN, Dosovitskiy et al. 2014)."""


@group.command("build")
@click.argument("extra", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default="surrogate.t7b",
              help="Output t7 table {data, labels, seeds, boxes, transforms, transform_columns}.")
@click.option("--seeds", "n_seeds", type=int, default=4000, help="Seed images = surrogate classes.")
@click.option("--per-seed", type=int, default=100, help="Random transformations per seed.")
@click.option("--patch", type=click.IntRange(1, MAX_PATCH), default=32, help="Patch side in pixels.")
@click.option("--window", type=(int, int), default=(32, 64),
              help="Seed window side range in source pixels (position and scale of the seed patch).")
@click.option("--uniform", is_flag=True,
              help="Seed windows uniformly at random (default: weighted toward high gradients).")
@_range("rotation", (-20.0, 20.0), "Rotation range in degrees.")
@_range("scale", (0.7, 1.4), "Scale range (log-uniform).")
@click.option("--translate", type=float, default=0.1, help="Max translation, fraction of the patch.")
@click.option("--flip", type=float, default=0.5, help="Probability of a horizontal flip.")
@click.option("--no-color", is_flag=True, help="Geometric transformations only.")
@_range("power", (0.25, 4.0), "Saturation/value power range (log-uniform).")
@_range("multiply", (0.7, 1.4), "Saturation/value factor range.")
@_range("add", (-0.1, 0.1), "Saturation/value offset range.")
@_range("hue", (-0.1, 0.1), "Hue shift range (1 = a full turn).")
@click.option("--limit", type=int, default=None, help="Read only the first N images of EXTRA.")
@seed_option()
@device_option()
@quiet_option()
def build_cmd(extra, out, n_seeds, per_seed, patch, window, uniform, rotation, scale, translate,
              flip, no_color, power, multiply, add, hue, limit, seed, device, quiet):
    """Build the surrogate dataset from EXTRA (extra.t7b): SEEDS classes of PER-SEED
    transformed PATCHxPATCH patches, one Lua-loadable t7 file, written as it is made."""
    import time

    from ..data import load_split
    from ..util.provenance import write_record
    from ..surrogate import TransformRanges, build_surrogate

    ranges = TransformRanges(rotation=rotation, scale=scale, translate=translate, flip=flip,
                             color=not no_color, power=power, multiply=multiply, add=add, hue=hue)
    gen = seed_everything(seed, quiet)
    dev = resolve_device(device)
    split = load_split(extra, limit=limit)
    ensure_parent(out)
    tic = time.perf_counter()
    with meter(quiet) as progress:
        info = build_surrogate(split.images, out, gen, n_seeds=n_seeds, per_seed=per_seed,
                               patch=patch, window=window, gradient=not uniform, ranges=ranges,
                               device=dev, progress=progress)
    seconds = time.perf_counter() - tic
    rate = info["n_patches"] / max(seconds, 1e-9)
    write_record(_record_path(out), "surrogate build",
                 {"extra": extra, "out": out, "seeds": n_seeds, "per_seed": per_seed,
                  "patch": patch, "window": window, "gradient": not uniform, "limit": limit,
                  "ranges": ranges.as_dict()},
                 seed=seed, device=dev,
                 results={"patches": info["n_patches"], "seconds": seconds,
                          "patches_per_s": rate})
    click.echo(f"wrote {out}: {info['n_patches']} patches in {n_seeds} classes "
               f"({seconds:.1f} s, {rate:,.0f} patches/s)")


@group.command("train")
@click.argument("surrogate", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "model_spec", default="64c5-128c5-256c5-512f",
              help="Exemplar-CNN spec (64c5-64c5-128f is the paper's small net).")
@click.option("--out", "-s", "--save", "out_dir", type=click.Path(file_okay=False),
              default="surrogate_run",
              help="Run folder: model.net (Lua t7), model.pt, surrogate_norm.t7, val.log, "
                   "checkpoint.pt, run.json.")
@click.option("--epochs", "--max_epoch", "max_epoch", type=int, default=30, help="Epochs.")
@click.option("-b", "--batchSize", "batch_size", type=int, default=128,
              help="Global batch size (paper: 128).")
@sgd_options(learning_rate=0.01, learning_rate_decay=0.0, weight_decay=4e-4, epoch_step=10,
             notes={"learning_rate": "paper: 0.01", "weight_decay": "paper: 0.0004"})
@click.option("--save-every", "save_every", type=int, default=5,
              help="Write model.net every N epochs (and after the last).")
@click.option("--val-per-seed", type=int, default=0,
              help="Hold out this many patches of every class as a validation set.")
@click.option("--flip/--no-flip", default=False,
              help="BatchFlip on top of the transformations (which already flip).")
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR/checkpoint.pt.")
@seed_option()
@device_option()
@quiet_option()
def train_cmd(surrogate, model_spec, out_dir, max_epoch, batch_size, learning_rate,
              learning_rate_decay, weight_decay, momentum, epoch_step, save_every, val_per_seed,
              flip, channels_last, resume, seed, device, quiet):
    """Train an Exemplar-CNN on the surrogate classes in SURROGATE (from `a2 surrogate
    build`) with the training loop of `a2 train`; runs under `torchrun --nproc_per_node N`."""
    from dataclasses import asdict

    from ..util.provenance import write_record
    from ..surrogate.train import train_surrogate
    from ..train import TrainConfig
    from ..train import distributed as D

    config = TrainConfig(batch_size=batch_size, learning_rate=learning_rate,
                         learning_rate_decay=learning_rate_decay, weight_decay=weight_decay,
                         momentum=momentum, epoch_step=epoch_step, max_epoch=max_epoch,
                         save_every=save_every, flip=flip, channels_last=channels_last)
    config.validate()
    dev = resolve_device(device)
    ctx, dev = D.init_from_env(dev)
    try:
        gen = seed_everything(seed, quiet=quiet or not ctx.is_main)
        echo = (lambda line: click.echo(line, err=True)) if ctx.is_main and not quiet else None
        with resumable():
            result = train_surrogate(surrogate, model_spec, config, out_dir=out_dir,
                                     generator=gen, device=dev, resume=resume,
                                     val_per_seed=val_per_seed, dist_ctx=ctx,
                                     progress=meter(quiet), echo=echo)
        if ctx.is_main:
            final = result.final
            write_record(os.path.join(out_dir, "run.json"), "surrogate train",
                         {**asdict(config), "surrogate": surrogate, "model": model_spec,
                          "val_per_seed": val_per_seed, "resume": resume,
                          "world_size": ctx.world_size},
                         seed=seed, device=dev,
                         results={"final": final, "history": result.history})
            click.echo(f"surrogate-class accuracy: train {final.get('train_acc', float('nan')):.2f}%"
                       f"  held-out {final.get('val_acc', float('nan')):.2f}%  -> {out_dir}")
    finally:
        D.shutdown()


@group.command("eval")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.option("--train", "train_path", type=click.Path(exists=True, dir_okay=False),
              default="data/train.t7b", help="Labelled split the SVM is trained on.")
@click.option("--test", "test_path", type=click.Path(exists=True, dir_okay=False),
              default="data/test.t7b", help="Labelled split it is scored on (and predicted).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default="surrogate_predictions.csv",
              help="Kaggle CSV of the test predictions (Id,Prediction, 1-based).")
@click.option("--norm", "norm_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="surrogate_norm.t7 [default: beside MODEL]")
@click.option("-C", "--C", "c", type=float, default=100.0, help="L2-SVM C (Coates: 100).")
@click.option("--batch-size", type=int, default=50, help="Images per forward pass.")
@click.option("--limit", type=int, default=None, help="Read only the first N images of each split.")
@seed_option()
@device_option()
@quiet_option()
def eval_cmd(model_path, train_path, test_path, out_path, norm_path, c, batch_size, limit, seed,
             device, quiet):
    """Exemplar-CNN features of TRAIN and TEST (every layer's responses, the net run
    convolutionally on whole images, 4-quadrant max-pooled), an L2-SVM on TRAIN; prints
    both accuracies and writes the test predictions."""
    from ..util.errors import A2Error
    from ..data.kaggle import write_predictions
    from ..util.provenance import write_record
    from ..surrogate.features import evaluate_features

    if batch_size < 1 or c <= 0:
        raise A2Error(f"--batch-size {batch_size} must be >= 1 and -C {c} > 0")
    dev = resolve_device(device)
    seed_everything(seed, quiet=quiet)
    from ..data import scan_split
    n_images = sum(min(scan_split(path).n_images, limit or float("inf"))
                   for path in (train_path, test_path))
    with meter(quiet) as progress:
        res = evaluate_features(model_path, train_path, test_path, norm_path=norm_path, C=c,
                                batch_size=batch_size, device=dev, limit=limit, progress=progress)
    ensure_parent(out_path)
    write_predictions(out_path, res["test_pred"], n_classes=len(res["classes"]))
    write_record(_record_path(out_path), "surrogate eval",
                 {"model": model_path, "train": train_path, "test": test_path,
                  "norm": res["norm"], "C": c, "batch_size": batch_size, "limit": limit},
                 seed=seed, device=dev,
                 results={k: res[k] for k in ("train_acc", "test_acc", "n_features", "n_train",
                                              "n_test")})
    click.echo(f"features {res['n_features']}  train accuracy {res['train_acc'] * 100:.2f}%  "
               f"test accuracy {res['test_acc'] * 100:.2f}%  -> {out_path}")
