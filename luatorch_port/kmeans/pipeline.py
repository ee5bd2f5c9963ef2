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
from .encoder import DEFAULT_PRECISION
from .svm import C_GRID, COATES_C, Classifier, accuracy, fit_classifier, select_C

# Largest --image-size images are resized to: 512 is over 5x the STL-10 side (96); every
# image of --data is held resized, so 100000 would ask for terabytes.
MAX_IMAGE_SIZE = 512


@dataclass
class Evaluation:
    """Result of :func:`evaluate`.

    Accuracies are fractions 0..1 (None where the split is absent or unlabelled);
    ``C`` is the SVM's C used for the final classifier, ``c_source`` says where it came
    from (``"val"``: chosen on the val split; ``"fixed"``: given, or Coates' C without a val
    split); ``curve`` is :func:`select_C`'s val curve (empty for a fixed C); ``refit`` says
    whether the final classifier was refit on train + val; ``seconds`` per stage.
    """

    train_accuracy: float
    val_accuracy: float | None
    test_accuracy: float | None
    test_predictions: torch.Tensor
    classifier: Classifier
    C: float
    c_source: str
    curve: list = field(default_factory=list)
    refit: bool = False
    seconds: dict = field(default_factory=dict)


def evaluate(model, train_images: torch.Tensor, train_labels: torch.Tensor,
             test_images: torch.Tensor, test_labels: torch.Tensor | None = None, *,
             val_images: torch.Tensor | None = None, val_labels: torch.Tensor | None = None,
             C: float | str = "auto", grid=C_GRID, refit: bool = True,
             precision: str = DEFAULT_PRECISION, n_classes: int | None = None, device="cpu",
             on_images=None, on_fit=None) -> Evaluation:
    """Encode the splits with ``model`` (a fitted CoatesKMeans), fit the SVM, predict, score.

    C : a float (Coates: 100, trained on the training split alone), or ``"auto"``: chosen
        on the val split by :func:`select_C` over ``grid``; without a val split, ``"auto"``
        falls back to Coates' fixed C = 100 (``c_source`` is then ``"fixed"``).
    refit : with a C chosen on val, refit that C on train + val for the final classifier
        (warm-started from the train-only fit); ignored for a fixed C.
    precision : the encoder's distance GEMM, ``"fp32"`` or ``"bf16"``.
    on_images(n) is called as images are encoded (train, val, then test); on_fit(point)
    after each C of the grid.
    """
    if train_labels is None:
        raise A2Error("the training split has no labels (an extra-layout file?)")
    has_val = val_images is not None
    if has_val and val_labels is None:
        raise A2Error("the val split has no labels (an extra-layout file?)")
    seconds = {}
    t = time.perf_counter()

    def enc(images):
        return model.transform(images, device=device, precision=precision, progress=on_images)

    train_x = enc(train_images)
    val_x = enc(val_images) if has_val else None
    test_x = enc(test_images)
    seconds["encode"] = time.perf_counter() - t
    t = time.perf_counter()
    curve, did_refit = [], False
    if isinstance(C, str):
        if C != "auto":
            raise A2Error(f"C should be a positive number or 'auto', got {C!r}")
        auto = has_val
        C = COATES_C
    else:
        auto = False
    if auto:
        C, curve, clf = select_C(train_x, train_labels, val_x, val_labels, grid,
                                 n_classes=n_classes, on_fit=on_fit)
        val_acc = next(p["val_accuracy"] for p in curve if p["C"] == C)
        seconds["grid"] = time.perf_counter() - t
        if refit:
            t = time.perf_counter()
            clf = fit_classifier(torch.cat([train_x, val_x]), torch.cat([train_labels, val_labels]),
                                 C=C, n_classes=n_classes, init=clf.svm)
            did_refit = True
            seconds["refit"] = time.perf_counter() - t
    else:
        clf = fit_classifier(train_x, train_labels, C=C, n_classes=n_classes)
        val_acc = accuracy(clf.predict(val_x), val_labels) if has_val else None
        seconds["svm"] = time.perf_counter() - t
    train_acc = accuracy(clf.predict(train_x), train_labels)
    pred = clf.predict(test_x).cpu()
    test_acc = None if test_labels is None else accuracy(pred, test_labels)
    return Evaluation(train_acc, val_acc, test_acc, pred, clf, float(C),
                      "val" if auto else "fixed", curve, did_refit, seconds)
