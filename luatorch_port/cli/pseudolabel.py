"""`a2 pseudolabel train`: report parts 2.3 (Lee's Pseudo-Label on a CNN, ``--learner cnn``)
and 2.4 (self-training of the k-means features' L2-SVM, ``--learner kmeans``)."""

from __future__ import annotations

from dataclasses import asdict

import click

from ..pseudolabel.lee import PseudoLabelConfig
from ..pseudolabel.run import DEFAULT_MODEL, MAX_EPOCH, MONITOR_SIZE, PREDICTIONS_NAME, RUN_DIR
from ..pseudolabel.selftrain import SelfTrainConfig
from ..train.loop import TrainConfig
from ..util.errors import A2Error
from .common import (CValue, device_option, meter, option, out_dir_option,
                     quiet_option, record_path, resolve_device, resumable, seed_everything,
                     seed_option, sgd_options, split_option, training_options)

LEARNERS = ("cnn", "kmeans")


@click.group("pseudolabel")
def group():
    """Report parts 2.3 and 2.4: pseudo-labels on the unlabelled images (extra.t7b)."""


@group.command("train")
@option("--learner", aliases=["--features"], type=click.Choice(LEARNERS), default="cnn",
        help="cnn: Lee (2013) Pseudo-Label while training a CNN (part 2.3); kmeans: "
             "self-training of the L2-SVM on Coates' k-means features (part 2.4).")
@split_option("train", "Labelled training split (course layout).")
@split_option("val", "Validation split, scored after every epoch / round.")
@click.option("--no-val", is_flag=True, help="Skip validation.")
@split_option("extra", "Unlabelled images (course extra layout).")
@click.option("--extra-labels", "extra_labels_path", type=click.Path(dir_okay=False), default=None,
              help="True 1-based labels of --extra (extra_labels.t7 of a2 data sample), used "
                   "only to report the pseudo-labels' accuracy.")
@click.option("--extra-limit", type=click.IntRange(min=1), default=None,
              help="Use only the first N unlabelled images  [default: all]")
@out_dir_option(RUN_DIR, "cnn: val.log, model.net, norm.t7, pseudolabel.log, checkpoint.pt; "
                         "kmeans: svm.t7, rounds.log, pseudolabels.t7")
@click.option("--threshold", type=float, default=None,
              help="Keep only pseudo-labels whose confidence is >= this: softmax probability "
                   "(cnn) or winning SVM decision value (kmeans)  [default: none]")
# part 2.3 (cnn)
@click.option("--model", "model_name", default=DEFAULT_MODEL,
              help="[cnn] sample, vgg_bn_drop or a spec such as 64c5-128c5-256c5-512f.")
@click.option("--alpha-final", type=float, default=PseudoLabelConfig.alpha_final,
              help="[cnn] alpha_f of Lee's eq. 16.")
@click.option("--t1", type=float, default=PseudoLabelConfig.t1,
              help="[cnn] alpha is 0 before T1 (in --unit), then rises linearly ...")
@click.option("--t2", type=float, default=PseudoLabelConfig.t2,
              help="[cnn] ... to alpha_f at T2, then stays.")
@click.option("--unit", type=click.Choice(["epochs", "steps"]), default=PseudoLabelConfig.unit,
              help="[cnn] Unit of T1 and T2 (steps = weight updates).")
@click.option("--warmup", type=int, default=PseudoLabelConfig.warmup,
              help="[cnn] Epochs of supervised training before unlabelled images enter batches.")
@click.option("--unlabelled-per-batch", type=int, default=PseudoLabelConfig.unlabelled_per_batch,
              help="[cnn] Unlabelled images added to every batch (global, split across torchrun "
                   "processes).")
@click.option("--monitor", "monitor_size", type=click.IntRange(min=0), default=MONITOR_SIZE,
              help="[cnn] Unlabelled images whose pseudo-labels are scored every epoch "
                   "(pseudolabel.log).")
