"""`a2 train`, `a2 predict`, `a2 score`: the starter's train.lua, a Kaggle CSV, its score."""

from __future__ import annotations

import os
from dataclasses import asdict

import click

from ..train.loop import TrainConfig
from ..train.run import DEFAULT_MODEL, PREDICT_BATCH_SIZE
from .common import (LegacyArgument, device_option, ensure_parent, option, out_dir_option,
                     meter, quiet_option, record_path, resolve_device, resumable,
                     seed_everything, seed_option, sgd_options, split_option, training_options)

RUN_DIR = "logs"               # train.lua's default -s/--save
PREDICTIONS = "predictions.csv"


@click.command("train")
@split_option("train", "Training split (course layout).")
@split_option("val", "Validation split, evaluated after every epoch.")
@click.option("--no-val", is_flag=True, help="Skip validation (val.log's val column is nan).")
@click.option("--model", "model_name", default=DEFAULT_MODEL,
              help="sample, vgg_bn_drop or a spec such as 64c5-128c5-256c5-512f.")
@out_dir_option(RUN_DIR, "val.log, model.net, norm.t7, checkpoint.pt (train.lua's -s/--save)",
                aliases=["-s", "--save"])
@training_options()
@sgd_options()
@click.option("--flip/--no-flip", default=TrainConfig.flip, help="BatchFlip: flip half of each batch.")
@click.option("--resume", is_flag=True,
              help="Continue from OUT/checkpoint.pt (weights, optimizer, epoch, RNGs).")
@seed_option()
@device_option()
@quiet_option()
def train_cmd(train_path, val_path, no_val, model_name, out_dir, max_epoch, batch_size, save_every,
              learning_rate, learning_rate_decay, weight_decay, momentum, epoch_step,
              channels_last, flip, resume, seed, device, quiet):
    """Train a model as the starter's train.lua does (SGD, BatchFlip, lr halved every
    --epoch-step epochs). Runs unchanged under `torchrun --nproc_per_node N` (DDP)."""
    from ..util.provenance import write_record
    from ..train import distributed as D
    from ..train.run import run_train

    config = TrainConfig(batch_size=batch_size, learning_rate=learning_rate,
                         learning_rate_decay=learning_rate_decay, weight_decay=weight_decay,
                         momentum=momentum, epoch_step=epoch_step, max_epoch=max_epoch,
                         save_every=save_every, flip=flip, channels_last=channels_last)
    dev = resolve_device(device)
    ctx, dev = D.init_from_env(dev)
    try:
        generator = seed_everything(seed, quiet=quiet or not ctx.is_main)
        echo = (lambda line: click.echo(line, err=True)) if ctx.is_main and not quiet else None
        with resumable():
            result = run_train(config, train_path=train_path,
                               val_path=None if no_val else val_path, model_name=model_name,
                               out_dir=out_dir, generator=generator, device=dev,
                               resume=resume, dist_ctx=ctx,
                               progress=meter(quiet), echo=echo)
        if ctx.is_main:
            final = result.final
            write_record(record_path(out_dir, folder=True), "train",
                         {**asdict(config), "model": model_name, "train": train_path,
                          "val": None if no_val else val_path,
                          "resume": resume, "world_size": ctx.world_size},
                         seed=seed, device=dev, results={"final": final,
                                                         "history": result.history})
            click.echo(f"train accuracy {final.get('train_acc', float('nan')):.2f}%  "
                       f"val accuracy {final.get('val_acc', float('nan')):.2f}%  -> {out_dir}")
    finally:
        D.shutdown()


@click.command("predict")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.argument("legacy_test", cls=LegacyArgument, required=False,
                type=click.Path(exists=True, dir_okay=False))
@split_option("test", "Split to predict; the CSV's Ids follow its file order.")
@option("--predictions", "out_path", aliases=["--out"], type=click.Path(dir_okay=False),
        default=PREDICTIONS,
        help="File to write: the Kaggle CSV, Id,Prediction (Id 1..N in --test order, Prediction "
             "1..classes); the record is <stem>.run.json beside it.")
@click.option("--norm", "norm_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="U/V statistics: norm.t7 from a2 train or the starter's provider.t7 "
                   "[default: norm.t7 beside MODEL]")
@click.option("--batch-size", type=click.IntRange(min=1), default=PREDICT_BATCH_SIZE,
              help="Images per forward pass.")
@seed_option()
@device_option()
@quiet_option()
def predict_cmd(model_path, legacy_test, test_path, out_path, norm_path, batch_size, seed, device,
                quiet):
    """Predict the class of every image of --test with MODEL (.t7/.net from Lua or a2, or .pt)
    and write a Kaggle submission CSV. (`a2 predict MODEL TEST`, the older form, still works.)"""
    from ..data.kaggle import write_predictions
    from ..util.provenance import write_record
    from ..train.run import run_predict

    test_path = legacy_test or test_path
    dev = resolve_device(device)
    seed_everything(seed, quiet=quiet)
    labels, used_norm, classes = run_predict(model_path, test_path, norm_path=norm_path,
                                             device=dev, batch_size=batch_size,
                                             progress=meter(quiet))
    ensure_parent(out_path)
    write_predictions(out_path, labels, n_classes=len(classes))
    counts = [int((labels == c).sum()) for c in range(len(classes))]
    write_record(record_path(out_path, folder=False), "predict",
                 {"model": model_path, "test": test_path, "norm": used_norm,
                  "batch_size": batch_size}, seed=seed, device=dev,
                 results={"n": int(labels.numel()), "per_class": counts,
                          "classes": list(classes)})
    click.echo(f"{labels.numel()} predictions -> {out_path}")


@click.command("score")
@click.argument("csv_path", metavar="PREDICTIONS", type=click.Path(exists=True, dir_okay=False))
@split_option("test", "Labelled split whose file order the CSV's Ids follow.")
@option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
        help="File to write: accuracy and the confusion matrix as JSON (the run's record itself).")
def score_cmd(csv_path, test_path, out_path):
    """Accuracy and confusion matrix of a Kaggle CSV against the labels of --test."""
    from ..data import load_split
    from ..data.kaggle import read_predictions
    from ..train.confusion import score
    from ..util.provenance import write_record

    test = load_split(test_path, expect="labelled")
    pred = read_predictions(csv_path, n_expected=len(test), n_classes=len(test.classes))
    result = score(pred, test.labels, n_classes=len(test.classes), classes=test.classes)
    click.echo(str(result.confusion))
    click.echo(f"accuracy {result.accuracy * 100:.2f}% ({result.n_correct}/{result.n})")
    if out_path is not None:
        ensure_parent(out_path)
        write_record(out_path, "score", {"predictions": csv_path, "test": test_path},
                     results={"accuracy": result.accuracy, "n_correct": result.n_correct,
                              "n": result.n, "confusion": result.confusion.mat.tolist()})
