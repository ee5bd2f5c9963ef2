"""What ``a2 pseudolabel train --features kmeans`` does (report part 2.4): t7b files and a
k-means dictionary in, a run folder out.

Encodes the labelled, unlabelled and validation images with the ``centroids.t7`` of
``a2 kmeans fit`` (:class:`luatorch_port.kmeans.CoatesKMeans`: triangle encoding, 4-quadrant
sum pooling), then runs :func:`.selftrain.self_train`. Writes to ``out_dir``:

- ``svm.t7``: the final classifier, the table ``a2 kmeans eval`` writes (``{W, b, C, mean,
  sd}``, scores = ((x - mean) / sd) W + b; :class:`luatorch_port.kmeans.Classifier`);
- ``rounds.log``: one optim.Logger row per round (added, their accuracy, validation);
- ``pseudolabels.t7``: ``{index, label, round}`` LongTensors, 1-based (Lua's convention):
  which extra.t7b images were added, with which class, in which round;
- ``predictions.csv`` (Kaggle ``Id,Prediction``) when a test split is given.
"""

from __future__ import annotations

import os

import torch

from .. import t7
from ..train.logger import Logger
from .selftrain import SelfTrainConfig, SelfTrainResult, self_train

SVM_NAME = "svm.t7"
ROUNDS_LOG_NAME = "rounds.log"
PSEUDOLABELS_NAME = "pseudolabels.t7"
PREDICTIONS_NAME = "predictions.csv"
ROUNDS_LOG_NAMES = ("round", "pseudo-labels added", "pseudo-labels in all",
                    "% accuracy of the added", "% accuracy of all pseudo-labels",
                    "% accuracy (val set)")


def run_selftrain(config: SelfTrainConfig, *, centroids_path, train_path, val_path, extra_path,
                  out_dir, extra_labels_path=None, extra_limit=None, test_path=None,
                  device="cpu", progress=None, echo=None) -> SelfTrainResult:
    """Encode the splits with ``centroids_path`` and self-train the L2-SVM; see the module doc.

    ``progress`` (:class:`~luatorch_port.util.progress.Progress`) sees the encoding of each split.
    Returns the :class:`SelfTrainResult`; the CLI writes ``run.json``.
    """
    from ..data import load_split
    from ..kmeans import Classifier, CoatesKMeans
    from ..util.progress import Counter
    from .run import load_extra_labels

    config.validate()
    kmeans = CoatesKMeans.load(centroids_path)
    train = load_split(train_path, expect="labelled")
    val = load_split(val_path, expect="labelled") if val_path is not None else None
    extra = load_split(extra_path, limit=extra_limit, expect="extra")
    test = load_split(test_path) if test_path is not None else None
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
        write_predictions(os.path.join(out_dir, PREDICTIONS_NAME),
                          classifier.predict(feats["test"]).cpu(), n_classes=n_classes)
    return result


def _round_of_each(result: SelfTrainResult) -> torch.Tensor:
    return torch.cat([torch.full((r.added,), r.round, dtype=torch.int64) for r in result.rounds]) \
        if result.rounds else torch.empty(0, dtype=torch.int64)