@training_options("[cnn] ", max_epoch=MAX_EPOCH, batch_help="Labelled images per batch (global)")
@sgd_options("[cnn] ")
@click.option("--flip/--no-flip", default=TrainConfig.flip, help="[cnn] BatchFlip on the mixed batch.")
@click.option("--resume", is_flag=True, help="[cnn] Continue from OUT/checkpoint.pt.")
# part 2.4 (kmeans)
@click.option("--centroids", "centroids_path", type=click.Path(dir_okay=False), default=None,
              help="[kmeans] centroids.t7 written by a2 kmeans fit (required).")
@click.option("--rounds", type=int, default=SelfTrainConfig.rounds,
              help="[kmeans] Self-training rounds after round 0.")
@click.option("--per-class", type=click.IntRange(min=1), default=None,
              help="[kmeans] Pseudo-labels added per class per round  "
                   "[default: ceil(add-fraction * unlabelled / classes)]")
@click.option("--add-fraction", type=float, default=SelfTrainConfig.add_fraction,
              help="[kmeans] Share of the unlabelled set added per round (when no --per-class).")
@click.option("--balanced/--no-balanced", default=SelfTrainConfig.balanced,
              help="[kmeans] Add the same number of each predicted class per round.")
@click.option("--C", "svm_c", type=CValue(), default=SelfTrainConfig.C, show_default=True,
              help="[kmeans] The L2-SVM's C: 'auto' chooses it on --val (grid 0.1..100) before "
                   "round 0 and keeps it; a number fixes it (100 = Coates' train_svm.m).")
@click.option("--refit/--no-refit", default=SelfTrainConfig.refit, show_default=True,
              help="[kmeans] With a val split, refit the final SVM on train + val + the "
                   "pseudo-labels (as a2 kmeans eval --refit); --no-refit keeps the last round's.")
@split_option("test", "[kmeans] Also predict this split with the final SVM (see --predictions).",
              default=None)
@click.option("--predictions", "predictions_path", type=click.Path(dir_okay=False), default=None,
              help=f"[kmeans] File to write with --test: the Kaggle CSV  "
                   f"[default: OUT/{PREDICTIONS_NAME}]")
