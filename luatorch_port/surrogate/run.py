"""What ``a2 surrogate build|train|eval`` do (report part 2.1): files in, files and numbers out.

* :func:`run_build` -- seed images from extra.t7b to the surrogate dataset file
  (:func:`.build.build_surrogate`);
* :func:`run_train` -- an Exemplar-CNN trained on the surrogate classes with the starter's
  loop (:func:`luatorch_port.train.fit`), written as a run folder;
* :func:`run_eval` -- the trained net's features of labelled images (:mod:`.features`), a
  linear SVM on train, accuracies on train/val/test and the test predictions; with
  ``random_init`` the same architecture and pipeline with untrained weights (the control
  every surrogate result is read against).

Port of Dosovitskiy et al. 2014 (sections 2, 4, 4.1) as the 2016 report set it up.
"""

from __future__ import annotations

import os
import time
from typing import Optional

import torch

from ..kmeans.svm import COATES_C
from ..util.errors import A2Error
from . import build as B
from . import transforms as T

DEFAULT_EXTRA = os.path.join("data", "extra.t7b")
DEFAULT_TRAIN = os.path.join("data", "train.t7b")
DEFAULT_VAL = os.path.join("data", "val.t7b")
DEFAULT_TEST = os.path.join("data", "test.t7b")
SVM_C = COATES_C       # Coates' fixed C for the feature SVM (kmeans_demo.m)
EVAL_BATCH = 50        # images per forward pass when computing features


def run_build(extra_path, out_path, generator: torch.Generator, *, classes: int = B.N_SEEDS,
              per_seed: int = B.PER_SEED, patch: int = B.PATCH, window=B.WINDOW,
              gradient: bool = True, preset: str = T.DEFAULT_PRESET,
              ranges: Optional[T.TransformRanges] = None, limit: Optional[int] = None,
              device="cpu", progress=None) -> dict:
    """Read the unlabelled split at ``extra_path`` (its first ``limit`` images) and write the
    surrogate dataset of ``classes`` seed images x ``per_seed`` transformations to ``out_path``.

    ``ranges`` defaults to the preset's (:func:`.transforms.preset` applies overrides);
    ``progress`` (:class:`~luatorch_port.util.progress.Progress`) sees the seeds rendered. Returns
    :func:`.build.build_surrogate`'s dict plus ``seconds`` (reading and building).
    """
    from ..data import load_split

    tic = time.perf_counter()
    split = load_split(extra_path, limit=limit, progress=progress)
    info = B.build_surrogate(split.images, out_path, generator, n_seeds=classes, per_seed=per_seed,
                             patch=patch, window=window, gradient=gradient, preset=preset,
                             ranges=ranges, device=device, progress=progress)
    return {**info, "seconds": time.perf_counter() - tic}


def run_train(surrogate_path, model_spec: str, config, *, out_dir, generator, device=None,
              resume: bool = False, val_per_seed: int = 0, dist_ctx=None, progress=None,
              echo=None):
    """Train ``model_spec`` on the surrogate classes of ``surrogate_path``.

    Parameters
    ----------
    surrogate_path : file written by ``a2 surrogate build``
    model_spec : e.g. ``"64c5-128c5-256c5-512f"`` (or any ``nn.build_model`` name)
    config : :class:`luatorch_port.train.TrainConfig` (``n_classes`` is set here)
    out_dir : run folder: ``model.net`` (Lua t7), ``model.pt``, ``surrogate_norm.t7``,
        ``val.log``, ``checkpoint.pt``
    val_per_seed : hold out this many patches of every class as the validation set
        (the surrogate task's held-out accuracy)

    Returns
    -------
    :class:`luatorch_port.train.FitResult`
    """
    from ..nn import build_model, save_model
    from ..train import distributed as D
    from ..train import fit
    from ..train.checkpoint import CHECKPOINT_NAME, require_checkpoint
    from ..train.loop import check_batches
    from .train import NORM_NAME, PT_NAME, PatchData, fit_patch_norm, save_norm, split_held_out

    dist_ctx = dist_ctx or D.SINGLE
    # every check before the first write: a refused run leaves no file behind
    config.validate()
    if val_per_seed < 0:
        raise A2Error(f"--val-per-seed {val_per_seed} should be >= 0 (0: no held-out set)")
    if resume:
        require_checkpoint(os.path.join(out_dir, CHECKPOINT_NAME))
    data = B.load(surrogate_path)
    patch = int(data.images.shape[-1])
    norm = fit_patch_norm(data.images, generator)
    train_idx, val_idx = split_held_out(data.labels, val_per_seed)
    if val_idx is None:  # no copy of the (up to 1.2 GB) patches
        train_data, val_data = PatchData(data.images, data.labels, norm), None
    else:
        train_data = PatchData(data.images[train_idx], data.labels[train_idx], norm)
        val_data = PatchData(data.images[val_idx], data.labels[val_idx], norm)
    config.n_classes = data.n_classes
    check_batches(len(train_data), config)
    model = build_model(model_spec, n_classes=data.n_classes, input_size=patch, generator=generator)
    if dist_ctx.is_main:
        os.makedirs(out_dir, exist_ok=True)
        save_norm(norm, os.path.join(out_dir, NORM_NAME))
    result = fit(model, train_data, val_data, config, generator=generator, device=device,
                 out_dir=out_dir, resume=resume, dist_ctx=dist_ctx, progress=progress, echo=echo)
    if dist_ctx.is_main:
        trained = result.model.to(device="cpu", memory_format=torch.contiguous_format).eval()
        save_model(trained, os.path.join(out_dir, PT_NAME), spec=model_spec)
    return result


