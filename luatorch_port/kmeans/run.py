"""The work of ``a2 kmeans fit`` and ``a2 kmeans eval`` (Coates' ``kmeans_demo.m`` end to end).

:func:`run_fit` reads unlabelled images, learns the dictionary (:class:`CoatesKMeans`) and
writes ``centroids.t7``; :func:`evaluate` encodes labelled splits, fits the L2-SVM (C
chosen on val by :func:`~luatorch_port.kmeans.svm.select_C`, or fixed) and scores it;
:func:`run_eval` wraps it with the files: splits in, ``svm.t7`` and a Kaggle CSV out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pathlib import Path

import torch

from .. import t7
from ..data import load_split
from ..data.kaggle import write_predictions
from ..util.errors import A2Error
from ..util.progress import Counter, Progress, or_silent
from .coates import FIT_PRECISION, PRESETS, CoatesKMeans
from .encoder import DEFAULT_PRECISION
from .svm import C_GRID, Classifier, accuracy, fit_svm

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
    precision : the encoder's distance GEMM, ``"bf16"`` (default) or ``"fp32"``.
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
    fit = fit_svm(train_x, train_labels, val_x, val_labels if has_val else None, C=C, grid=grid,
                  refit=refit, n_classes=n_classes, on_fit=on_fit)
    clf, val_acc = fit.classifier, fit.val_accuracy
    seconds.update(fit.seconds)
    train_acc = accuracy(clf.predict(train_x), train_labels)
    pred = clf.predict(test_x).cpu()
    test_acc = None if test_labels is None else accuracy(pred, test_labels)
    return Evaluation(train_acc, val_acc, test_acc, pred, clf, fit.C, fit.c_source, fit.curve,
                      fit.refit, seconds)


def choose_images(n: int, limit: int | None, generator: torch.Generator | None = None) -> torch.Tensor | None:
    """Indices of ``limit`` of ``n`` images drawn at random (sorted), or None for all of them."""
    if limit is None or limit >= n:
        return None
    return torch.randperm(n, generator=generator)[:limit].sort().values


def run_fit(extra, out, *, preset: str = "coates", k: int | None = None, rf: int | None = None,
            stride: int | None = None, n_patches: int | None = None,
            iterations: int | None = None, image_size: int | None = None,
            sampling: str | None = None, limit: int | None = None, whiten: bool = True,
            init: str = "randn", precision: str = FIT_PRECISION,
            generator: torch.Generator | None = None, device="cpu",
            progress: Progress | None = None) -> dict:
    """What ``a2 kmeans fit`` does: read ``extra`` (any course-layout file), fit, write ``out``.

    preset : a key of :data:`~luatorch_port.kmeans.coates.PRESETS` (``"coates"`` or
        ``"report"``); every other setting left None takes the preset's value.
    limit : use that many images of ``extra``, drawn at random with ``generator`` (the
        whole file is read first), not the first ones.
    precision : the k-means assignment's scores, ``"bf16"`` or ``"fp32"`` (:class:`CoatesKMeans`).
    progress : the one progress callback (:class:`~luatorch_port.util.progress.Progress`),
        for the images patches are drawn from and for the k-means iterations.

    Returns a dict: ``model`` (the fitted :class:`CoatesKMeans`), ``settings`` (the preset
    with the overrides applied), ``images`` (how many were used), ``seconds``,
    ``load_seconds`` and ``stage_seconds`` (``load``, the fit's stages, ``write``).
    """
    if preset not in PRESETS:
        raise A2Error(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    given = {"k": k, "rf": rf, "stride": stride, "n_patches": n_patches,
             "iterations": iterations, "image_size": image_size, "sampling": sampling,
             "limit": limit}
    settings = {key: value if given[key] is None else given[key]
                for key, value in PRESETS[preset].items()}
    t0 = time.perf_counter()
    split = load_split(extra, progress=progress)
    images = split.images
    pick = choose_images(len(images), settings["limit"], generator)
    if pick is not None:
        images = images[pick]
    t_load = time.perf_counter() - t0
    model = CoatesKMeans(k=settings["k"], rf=settings["rf"], n_patches=settings["n_patches"],
                         iterations=settings["iterations"], image_size=settings["image_size"],
                         whiten=whiten, init=init, stride=settings["stride"],
                         sampling=settings["sampling"], precision=precision)
    report = or_silent(progress)
    model.fit(images, generator=generator, device=device,
              on_images=Counter(progress, len(images), "patches", unit="img"),
              on_iteration=lambda i, objective: report(i + 1, settings["iterations"], stage="k-means",
                                                       objective=objective))
    t = time.perf_counter()
    model.save(out)
    stages = {"load": t_load, **model.seconds_, "write": time.perf_counter() - t}
    return {"model": model, "settings": settings, "images": len(images), "load_seconds": t_load,
            "stage_seconds": stages, "seconds": time.perf_counter() - t0}


def run_eval(centroids, train, test, *, val=None, C: float | str = "auto", grid=C_GRID,
             refit: bool = True, precision: str = DEFAULT_PRECISION, encoder: str | None = None,
             svm_out=None, predictions=None, limit: int | None = None, device="cpu",
             progress: Progress | None = None, on_fit=None) -> dict:
    """What ``a2 kmeans eval`` does: encode the splits, fit and score the SVM, write it.

    centroids : ``centroids.t7``; train / val / test : course-layout files (``val`` None:
    no val split, so ``C="auto"`` falls back to Coates' fixed C). encoder : override the
    saved activation. svm_out : where the classifier table goes (default
    ``<centroids stem>.svm.t7``); predictions : optional Kaggle CSV. Other arguments as
    :func:`evaluate`. Returns a dict: ``evaluation`` (:class:`Evaluation`), ``model``,
    ``sizes`` (images per split), ``svm_out``, ``n_classes``. ``progress`` as
    :func:`run_fit`'s, for the images to encode.
    """
    model = CoatesKMeans.load(centroids)
    if encoder is not None:
        model.encoder = encoder
    tr = load_split(train, limit=limit, expect="labelled", progress=progress)
    va = None if val is None else load_split(val, limit=limit, expect="labelled", progress=progress)
    te = load_split(test, limit=limit, progress=progress)
    total = len(tr) + len(te) + (0 if va is None else len(va))
    result = evaluate(model, tr.images, tr.labels, te.images, te.labels,
                      val_images=None if va is None else va.images,
                      val_labels=None if va is None else va.labels, C=C, grid=grid,
                      refit=refit, precision=precision, n_classes=len(tr.classes),
                      device=device, on_images=Counter(progress, total, "encoding", unit="img"),
                      on_fit=on_fit)
    cpath = Path(centroids)
    svm_path = Path(svm_out) if svm_out else cpath.with_name(f"{cpath.stem}.svm.t7")
    t7.save(result.classifier.state_dict(), svm_path)
    if predictions:
        write_predictions(predictions, result.test_predictions, n_classes=len(tr.classes))
    return {"evaluation": result, "model": model, "svm_out": svm_path, "n_classes": len(tr.classes),
            "sizes": {"train": len(tr), "val": 0 if va is None else len(va), "test": len(te)}}
