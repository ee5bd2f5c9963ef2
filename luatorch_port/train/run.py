"""What ``a2 train`` and ``a2 predict`` do (``run_train``, ``run_predict``): t7b files in, a
run folder / predictions out.

Port of the starter's whole pipeline (ds-ga-1008-a2 provider.lua + train.lua): read
train/val t7b, ``Provider:normalize`` (YUV, Y contrast-normalised, U/V standardised with
the training set's mean/std), build the model, train with :func:`..loop.fit`.

Deviations: the U/V statistics are also written to ``norm.t7`` (a Lua table ``{mean_u,
std_u, mean_v, std_v}``) beside ``model.net``, so ``a2 predict`` normalises test images as
the model was trained; the starter kept them inside its 2.8 GB ``provider.t7``, which
``a2 predict --norm provider.t7`` also reads.
"""

from __future__ import annotations

import os

import torch

from .. import t7
from ..util.errors import A2Error
from . import distributed as D
from .loop import TrainConfig, fit, predict
from .provider import NORM_NAME, load_norm, save_norm

DEFAULT_MODEL = "vgg_bn_drop"   # train.lua's default -model
PREDICT_BATCH_SIZE = 125        # train.lua val(): `local bs = 125`


def _square_size(images, path) -> int:
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise A2Error(f"{path}: images are {tuple(images.shape[1:])}, expected square 3xHxH")
    return int(images.shape[-1])


def run_train(config: TrainConfig, *, train_path, val_path, model_name: str, out_dir,
                 generator: torch.Generator, device, resume: bool = False, limit=None,
                 dist_ctx: D.DistContext = D.SINGLE, progress=None, echo=None):
    """Train ``model_name`` on ``train_path`` (validated on ``val_path`` unless None).

    Returns the :class:`FitResult`. Writes to ``out_dir`` (rank 0): ``val.log``,
    ``model.net``, ``norm.t7``, ``confusion.txt``, ``checkpoint.pt``.
    """
    from ..data import load_split
    from ..nn import build_model
    from .checkpoint import CHECKPOINT_NAME, require_checkpoint
    from .loop import check_batches
    from .provider import fit_normalization, normalize

    # every check before the first write: a refused run leaves no file behind
    config.validate()
    if resume:
        require_checkpoint(os.path.join(out_dir, CHECKPOINT_NAME))
    train = load_split(train_path, limit=limit, expect="labelled", progress=progress)
    val = load_split(val_path, limit=limit, expect="labelled", progress=progress) if val_path is not None else None
    size = _square_size(train.images, train_path)
    if val is not None and val.images.shape[1:] != train.images.shape[1:]:
        raise A2Error(f"{val_path}: images are {tuple(val.images.shape[1:])}, "
                      f"train has {tuple(train.images.shape[1:])}")
    n_classes = len(train.classes)
    config.n_classes = n_classes
    check_batches(len(train), config)
    model = build_model(model_name, n_classes=n_classes, input_size=size, generator=generator)
    stats = fit_normalization(train.images)
    train_data = (normalize(train.images, stats), train.labels)
    val_data = (normalize(val.images, stats), val.labels) if val is not None else None
    if dist_ctx.is_main:
        os.makedirs(out_dir, exist_ok=True)
        save_norm(stats, os.path.join(out_dir, NORM_NAME))
    return fit(model, train_data, val_data, config, generator=generator, device=device,
               out_dir=out_dir, resume=resume, dist_ctx=dist_ctx, progress=progress,
               classes=train.classes, echo=echo)


def default_norm_path(model_path):
    """``norm.t7`` beside the model file, or None if there is none."""
    path = os.path.join(os.path.dirname(os.path.abspath(os.fspath(model_path))), NORM_NAME)
    return path if os.path.exists(path) else None


def run_predict(model_path, test_path, *, norm_path=None, device=None,
                batch_size: int = PREDICT_BATCH_SIZE, progress=None):
    """0-based predictions of the model in ``model_path`` (.t7/.net Lua or ours, .pt) for
    every image of ``test_path``, in file order.

    Returns ``(labels0, norm_path_used, classes)``: int64 labels (N,), the norm file read,
    and the split's class names (whose count the labels index).
    """
    from ..data import load_split
    from ..nn import load_model
    from .provider import normalize

    norm_path = norm_path or default_norm_path(model_path)
    if norm_path is None:
        raise A2Error(f"no norm.t7 beside {os.fspath(model_path)}: pass --norm (a norm.t7 "
                      f"written by a2 train, or the starter's provider.t7)")
    stats = load_norm(norm_path)
    model = load_model(model_path)
    test = load_split(test_path, progress=progress)
    inputs = normalize(test.images, stats)
    if device is not None:
        model.to(device)
    try:
        # the image size, up front; two images, as a Lua View may take one for no batch
        predict(model, inputs[:2], batch_size=2, device=device)
    except (A2Error, RuntimeError) as err:
        if isinstance(err, RuntimeError) and "shape" not in str(err) and "size" not in str(err):
            raise
        raise A2Error(f"{os.fspath(test_path)}: images are "
                      f"{'x'.join(map(str, inputs.shape[1:]))}, which {os.fspath(model_path)} "
                      f"does not take ({' '.join(str(err).split())[:200]})") from None
    labels = predict(model, inputs, batch_size=batch_size, device=device, progress=progress)
    return labels, norm_path, list(test.classes)