def run_eval(model_path, train_path=DEFAULT_TRAIN, test_path=DEFAULT_TEST, *, val_path=None,
             norm_path=None, C: float | str = "auto", refit: bool = True, random_init: bool = False,
             generator=None, batch_size: int = EVAL_BATCH, device=None, limit=None,
             progress=None) -> dict:
    """Train a linear L2-SVM on the Exemplar-CNN features of ``train_path``; score every split.

    Parameters
    ----------
    model_path : model.net / model.pt from ``a2 surrogate train``
    train_path, test_path : labelled course splits (train.t7b, test.t7b); ``val_path``
        optional (val.t7b), scored as well
    norm_path : the training normalisation (default ``surrogate_norm.t7`` beside the model)
    C, refit : the SVM's C, as :func:`~luatorch_port.kmeans.svm.fit_svm` (``"auto"``: chosen
        on ``val_path``, then refit on train + val when ``refit``; without a val split, or a
        number: fixed, :data:`SVM_C` being Coates')
    random_init : the control: the model's architecture with untrained weights (Lua's
        ``reset()`` of every layer, drawn from ``generator``), the same normalisation,
        features and SVM
    limit : read only the first N images of each split
    progress : :class:`~luatorch_port.util.progress.Progress` of the images whose features
        are done

    Returns
    -------
    dict: train_acc, val_acc (None without val; with C chosen on val, the chosen C's val
    accuracy before any refit), test_acc (fractions), test_pred (0-based int64), n_features,
    classes, n_train, n_val, n_test, norm, random_init, C, c_source, c_curve, refit.
    """
    from ..data import load_split
    from ..kmeans.svm import fit_svm
    from ..nn import load_model
    from .features import exemplar_features, untrained_copy
    from .train import NORM_NAME, load_norm

    if batch_size < 1 or not (C == "auto" or (not isinstance(C, str) and C > 0)):
        raise A2Error(f"batch size {batch_size} must be >= 1 and C {C} 'auto' or > 0")
    norm_path = norm_path or os.path.join(os.path.dirname(os.path.abspath(os.fspath(model_path))),
                                          NORM_NAME)
    if not os.path.exists(norm_path):
        raise A2Error(f"no {NORM_NAME} beside {os.fspath(model_path)}: pass --norm (written by "
                      f"a2 surrogate train)")
    norm = load_norm(norm_path)
    model = load_model(model_path).float().eval()
    if random_init:
        model = untrained_copy(model, generator or torch.Generator().manual_seed(1))
    paths = {"train": train_path, "val": val_path, "test": test_path}
    splits = {name: load_split(path, limit=limit, expect="labelled", progress=progress)
              for name, path in paths.items() if path is not None}
    feats = {name: exemplar_features(model, norm.apply(split.images), batch_size=batch_size,
                                     device=device, progress=progress, stage=f"features {name}")
             for name, split in splits.items()}
    train = splits["train"]
    fit = fit_svm(feats["train"], train.labels, feats.get("val"),
                  splits["val"].labels if "val" in splits else None, C=C, refit=refit,
                  n_classes=len(train.classes))
    pred = {name: fit.classifier.predict(v).cpu() for name, v in feats.items()}
    acc = {name: float((pred[name] == splits[name].labels).double().mean()) for name in pred}
    if "val" in splits:
        acc["val"] = fit.val_accuracy
    return {"train_acc": acc["train"], "val_acc": acc.get("val"), "test_acc": acc["test"],
            "test_pred": pred["test"], "n_features": feats["train"].shape[1],
            "classes": train.classes, "n_train": len(train),
            "n_val": len(splits["val"]) if "val" in splits else None, "n_test": len(splits["test"]),
            "norm": norm_path, "random_init": random_init, "C": fit.C, "c_source": fit.c_source,
            "c_curve": fit.curve, "refit": fit.refit, "svm": fit}
