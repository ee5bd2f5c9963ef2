"""`a2 surrogate build|train|eval` (report 2.1): Exemplar-CNN surrogate classes."""

from __future__ import annotations

import os

import click
from click.core import ParameterSource

from ..surrogate.build import MAX_PATCH, N_SEEDS, PATCH, PER_SEED, WINDOW
from ..kmeans.svm import C_GRID
from ..util.errors import A2Error
from ..surrogate.run import DEFAULT_EXTRA, DEFAULT_TEST, DEFAULT_TRAIN, DEFAULT_VAL, EVAL_BATCH, SVM_C
from ..surrogate.train import BATCH_SIZE, LR, MODEL, MOMENTUM, WEIGHT_DECAY
from ..surrogate.transforms import DEFAULT_PRESET, PRESETS
from .common import (CValue, val_for_C, device_option, ensure_parent, meter, quiet_option, record_path, resolve_device,
                     out_dir_option, resumable, seed_everything, seed_option, sgd_options,
                     training_options)


def _presets_say(field, fmt=lambda v: " ".join(f"{x:g}" for x in v)):
    """'report: -20 20; exemplar: -20 20': a range's value in every preset (for help texts)."""
    return "; ".join(f"{name}: {fmt(getattr(r, field))}" for name, r in PRESETS.items())


def _range(name, help_text):
    return click.option(f"--{name}", type=(float, float), default=None,
                        help=f"{help_text} [preset {_presets_say(name)}]")


def _explicit(ctx, name) -> bool:
    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT,
                                                  ParameterSource.DEFAULT_MAP, None)


def _alias(ctx, name, value, old_flag, old_value):
    """The value of option ``name``, or of its hidden old spelling ``old_flag`` when that was
    given; both given and different is an error."""
    if old_value is None:
        return value
    if _explicit(ctx, name) and old_value != value:
        flag = next(p.opts[0] for p in ctx.command.params if p.name == name)
        raise click.UsageError(f"{old_flag} (the old name of {flag}) {old_value} and {flag} "
                               f"{value} disagree; give one")
    return old_value


@click.group("surrogate")
def group():
    """Report part 2.1: surrogate classes (Exemplar-CNN, Dosovitskiy et al. 2014)."""


@group.command("build")
@click.argument("extra_arg", metavar="[EXTRA]", required=False,
                type=click.Path(exists=True, dir_okay=False))
@click.option("--extra", type=click.Path(dir_okay=False), default=DEFAULT_EXTRA, show_default=True,
              help="Unlabelled split the seed images come from (EXTRA, positional, is the same).")
@click.option("--out", type=click.Path(dir_okay=False), default="surrogate.t7b", show_default=True,
              help="Output file: the t7 table {data, labels, seeds, boxes, transforms, "
                   "transform_columns, preset}; its JSON record goes beside it.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET, show_default=True,
              help="Transformations: report = rotation, scale, translation (the report's three); "
                   "exemplar adds flip and colour (Dosovitskiy et al. 2014). Options below override it.")
@click.option("--classes", "n_classes", type=click.IntRange(min=1), default=N_SEEDS, show_default=True,
              help="Surrogate classes = seed images drawn from EXTRA.")
@click.option("--seeds", "seeds_alias", type=click.IntRange(min=1), default=None, hidden=True)
@click.option("--per-seed", type=click.IntRange(min=1), default=PER_SEED, show_default=True,
              help="Random transformations (patches) per class.")
@click.option("--patch", type=click.IntRange(2, MAX_PATCH), default=PATCH, show_default=True,
              help="Patch side in pixels.")
@click.option("--window", type=(int, int), default=WINDOW, show_default=True,
              help="Seed window side range in source pixels (position and scale of the seed patch).")
@click.option("--uniform", is_flag=True,
              help="Seed windows uniformly at random (default: weighted toward high gradients).")
@_range("rotation", "Rotation range in degrees.")
@_range("scale", "Scale range (log-uniform).")
@click.option("--translate", type=click.FloatRange(min=0), default=None,
              help="Max translation in x and y, fraction of the patch side "
                   f"[preset {_presets_say('translate', fmt='{:g}'.format)}].")
@click.option("--flip", type=click.FloatRange(0, 1), default=None,
              help=f"Probability of a horizontal flip [preset {_presets_say('flip', fmt='{:g}'.format)}].")