@seed_option()
@device_option()
@quiet_option()
def train_cmd(learner, train_path, val_path, no_val, extra_path, extra_labels_path, extra_limit,
              out_dir, threshold, model_name, alpha_final, t1, t2, unit, warmup,
              unlabelled_per_batch, monitor_size, max_epoch, batch_size, save_every,
              learning_rate, learning_rate_decay, weight_decay, momentum, epoch_step,
              channels_last, flip, resume, centroids_path, rounds, per_class, add_fraction,
              balanced, svm_c, refit, test_path, predictions_path, seed, device, quiet):
    """Semi-supervised training with pseudo-labels on the unlabelled images.

    --learner cnn (part 2.3): Lee (2013) -- every batch mixes labelled and unlabelled
    images; the unlabelled targets are the network's own argmax, weighted by alpha(t). Runs
    unchanged under `torchrun --nproc_per_node N`.

    --learner kmeans (part 2.4): fit the L2-SVM on the k-means features of the labelled
    images, add its most confident predictions on the unlabelled ones, refit; repeat."""
    from ..util.provenance import write_record

    val = None if no_val else val_path
    if learner == "kmeans":
        if centroids_path is None:
            raise A2Error("--learner kmeans needs --centroids centroids.t7 (from a2 kmeans fit)")
        if resume:
            raise A2Error("--resume applies to --learner cnn only")
        if predictions_path is not None and test_path is None:
            raise A2Error("--predictions needs --test (the split to predict)")
        from ..pseudolabel.run import run_selftrain

        config = SelfTrainConfig(rounds=rounds, per_class=per_class, add_fraction=add_fraction,
                                 threshold=threshold, balanced=balanced, C=svm_c,
                                 refit=refit)
        dev = resolve_device(device)
        seed_everything(seed, quiet=quiet)
        echo = None if quiet else (lambda line: click.echo(line, err=True))
        result = run_selftrain(config, centroids_path=centroids_path, train_path=train_path,
                               val_path=val, extra_path=extra_path,
                               extra_labels_path=extra_labels_path, extra_limit=extra_limit,
                               test_path=test_path, predictions_path=predictions_path,
                               out_dir=out_dir, device=dev,
                               progress=meter(quiet), echo=echo)
        rounds_out = [r.as_dict() for r in result.rounds]
        write_record(record_path(out_dir, folder=True), "pseudolabel train",
                     {"learner": "kmeans", **asdict(config), "centroids": centroids_path,
                      "train": train_path, "val": val, "extra": extra_path,
                      "extra_labels": extra_labels_path, "extra_limit": extra_limit,
                      "test": test_path, "predictions": predictions_path},
                     seed=seed, device=dev,
                     results={"rounds": rounds_out, "C": result.C, "c_source": result.c_source,
                              "c_curve": result.c_curve, "refit": result.refit})
        if result.c_source == "val":
            click.echo(f"C = {result.C:g}, chosen on val from "
                       + ", ".join(f"{p['C']:g} ({100 * p['val_accuracy']:.2f}%)" for p in result.c_curve))
        else:
            click.echo(f"C = {result.C:g}" + (" (no --val: Coates' fixed C)" if svm_c == "auto" else ""))
        first, last = result.rounds[0], result.rounds[-1]
        click.echo(f"val accuracy {first.val_accuracy:.2f}% (k-means + SVM) -> "
                   f"{last.val_accuracy:.2f}% after {last.round} rounds, "
                   f"{last.total_added} pseudo-labels  -> {out_dir}")
        return

    if test_path is not None or predictions_path is not None:
        raise A2Error("--test and --predictions apply to --learner kmeans only")
    from ..pseudolabel.run import run_train
    from ..train import distributed as D

    config = TrainConfig(batch_size=batch_size, learning_rate=learning_rate,
                         learning_rate_decay=learning_rate_decay, weight_decay=weight_decay,
                         momentum=momentum, epoch_step=epoch_step, max_epoch=max_epoch,
                         save_every=save_every, flip=flip, channels_last=channels_last)
    pl = PseudoLabelConfig(alpha_final=alpha_final, t1=t1, t2=t2, unit=unit, threshold=threshold,
                           warmup=warmup, unlabelled_per_batch=unlabelled_per_batch).validate()
    dev = resolve_device(device)
    ctx, dev = D.init_from_env(dev)
    try:
        generator = seed_everything(seed, quiet=quiet or not ctx.is_main)
        echo = (lambda line: click.echo(line, err=True)) if ctx.is_main and not quiet else None
        with resumable():
            result = run_train(config, pl, train_path=train_path, val_path=val,
                               extra_path=extra_path, extra_labels_path=extra_labels_path,
                               extra_limit=extra_limit, model_name=model_name,
                               out_dir=out_dir, generator=generator, device=dev,
                               resume=resume, monitor_size=monitor_size, dist_ctx=ctx,
                               progress=meter(quiet),
                               echo=echo)
        if ctx.is_main:
            final = result.final
            write_record(record_path(out_dir, folder=True), "pseudolabel train",
                         {"learner": "cnn", **asdict(config), **asdict(pl), "model": model_name,
                          "train": train_path, "val": val, "extra": extra_path,
                          "extra_labels": extra_labels_path, "extra_limit": extra_limit,
                          "monitor": monitor_size, "resume": resume,
                          "world_size": ctx.world_size},
                         seed=seed, device=dev, results={"final": final,
                                                         "history": result.history})
            line = (f"train accuracy {final.get('train_acc', float('nan')):.2f}%  "
                    f"val accuracy {final.get('val_acc', float('nan')):.2f}%")
            if extra_labels_path is not None:
                line += f"  pseudo-label accuracy {final.get('pl_acc', float('nan')):.2f}%"
            click.echo(f"{line}  -> {out_dir}")
    finally:
        D.shutdown()
