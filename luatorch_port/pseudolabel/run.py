"""What ``a2 pseudolabel train`` does: t7b files in, a run folder out.

``run_train`` (``--learner cnn``, report part 2.3) and ``run_selftrain`` (``--learner kmeans``,
part 2.4).

Part 2.3: Lee (2013) Pseudo-Label on top of the starter's pipeline (:mod:`luatorch_port.train.run`):
the same normalisation (statistics of the labelled training images, also applied to the
unlabelled ones), the same model zoo, the same loop (:func:`luatorch_port.train.fit`), the
same run folder (``val.log``, ``model.net``, ``norm.t7``, ``confusion.txt``,
``checkpoint.pt``), plus ``pseudolabel.log``: after every epoch, alpha(t) and the current
network's pseudo-labels on a fixed subset of the unlabelled images -- the share above the
threshold and, when the true labels are known (``extra_labels.t7`` of the sample dataset),
their accuracy.

Deviations: see :mod:`.lee` (unlabelled rows drawn per batch, BatchFlip on the mixed batch).
The unlabelled rows of a batch are seeded from the run's ``--seed`` (not drawn from the
loop's generator), so the labelled batch order and the initial weights are those of
``a2 train`` with the same seed.

Part 2.4 encodes the labelled, unlabelled and validation images with the ``centroids.t7`` of
``a2 kmeans fit`` (:class:`luatorch_port.kmeans.CoatesKMeans`: triangle encoding, 4-quadrant
sum pooling), then runs :func:`.selftrain.self_train`. It writes to ``out_dir``:

- ``svm.t7``: the final classifier, the table ``a2 kmeans eval`` writes (``{W, b, C, mean,
  sd}``, scores = ((x - mean) / sd) W + b; :class:`luatorch_port.kmeans.Classifier`);
- ``rounds.log``: one optim.Logger row per round (added, their accuracy, validation);
- ``pseudolabels.t7``: ``{index, label, round}`` LongTensors, 1-based (Lua's convention):
  which extra.t7b images were added, with which class, in which round;
- the test split's predictions (Kaggle ``Id,Prediction``) when a test split is given, to
  ``predictions_path`` (default ``out_dir/predictions.csv``).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import replace

import torch

from .. import t7
from ..util.errors import A2Error
from ..train import distributed as D
from ..train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from ..train.logger import Logger
from ..train.loop import TrainConfig, fit, predict_scores
from .lee import MixedBatches, PseudoLabelConfig, PseudoLabelLoss
from .selftrain import SelfTrainConfig, SelfTrainResult, self_train

PL_LOG_NAME = "pseudolabel.log"
PL_LOG_NAMES = ("alpha", "% confident pseudo-labels (monitor set)",
                "% pseudo-label accuracy (monitor set)", "% accuracy of the confident ones")
MONITOR_SIZE = 1000   # unlabelled images whose pseudo-labels are scored after every epoch
SEED_SALT = 0x5EED_9A  # separates the unlabelled-row stream from the loop's own generator
DEFAULT_MODEL = "vgg_bn_drop"
MAX_EPOCH = 100       # epochs of part 2.3's default run
RUN_DIR = "logs/pseudolabel"
SVM_NAME = "svm.t7"
ROUNDS_LOG_NAME = "rounds.log"
PSEUDOLABELS_NAME = "pseudolabels.t7"
PREDICTIONS_NAME = "predictions.csv"
ROUNDS_LOG_NAMES = ("round", "pseudo-labels added", "pseudo-labels in all",
                    "% accuracy of the added", "% accuracy of all pseudo-labels",
                    "% accuracy (val set)")


def load_extra_labels(path, n_images: int, n_classes: int) -> torch.Tensor:
    """0-based int64 labels of the first ``n_images`` images of extra.t7b from a 1-based
    ``extra_labels.t7`` (a Lua LongTensor, as ``a2 data sample`` writes it)."""
    obj = t7.load(path)
    if not isinstance(obj, torch.Tensor) or obj.dim() != 1 or obj.is_floating_point():
        raise A2Error(f"{os.fspath(path)}: expected a 1-D integer tensor of 1-based labels, got "
                      f"{type(obj).__name__}{tuple(getattr(obj, 'shape', ()))}")
    if obj.numel() < n_images:
        raise A2Error(f"{os.fspath(path)}: {obj.numel()} labels for {n_images} unlabelled images")
    labels = obj[:n_images].to(torch.int64) - 1
    if n_images and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise A2Error(f"{os.fspath(path)}: labels should be 1..{n_classes}, found "
                      f"{int(labels.min()) + 1}..{int(labels.max()) + 1}")
    return labels


def monitor_rows(n: int, size: int, seed: int) -> torch.Tensor:
    """A fixed, seeded subset of ``min(size, n)`` unlabelled rows, sorted."""
    gen = torch.Generator().manual_seed(seed)
    return torch.sort(torch.randperm(n, generator=gen)[:min(size, n)]).values


@torch.no_grad()
def score_pseudo_labels(model, inputs, true_labels=None, *, threshold=None, device=None,
                        batch_size: int = 125) -> dict:
    """The network's pseudo-labels on ``inputs``: share kept by ``threshold`` and accuracy.

    Returns ``{"confident": %, "accuracy": %, "confident_accuracy": %}`` (nan where there
    are no true labels, or no confident row).
    """
    probs = predict_scores(model, inputs, batch_size=batch_size, device=device).softmax(1)
    confidence, pseudo = probs.max(1)
    keep = confidence >= threshold if threshold is not None else torch.ones_like(pseudo, dtype=torch.bool)
    out = {"confident": 100.0 * float(keep.float().mean()), "accuracy": math.nan,
           "confident_accuracy": math.nan}
    if true_labels is not None:
        right = pseudo == true_labels
        out["accuracy"] = 100.0 * float(right.float().mean())
        if keep.any():
            out["confident_accuracy"] = 100.0 * float(right[keep].float().mean())
    return out


def run_train(config: TrainConfig, pl: PseudoLabelConfig, *, train_path, val_path,
                    extra_path, model_name: str, out_dir, generator: torch.Generator, device,
                    extra_labels_path=None, resume: bool = False, limit=None, extra_limit=None,
                    monitor_size: int = MONITOR_SIZE, dist_ctx: D.DistContext = D.SINGLE,
                    progress=None, echo=None):
    """Train ``model_name`` with Pseudo-Label on ``train_path`` + the images of ``extra_path``.

    Parameters
    ----------
    config : TrainConfig
        The starter's settings; ``config.flip`` says whether the mixed batch is flipped.
    pl : PseudoLabelConfig
        alpha(t) schedule, threshold, warm-up, unlabelled rows per (global) batch.
    extra_labels_path : optional
        1-based true labels of extra.t7b (``extra_labels.t7``), only for scoring.
    limit, extra_limit : int, optional
        Read only the first images of train/val and of extra.
    monitor_size : int
        Unlabelled images scored after every epoch (``pseudolabel.log``).

    Returns the loop's :class:`FitResult`; its history rows also hold ``alpha``,
    ``pl_confident``, ``pl_acc`` and ``pl_confident_acc``.
    """
    from ..data import load_split
    from ..nn import build_model
    from ..train.provider import fit_normalization, normalize
    from ..train.provider import NORM_NAME, save_norm

    pl.validate()
    config.validate()
    if monitor_size < 0:
        raise A2Error(f"monitor_size={monitor_size} should be >= 0")
    train = load_split(train_path, limit=limit, expect="labelled", progress=progress)
    val = load_split(val_path, limit=limit, expect="labelled", progress=progress) if val_path is not None else None
    extra = load_split(extra_path, limit=extra_limit, expect="extra", progress=progress)
    shape = tuple(train.images.shape[1:])
    if len(shape) != 3 or shape[1] != shape[2]:
        raise A2Error(f"{train_path}: images are {shape}, expected square 3xHxH")
    for split, path in ((val, val_path), (extra, extra_path)):
        if split is not None and tuple(split.images.shape[1:]) != shape:
            raise A2Error(f"{path}: images are {tuple(split.images.shape[1:])}, train has {shape}")
    n_classes = len(train.classes)
    flip = config.flip
    config = replace(config, n_classes=n_classes, flip=False)  # MixedBatches flips instead
    true_extra = (load_extra_labels(extra_labels_path, len(extra), n_classes)
                  if extra_labels_path is not None else None)

    stats = fit_normalization(train.images)
    train_x = normalize(train.images, stats)
    val_data = (normalize(val.images, stats), val.labels) if val is not None else None
    if dist_ctx.is_main:
        os.makedirs(out_dir, exist_ok=True)
        save_norm(stats, os.path.join(out_dir, NORM_NAME))
    model = build_model(model_name, n_classes=n_classes, input_size=shape[1], generator=generator)

    seed = (generator.initial_seed() ^ SEED_SALT) % 2**63
    start_epoch, history = 0, []
    if resume:
        state = load_checkpoint(os.path.join(out_dir, CHECKPOINT_NAME))
        start_epoch, history = int(state["epoch"]), list(state["history"])
        seed = int(history[-1].get("unlabelled_seed", seed)) if history else seed
    mixed = MixedBatches(train_x, train.labels, extra.images,
                         per_batch=D.local_batch_size(pl.unlabelled_per_batch, dist_ctx),
                         seed=seed, flip=flip, warmup=pl.warmup,
                         transform=functools.partial(normalize, stats=stats))
    mixed.set_epoch(start_epoch + 1)
    n_batches = math.ceil(len(train.labels) / config.batch_size) - 1
    loss_fn = PseudoLabelLoss(pl, max(n_batches, 1))

    rows = monitor_rows(len(extra), monitor_size, seed)
    monitor_x = normalize(extra.images.index_select(0, rows), stats) if len(rows) else None
    monitor_y = true_extra.index_select(0, rows) if true_extra is not None else None
    pl_logger = None
    if dist_ctx.is_main and out_dir is not None:
        pl_logger = Logger(os.path.join(out_dir, PL_LOG_NAME), PL_LOG_NAMES,
                           rows=[_log_row(h) for h in history if "alpha" in h])

    def on_epoch_end(epoch, net, record):
        mixed.set_epoch(epoch + 1)
        record["alpha"] = loss_fn.last_alpha
        record["unlabelled_seed"] = seed
        if not dist_ctx.is_main:
            return
        scores = {"confident": math.nan, "accuracy": math.nan, "confident_accuracy": math.nan}
        if monitor_x is not None:
            scores = score_pseudo_labels(net, monitor_x, monitor_y, threshold=pl.threshold,
                                         device=device, batch_size=config.val_batch_size)
        record["pl_confident"] = scores["confident"]
        record["pl_acc"] = scores["accuracy"]
        record["pl_confident_acc"] = scores["confident_accuracy"]
        if pl_logger is not None:
            pl_logger.add(_log_row(record))
        if echo is not None:
            line = f"epoch {epoch}: alpha {record['alpha']:.3f}"
            if monitor_y is not None:
                line += f"  pseudo-label accuracy {record['pl_acc']:.2f}%"
            if pl.threshold is not None:
                line += f"  confident {record['pl_confident']:.1f}%"
                if monitor_y is not None:
                    line += f" ({record['pl_confident_acc']:.2f}% right)"
            echo(line)

    return fit(model, mixed, val_data, config, generator=generator, device=device,
               out_dir=out_dir, loss_fn=loss_fn, on_epoch_end=on_epoch_end, resume=resume,
               dist_ctx=dist_ctx, progress=progress, classes=train.classes, echo=echo)


def _log_row(record) -> list:
    return [float(record.get("alpha", math.nan)), float(record.get("pl_confident", math.nan)),
            float(record.get("pl_acc", math.nan)), float(record.get("pl_confident_acc", math.nan))]


def run_selftrain(config: SelfTrainConfig, *, centroids_path, train_path, val_path, extra_path,
                  out_dir, extra_labels_path=None, extra_limit=None, test_path=None,
                  predictions_path=None, device="cpu", progress=None,
                  echo=None) -> SelfTrainResult:
    """Encode the splits with ``centroids_path`` and self-train the L2-SVM (part 2.4); see the
    module doc. ``predictions_path`` (with ``test_path``) defaults to
    ``out_dir/predictions.csv``.

    ``progress`` (:class:`~luatorch_port.util.progress.Progress`) sees the encoding of each split.
    Returns the :class:`SelfTrainResult`; the CLI writes ``run.json``.
    """
    from ..data import load_split
    from ..kmeans import Classifier, CoatesKMeans
    from ..util.progress import Counter

    config.validate()
    kmeans = CoatesKMeans.load(centroids_path)
    train = load_split(train_path, expect="labelled", progress=progress)
    val = load_split(val_path, expect="labelled", progress=progress) if val_path is not None else None
    extra = load_split(extra_path, limit=extra_limit, expect="extra", progress=progress)
    test = load_split(test_path, progress=progress) if test_path is not None else None
    n_classes = len(train.classes)
    true_extra = (load_extra_labels(extra_labels_path, len(extra), n_classes)
                  if extra_labels_path is not None else None)

    splits = [("train", train), ("extra", extra)] + ([("val", val)] if val is not None else []) \
        + ([("test", test)] if test is not None else [])
    feats = {}
    for name, split in splits:
        tick = Counter(progress, len(split), f"encoding {name}", unit="img")
        feats[name] = kmeans.transform(split.images, device=device, progress=tick)
    result = self_train(feats["train"], train.labels, feats["extra"], config, n_classes=n_classes,
                        val=(feats["val"], val.labels) if val is not None else None,
                        unlabelled_y=true_extra, echo=echo)

    os.makedirs(out_dir, exist_ok=True)
    classifier = Classifier(result.standardizer, result.svm)
    t7.save(classifier.state_dict(), os.path.join(out_dir, SVM_NAME))
    logger = Logger(os.path.join(out_dir, ROUNDS_LOG_NAME), ROUNDS_LOG_NAMES)
    for r in result.rounds:
        logger.add([r.round, r.added, r.total_added, r.added_accuracy, r.pseudo_accuracy,
                    r.val_accuracy])
    t7.save({"index": result.added_indices + 1, "label": result.added_labels + 1,
             "round": _round_of_each(result)}, os.path.join(out_dir, PSEUDOLABELS_NAME))
    if test is not None:
        from ..data.kaggle import write_predictions
        predictions_path = predictions_path or os.path.join(out_dir, PREDICTIONS_NAME)
        os.makedirs(os.path.dirname(os.path.abspath(os.fspath(predictions_path))), exist_ok=True)
        write_predictions(predictions_path,
                          classifier.predict(feats["test"]).cpu(), n_classes=n_classes)
    return result


def _round_of_each(result: SelfTrainResult) -> torch.Tensor:
    return torch.cat([torch.full((r.added,), r.round, dtype=torch.int64) for r in result.rounds]) \
        if result.rounds else torch.empty(0, dtype=torch.int64)
