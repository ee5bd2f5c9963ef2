"""Port of the starter's train.lua (jakezhaojb/ds-ga-1008-a2): the epoch loop, reusable.

Per epoch, as train.lua does: the learning rate is halved when ``epoch % epoch_step == 0``
(so epochs 1..24 use lr, 25..49 lr/2, ...); the training set is shuffled and split into
batches of ``batch_size`` with the LAST chunk dropped (train.lua's ``indices[#indices] =
nil``, even when that chunk is full); each batch goes through BatchFlip (half the batch
flipped, training only), the model, CrossEntropyCriterion and one ``optim.sgd`` step, and
into a confusion matrix; then the model is evaluated on the validation set, a row
``{train accuracy %, val accuracy %}`` is added to ``val.log`` (optim.Logger format) and
``model.net`` is written every ``save_every`` epochs.

:func:`fit` takes already-normalised tensors (or any object with ``__len__`` and
``get_batch(indices) -> (inputs, targets)``), a loss hook and an epoch hook, so the
surrogate-class and pseudo-label methods reuse it.

Deviations:
- train.lua saves ``model.net`` when ``epoch % 5 == 0`` *after* its epoch counter was
  already incremented (i.e. after epochs 4, 9, 14, ...); here it is saved after epochs
  ``save_every``, ``2*save_every``, ... and after the last epoch.
- The validation pass evaluates a partial last batch (train.lua's ``narrow`` would fail
  when the set size is not a multiple of 125) and runs under ``torch.no_grad``.
- Shuffling uses ``DistributedSampler``'s permutation (seeded once from the generator), so a
  1-process and an N-process run see the same global batches.
- Every epoch also writes a resumable ``checkpoint.pt`` (train.lua has no resume).
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch.utils.data.distributed import DistributedSampler

from ..util.errors import A2Error
from ..util.files import atomic_output
from ..util.progress import or_silent, track
from . import distributed as D
from .batchflip import batch_flip, flip_mask
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, restore_rng, save_checkpoint
from .confusion import ConfusionMatrix
from .logger import STARTER_NAMES, Logger

MODEL_NAME = "model.net"          # train.lua: paths.concat(opt.save, 'model.net')
LOG_NAME = "val.log"              # train.lua: optim.Logger(paths.concat(opt.save, 'val.log'))
CONFUSION_NAME = "confusion.txt"  # train.lua writes tostring(confusion) into report.html
# Above this many classes (surrogate training has 4,000) confusion.txt holds the accuracies
# only: a 4000x4000 matrix is ~128 MB of text per epoch.
CONFUSION_TEXT_MAX_CLASSES = 100


@dataclass
class TrainConfig:
    """The starter's options; the CLI exposes them under their Lua names.

    batch_size (``--batchSize``, 64), learning_rate (``--learningRate``, 1),
    learning_rate_decay (``--learningRateDecay``, 1e-7), weight_decay (``--weightDecay``,
    5e-4), momentum (``--momentum``, 0.9), epoch_step (``--epoch_step``, 25), max_epoch
    (``--max_epoch``, 300).
    """

    batch_size: int = 64
    learning_rate: float = 1.0
    learning_rate_decay: float = 1e-7
    weight_decay: float = 5e-4
    momentum: float = 0.9
    epoch_step: int = 25
    max_epoch: int = 300
    save_every: int = 5           # train.lua: `if epoch % 5 == 0 then torch.save(model.net)`
    checkpoint_every: int = 1
    flip: bool = True             # nn.BatchFlip in front of the model
    val_batch_size: int = 125     # train.lua val(): `local bs = 125`
    channels_last: bool = True    # see docs/train.md: faster convolutions on CPU
    n_classes: int = 10

    def validate(self) -> "TrainConfig":
        for name in ("batch_size", "epoch_step", "max_epoch", "save_every", "checkpoint_every",
                     "val_batch_size", "n_classes"):
            if getattr(self, name) < 1:
                raise A2Error(f"{name}={getattr(self, name)} should be >= 1")
        if not self.learning_rate > 0 or not math.isfinite(self.learning_rate):
            raise A2Error(f"learning_rate={self.learning_rate} should be > 0")
        for name in ("learning_rate_decay", "weight_decay", "momentum"):
            value = getattr(self, name)
            if not value >= 0 or not math.isfinite(value):
                raise A2Error(f"{name}={value} should be >= 0 and finite")
        return self

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 1-based ``epoch``: halved at every multiple of ``epoch_step``."""
        return self.learning_rate / 2 ** (epoch // self.epoch_step)


@dataclass(frozen=True)
class StepInfo:
    """Passed to ``loss_fn``: 1-based ``epoch``, 0-based ``batch`` in it, 0-based ``step`` overall."""

    epoch: int
    batch: int
    step: int


@dataclass
class FitResult:
    model: torch.nn.Module
    history: list = field(default_factory=list)
    val_confusion: Optional[ConfusionMatrix] = None
    train_confusion: Optional[ConfusionMatrix] = None

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


class TensorData:
    """In-memory ``(inputs, targets)``; ``get_batch(indices)`` indexes both."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor):
        if inputs.shape[0] != targets.shape[0]:
            raise A2Error(f"{inputs.shape[0]} inputs but {targets.shape[0]} targets")
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def get_batch(self, indices: torch.Tensor):
        return self.inputs.index_select(0, indices), self.targets.index_select(0, indices)


def as_data(data):
    """A ``(inputs, targets)`` pair -> :class:`TensorData`; a data object passes through."""
    if data is None:
        return None
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return TensorData(*data)
    if hasattr(data, "get_batch") and hasattr(data, "__len__"):
        return data
    raise A2Error(f"training data must be an (inputs, targets) pair or have __len__ and "
                  f"get_batch(indices), got {type(data).__name__}")


def cross_entropy(outputs, targets, info=None):
    """nn.CrossEntropyCriterion (sizeAverage): LogSoftMax + ClassNLL, mean over the batch."""
    return F.cross_entropy(outputs, targets)


def lua_sgd(params, config: TrainConfig):
    """``optim.sgd`` with the config's learning rate, decay, weight decay and momentum."""
    from .optim import SGD
    return SGD(params, learningRate=config.learning_rate,
               learningRateDecay=config.learning_rate_decay,
               weightDecay=config.weight_decay, momentum=config.momentum)


def set_learning_rate(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["learningRate" if "learningRate" in group else "lr"] = lr


def default_save_model(model, path) -> None:
    """``model.net`` (Lua-loadable t7) and, beside it, ``model.pt`` (PyTorch) of ``model``."""
    from ..nn import save_model
    save_model(model, path)
    save_model(model, os.path.splitext(os.fspath(path))[0] + ".pt")


def _contiguous_copy(model):
    dup = copy.deepcopy(model)
    return dup.to(memory_format=torch.contiguous_format)


def check_batches(n: int, config: TrainConfig) -> int:
    """The number of batches per epoch of ``n`` images (train.lua drops the last chunk);
    A2Error when there is none."""
    n_batches = math.ceil(n / config.batch_size) - 1
    if n_batches < 1:
        raise A2Error(f"{n} training images leave no batch of {config.batch_size} once the "
                      f"last chunk is dropped (train.lua's rule); use a smaller --batchSize")
    return n_batches


def fit(model: torch.nn.Module, train_data, val_data, config: TrainConfig, *,
        generator: torch.Generator, device=None, out_dir=None,
        loss_fn: Callable = cross_entropy, on_epoch_end: Optional[Callable] = None,
        optimizer_fn: Callable = lua_sgd, save_model_fn: Optional[Callable] = default_save_model,
        resume: bool = False, dist_ctx: D.DistContext = D.SINGLE, progress=None,
        classes=None, log_names=STARTER_NAMES, echo: Optional[Callable] = None) -> FitResult:
    """Train ``model`` as train.lua does; return a :class:`FitResult`.

    Parameters
    ----------
    model : torch.nn.Module
        Outputs (N, n_classes) scores. Moved to ``device``; under torchrun wrapped in DDP.
    train_data, val_data
        ``(inputs float (N, C, H, W) already normalised, targets int64 (N,) 0-based)`` or an
        object with ``__len__`` and ``get_batch(indices) -> (inputs, targets)``.
        ``val_data`` may be None (the val column of val.log is then nan). Targets < 0 are
        left out of the confusion matrices (a pseudo-label batch marks unlabelled rows so).
    config : TrainConfig
    generator : torch.Generator
        CPU generator for the batch order seed and the flips (dropout uses torch's global
        RNG, which the CLI seeds; both are checkpointed).
    device : torch.device, optional
        Default: where the model's parameters are.
    out_dir : path, optional
        Where ``val.log``, ``model.net``, ``confusion.txt`` and ``checkpoint.pt`` go (rank 0
        only). None writes nothing (no resume either).
    loss_fn : callable ``(outputs, targets, StepInfo) -> scalar loss``
        Default nn.CrossEntropyCriterion.
    on_epoch_end : callable ``(epoch, model, record) -> None``, optional
        Called on every rank after validation, before the checkpoint (so anything it
        draws from the RNGs is replayed exactly on resume).
    optimizer_fn : callable ``(params, config) -> optimizer``
        Default :func:`lua_sgd` (optim.sgd semantics).
    save_model_fn : callable ``(model, path)``, optional
        Writes ``model.net``; the default writes it with ``luatorch_port.nn.save_model``
        (Lua-loadable t7) and ``model.pt`` beside it. None writes no model.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` (model, optimizer, epoch, RNG states, log).
    dist_ctx : DistContext
        From :func:`distributed.init_from_env`; the global batch is split across ranks.
    progress : :class:`~luatorch_port.util.progress.Progress`, optional
        Batches done per epoch (stage ``epoch E/N``), with loss, accuracy and img/s; rank 0 only.
    echo : callable ``(str) -> None``, optional
        Receives one summary line per epoch (rank 0 only).
    """
    config.validate()
    train_data, val_data = as_data(train_data), as_data(val_data)
    n = len(train_data)
    n_batches = check_batches(n, config)
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    main = dist_ctx.is_main

    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    optimizer = optimizer_fn(model.parameters(), config)

    history, start_epoch = [], 0
    ckpt_path = os.path.join(out_dir, CHECKPOINT_NAME) if out_dir is not None else None
    if resume:
        if ckpt_path is None:
            raise A2Error("resume needs an output folder holding checkpoint.pt")
        state = load_checkpoint(ckpt_path)
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            msg = " ".join(str(err).split())[:300]
            raise A2Error(f"{ckpt_path}: does not fit this model/optimizer ({msg})") from None
        restore_rng(state, generator)
        history = list(state["history"])
        start_epoch = state["epoch"]
        sampler_seed = int(state["extra"]["sampler_seed"])
    else:
        sampler_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))

    net = D.wrap_model(model, dist_ctx, device)
    logger = None
    if out_dir is not None and main:  # the first write: every check above has passed
        os.makedirs(out_dir, exist_ok=True)
        logger = Logger(os.path.join(out_dir, LOG_NAME), log_names,
                        rows=[[h["train_acc"], h["val_acc"]] for h in history])

    local_bs = D.local_batch_size(config.batch_size, dist_ctx)
    sampler = DistributedSampler(range(n), num_replicas=dist_ctx.world_size,
                                 rank=dist_ctx.rank, shuffle=True, seed=sampler_seed)
    train_conf = ConfusionMatrix(config.n_classes, classes, device=device)
    val_conf = ConfusionMatrix(config.n_classes, classes, device=device)
    step = start_epoch * n_batches

    for epoch in range(start_epoch + 1, config.max_epoch + 1):
        lr = config.lr_at(epoch)
        set_learning_rate(optimizer, lr)
        net.train()
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), dtype=torch.int64)
        train_conf.zero()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        # every image the model saw (a pseudo-label batch adds unlabelled rows to the labelled ones)
        images_seen = 0
        tic = time.perf_counter()
        report = or_silent(progress if main else None)
        stage, text = f"epoch {epoch}/{config.max_epoch}", ""
        report(0, n_batches, stage=stage)
        for k in range(n_batches):
            inputs, targets = train_data.get_batch(order[k * local_bs:(k + 1) * local_bs])
            images_seen += inputs.shape[0]
            inputs = inputs.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            if config.flip:  # one mask for the global batch, each rank takes its rows
                mask = flip_mask(inputs.shape[0] * dist_ctx.world_size, generator)
                inputs = batch_flip(inputs, D.shard(mask, dist_ctx))
            if inputs.dim() == 4:
                inputs = inputs.contiguous(memory_format=memory_format)
            outputs = net(inputs)
            loss = loss_fn(outputs, targets, StepInfo(epoch, k, step))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            train_conf.batch_add(outputs, targets)
            loss_sum += loss.detach()
            step += 1
            if main and progress is not None:
                text = _batch_text(k, n_batches, loss_sum, train_conf, images_seen * dist_ctx.world_size,
                                   tic) or text
                report(k + 1, n_batches, stage=stage, text=text)
        seconds = time.perf_counter() - tic
        D.all_reduce_sum_(train_conf.counts, dist_ctx)
        D.all_reduce_sum_(loss_sum, dist_ctx)
        images = torch.tensor(images_seen, dtype=torch.int64, device=device)
        D.all_reduce_sum_(images, dist_ctx)
        train_acc = train_conf.total_valid * 100

        val_acc = math.nan
        if val_data is not None:
            val_conf = evaluate(D.unwrap(net), val_data, config, device=device,
                                dist_ctx=dist_ctx, classes=classes)
            val_acc = val_conf.total_valid * 100
        record = {"epoch": epoch, "lr": lr, "loss": float(loss_sum) / (n_batches * dist_ctx.world_size),
                  "train_acc": train_acc, "val_acc": val_acc, "seconds": seconds,
                  "images": int(images), "images_per_s": int(images) / max(seconds, 1e-9)}
        history.append(record)
        if main and echo is not None:
            echo(f"epoch {epoch}: loss {record['loss']:.4f}  train {train_acc:.2f}%  "
                 f"val {val_acc:.2f}%  lr {lr:g}  {record['images_per_s']:.0f} img/s")
        if on_epoch_end is not None:
            on_epoch_end(epoch, D.unwrap(net), record)

        last = epoch == config.max_epoch
        if out_dir is not None and main:
            logger.add([train_acc, val_acc])
            with atomic_output(os.path.join(out_dir, CONFUSION_NAME), "w") as f:
                if config.n_classes <= CONFUSION_TEXT_MAX_CLASSES:
                    f.write(f"epoch {epoch}\ntrain:\n{train_conf}\n\nval:\n{val_conf}\n")
                else:
                    f.write(f"epoch {epoch}\ntrain: {train_acc:.3f}% global correct\n"
                            f"val: {val_acc:.3f}% global correct\n({config.n_classes} classes: "
                            f"matrices above {CONFUSION_TEXT_MAX_CLASSES} classes are not "
                            f"written)\n")
            if save_model_fn is not None and (epoch % config.save_every == 0 or last):
                save_model_fn(_contiguous_copy(D.unwrap(net)).eval(),
                              os.path.join(out_dir, MODEL_NAME))
            if epoch % config.checkpoint_every == 0 or last:
                save_checkpoint(ckpt_path, model=D.unwrap(net), optimizer=optimizer, epoch=epoch,
                                generator=generator, history=history,
                                extra={"sampler_seed": sampler_seed, "config": asdict(config)})
        D.barrier(dist_ctx)

    return FitResult(model=D.unwrap(net), history=history, val_confusion=val_conf,
                     train_confusion=train_conf)