@click.option("--color/--no-color", default=None,
              help="Hue, saturation and value jitter (the four ranges below) "
                   f"[preset {_presets_say('color', fmt=lambda v: 'on' if v else 'off')}].")
@_range("power", "Saturation/value power range (log-uniform).")
@_range("multiply", "Saturation/value factor range.")
@_range("add", "Saturation/value offset range.")
@_range("hue", "Hue shift range (1 = a full turn).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Read only the first N images of EXTRA.")
@seed_option()
@device_option()
@quiet_option()
@click.pass_context
def build_cmd(ctx, extra_arg, extra, out, preset, n_classes, seeds_alias, per_seed, patch, window,
              uniform, rotation, scale, translate, flip, color, power, multiply, add, hue, limit,
              seed, device, quiet):
    """Build the surrogate dataset from EXTRA (default data/extra.t7b): CLASSES seed patches,
    PER-SEED random transformations of each, PATCHxPATCH, in one Lua-loadable t7 file written
    as it is made."""
    from ..surrogate.run import run_build
    from ..surrogate.transforms import preset as preset_ranges

    from ..util.provenance import write_record

    if extra_arg is not None and _explicit(ctx, "extra") and extra_arg != extra:
        raise A2Error(f"two inputs: EXTRA {extra_arg} and --extra {extra}; give one")
    extra = extra_arg or extra
    n_classes = _alias(ctx, "n_classes", n_classes, "--seeds", seeds_alias)
    ranges = preset_ranges(preset, rotation=rotation, scale=scale, translate=translate, flip=flip,
                           color=color, power=power, multiply=multiply, add=add, hue=hue)
    gen = seed_everything(seed, quiet)
    dev = resolve_device(device)
    if not os.path.exists(extra):
        raise A2Error(f"{extra}: no such file (the unlabelled split; pass --extra or EXTRA)")
    ensure_parent(out)
    info = run_build(extra, out, gen, classes=n_classes, per_seed=per_seed, patch=patch,
                     window=window, gradient=not uniform, preset=preset, ranges=ranges,
                     limit=limit, device=dev, progress=meter(quiet))
    seconds = info["seconds"]
    rate = info["n_patches"] / max(seconds, 1e-9)
    write_record(record_path(out, folder=False), "surrogate build",
                 {"extra": extra, "out": out, "preset": preset, "classes": n_classes,
                  "per_seed": per_seed, "patch": patch, "window": list(window),
                  "gradient": not uniform, "limit": limit, "ranges": ranges.as_dict()},
                 seed=seed, device=dev,
                 results={"patches": info["n_patches"], "seconds": seconds,
                          "patches_per_s": rate})
    click.echo(f"wrote {out}: {info['n_patches']} patches in {n_classes} classes, preset {preset} "
               f"({seconds:.1f} s, {rate:,.0f} patches/s)")


@group.command("train")
@click.argument("surrogate", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "model_spec", default=MODEL, show_default=True,
              help="Exemplar-CNN spec (64c5-64c5-128f is the paper's small net).")
@out_dir_option("surrogate_run", "model.net (Lua t7), model.pt, surrogate_norm.t7, val.log, "
                                 "checkpoint.pt", aliases=["-s", "--save"])
@training_options(batch_size=BATCH_SIZE, max_epoch=30,
                  batch_help="Global batch size (paper: 128; split across torchrun processes)")
@sgd_options(learning_rate=LR, learning_rate_decay=0.0, weight_decay=WEIGHT_DECAY, momentum=MOMENTUM,
             epoch_step=10,
             notes={"learning_rate": "paper: 0.01", "weight_decay": "paper: 0.0004"})
@click.option("--val-per-seed", type=int, default=0,
              help="Hold out this many patches of every class as a validation set.")
@click.option("--flip/--no-flip", default=False,
              help="BatchFlip on top of the transformations (the exemplar preset already flips).")
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
    from ..surrogate.run import run_train
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
            result = run_train(surrogate, model_spec, config, out_dir=out_dir,
                                     generator=gen, device=dev, resume=resume,
                                     val_per_seed=val_per_seed, dist_ctx=ctx,
                                     progress=meter(quiet), echo=echo)
        if ctx.is_main:
            final = result.final
            write_record(record_path(out_dir, folder=True), "surrogate train",
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
              default=DEFAULT_TRAIN, show_default=True, help="Labelled split the SVM is trained on.")
