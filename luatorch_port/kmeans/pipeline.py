"""Port of the classification half of Coates' ``kmeans_demo.m``: features -> standardise -> L2-SVM.

``fit_classifier`` standardises training features and fits the one-vs-all L2-SVM;
``evaluate`` encodes a labelled training split and a test split with a fitted
:class:`~luatorch_port.kmeans.coates.CoatesKMeans`, trains, and scores both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from ..util.errors import A2Error
from .svm import COATES_C, Classifier, accuracy, fit_classifier

# Largest --image-size images are resized to: 512 is over 5x the STL-10 side (96); every
# image of --data is held resized, so 100000 would ask for terabytes (issue 19).
MAX_IMAGE_SIZE = 512


@dataclass
class Evaluation:
    """Result of :func:`evaluate`: accuracies (0..1), test predictions, fitted classifier, seconds."""

    train_accuracy: float
    test_accuracy: float | None
    test_predictions: torch.Tensor
    classifier: Classifier
    seconds: dict = field(default_factory=dict)


def evaluate(model, train_images: torch.Tensor, train_labels: torch.Tensor,
             test_images: torch.Tensor, test_labels: torch.Tensor | None = None, *,
             C: float = COATES_C, n_classes: int | None = None, device="cpu",
             on_images=None) -> Evaluation:
    """Encode both splits with ``model`` (a fitted CoatesKMeans), fit, predict, score.

    on_images(n) is called as images are encoded (train first, then test).
    """
    if train_labels is None:
        raise A2Error("the training split has no labels (an extra-layout file?)")
    seconds = {}
    t = time.perf_counter()
    train_x = model.transform(train_images, device=device, progress=on_images)
    test_x = model.transform(test_images, device=device, progress=on_images)
    seconds["encode"] = time.perf_counter() - t
    t = time.perf_counter()
    clf = fit_classifier(train_x, train_labels, C=C, n_classes=n_classes)
    seconds["svm"] = time.perf_counter() - t
    train_acc = accuracy(clf.predict(train_x), train_labels)
    pred = clf.predict(test_x).cpu()
    test_acc = None if test_labels is None else accuracy(pred, test_labels)
    return Evaluation(train_acc, test_acc, pred, clf, seconds)