@torch.no_grad()
def evaluate(model, data, config: TrainConfig, *, device=None, dist_ctx=D.SINGLE,
             classes=None) -> ConfusionMatrix:
    """Confusion matrix of ``model`` (evaluate mode) on ``data``, summed over the ranks."""
    data = as_data(data)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    conf = ConfusionMatrix(config.n_classes, classes, device=device)
    rows = torch.arange(len(data))[dist_ctx.rank::dist_ctx.world_size]
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    for start in range(0, len(rows), config.val_batch_size):
        inputs, targets = data.get_batch(rows[start:start + config.val_batch_size])
        inputs = inputs.to(device)
        if inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=memory_format)
        conf.batch_add(model(inputs), targets.to(device))
    D.all_reduce_sum_(conf.counts, dist_ctx)
    return conf


@torch.no_grad()
def predict_scores(model, inputs: torch.Tensor, *, batch_size: int = 125, device=None,
                   progress=None) -> torch.Tensor:
    """(N, C) float scores of ``model`` in evaluate mode, computed in batches, on the CPU."""
    param = next(model.parameters())
    device = torch.device(device) if device is not None else param.device
    model.eval()
    chunks = []
    starts = range(0, inputs.shape[0], batch_size)
    for k in track(range(len(starts)), progress, stage="predict"):
        # a Lua model may hold DoubleTensors: feed it its own dtype
        x = inputs[starts[k]:starts[k] + batch_size].to(device, param.dtype)
        scores = model(x)
        if scores.dim() != 2 or scores.shape[0] != x.shape[0]:
            # a View folds the extra pixels of a larger image into extra rows
            raise A2Error(f"the model gives scores of shape {tuple(scores.shape)} for "
                          f"{x.shape[0]} images of {'x'.join(map(str, x.shape[1:]))}: it "
                          f"was made for another image size")
        chunks.append(scores.float().cpu())
    if not chunks:
        raise A2Error("no images to predict")
    return torch.cat(chunks)


def predict(model, inputs: torch.Tensor, *, batch_size: int = 125, device=None,
            progress=None) -> torch.Tensor:
    """0-based int64 class of each input (argmax of the model's scores)."""
    return predict_scores(model, inputs, batch_size=batch_size, device=device,
                          progress=progress).argmax(1)


# Refresh the progress text (loss, accuracy) every this many batches (each refresh syncs the device).
BAR_REFRESH = 10


def _batch_text(k, n_batches, loss_sum, conf, images, tic):
    """Loss, accuracy and img/s so far, every BAR_REFRESH batches and at the last (else None).
    ``images``: this rank's count times the world size (the exact sum is taken at the epoch's end)."""
    if k % BAR_REFRESH and k != n_batches - 1:
        return None
    elapsed = max(time.perf_counter() - tic, 1e-9)
    acc = conf.total_valid * 100
    return f"loss {float(loss_sum) / (k + 1):.3f} acc {acc:.1f}% {images / elapsed:.0f} img/s"