@click.option("--val", "val_path", type=click.Path(dir_okay=False), default=DEFAULT_VAL,
              show_default=True,
              help="Labelled split the SVM's C is chosen on (--C auto), also scored.")
@click.option("--no-val", is_flag=True,
              help=f"No val split: --C auto falls back to Coates' fixed C = {SVM_C:g}.")
@click.option("--test", "test_path", type=click.Path(exists=True, dir_okay=False),
              default=DEFAULT_TEST, show_default=True,
              help="Labelled split scored and predicted.")
@click.option("--out", "out_alias", type=click.Path(dir_okay=False), default=None, hidden=True)
@click.option("--predictions", "predictions", type=click.Path(dir_okay=False),
              default="surrogate_predictions.csv", show_default=True,
              help="Kaggle CSV of the test predictions (Id,Prediction, 1-based); its JSON "
                   "record goes beside it.")
@click.option("--norm", "norm_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="surrogate_norm.t7 [default: beside MODEL]")
@click.option("--random-init", is_flag=True,
              help="The control: MODEL's architecture with untrained weights (Lua reset(), drawn "
                   "from --seed), the same normalisation, features and SVM.")
@click.option("-C", "--C", "c", type=CValue(), default="auto", show_default=True,
              help=f"L2-SVM C: 'auto' chooses it on --val from {', '.join(f'{c:g}' for c in C_GRID)} "
                   f"(ties to the larger C); a number fixes it ({SVM_C:g} = Coates).")
@click.option("--refit/--no-refit", default=True, show_default=True,
              help="With C chosen on val, refit it on train + val for the test predictions.")
@click.option("--batch-size", type=click.IntRange(min=1), default=EVAL_BATCH, show_default=True,
              help="Images per forward pass.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Read only the first N images of each split.")
@seed_option()
@device_option()
@quiet_option()
@click.pass_context
def eval_cmd(ctx, model_path, train_path, val_path, no_val, test_path, out_alias, predictions,
             norm_path, random_init, c, refit, batch_size, limit, seed, device, quiet):
    """Exemplar-CNN features of TRAIN, VAL and TEST (every layer's responses, the net run
    convolutionally on whole images, 4-quadrant max-pooled), a linear L2-SVM on TRAIN; prints
    the accuracies and writes the test predictions."""
    from ..data.kaggle import write_predictions
    from ..surrogate.run import run_eval
    from ..util.provenance import write_record

    predictions = _alias(ctx, "predictions", predictions, "--out", out_alias)
    dev = resolve_device(device)
    gen = seed_everything(seed, quiet=quiet)
    val_path = val_for_C(val_path, no_val, c)
    res = run_eval(model_path, train_path, test_path, val_path=val_path, norm_path=norm_path,
                   C=c, refit=refit, random_init=random_init, generator=gen, batch_size=batch_size,
                   device=dev, limit=limit, progress=meter(quiet))
    ensure_parent(predictions)
    write_predictions(predictions, res["test_pred"], n_classes=len(res["classes"]))
    write_record(record_path(predictions, folder=False), "surrogate eval",
                 {"model": model_path, "train": train_path, "val": val_path, "test": test_path,
                  "norm": res["norm"], "random_init": random_init, "C": c, "refit": refit,
                  "batch_size": batch_size, "limit": limit},
                 seed=seed, device=dev,
                 results={k: res[k] for k in ("train_acc", "val_acc", "test_acc", "n_features",
                                              "n_train", "n_val", "n_test", "C", "c_source",
                                              "c_curve", "refit")})
    if res["c_source"] == "val":
        click.echo(f"C = {res['C']:g}, chosen on val from "
                   + ", ".join(f"{p['C']:g} ({100 * p['val_accuracy']:.2f}%)" for p in res["c_curve"])
                   + ("; refit on train + val" if res["refit"] else ""))
    val = "" if res["val_acc"] is None else f"val accuracy {res['val_acc'] * 100:.2f}%  "
    control = " (random-init control)" if random_init else ""
    click.echo(f"features {res['n_features']}{control}  train accuracy {res['train_acc'] * 100:.2f}%  "
               f"{val}test accuracy {res['test_acc'] * 100:.2f}%  -> {predictions}")
