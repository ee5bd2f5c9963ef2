"""Options and helpers every `a2` command shares: seed, device, progress, errors."""

from __future__ import annotations

import contextlib
import os
import random
import sys

import click
import numpy as np
import torch

from ..util.progress import Meter


def seed_option(default=1):
    return click.option("--seed", type=int, default=default, show_default=True,
                        help="Random seed (torch, numpy, random); recorded in the run's JSON.")


def device_option():
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                        show_default=True, help="auto = cuda when available, else cpu.")


def quiet_option():
    return click.option("--quiet", is_flag=True, help="No progress (bars on a terminal, lines elsewhere).")


def sgd_options(tag: str = "", *, learning_rate: float, learning_rate_decay: float, weight_decay: float,
                momentum: float = 0.9, epoch_step: int, notes: dict | None = None):
    """optim.sgd's settings under train.lua's names (``-r/--learningRate``, ``--learningRateDecay``,
    ``--weightDecay``, ``-m/--momentum``, ``--epoch_step``) plus ``--channels-last``, shared by
    every training command. ``tag`` prefixes each help text (e.g. ``"[cnn] "``); ``notes`` maps a
    parameter name to a remark appended to its help (e.g. ``{"learning_rate": "paper: 0.01"}``)."""
    notes = notes or {}

    def text(name, help_):
        return tag + help_ + (f" ({notes[name]})" if name in notes else "") + "."

    options = [
        click.option("-r", "--learningRate", "learning_rate", type=float, default=learning_rate,
                     help=text("learning_rate", "optim.sgd learningRate")),
        click.option("--learningRateDecay", "learning_rate_decay", type=float, default=learning_rate_decay,
                     help=text("learning_rate_decay", "lr / (1 + steps * learningRateDecay)")),
        click.option("--weightDecay", "weight_decay", type=float, default=weight_decay,
                     help=text("weight_decay", "L2 weight decay")),
        click.option("-m", "--momentum", "momentum", type=float, default=momentum, help=text("momentum", "Momentum")),
        click.option("--epoch_step", "epoch_step", type=int, default=epoch_step,
                     help=text("epoch_step", "Halve the learning rate at every multiple of this epoch")),
        click.option("--channels-last/--no-channels-last", default=True,
                     help=text("channels_last", "NHWC memory format (faster convolutions on CPU)")),
    ]

    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def resolve_device(name: str) -> torch.device:
    """``auto|cpu|cuda`` -> a ``torch.device``; asking for cuda without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


def seed_everything(seed: int, quiet: bool = False) -> torch.Generator:
    """Seed torch, numpy and random (the CLI is the only place that seeds globally).

    Returns a CPU ``torch.Generator`` seeded with ``seed`` for library functions.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if not quiet:
        click.echo(f"seed: {seed}", err=True)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def meter(quiet: bool = False) -> Meter:
    """The progress callback a command hands the library: on stderr, a bar on a terminal,
    a line every few seconds or every 10 % elsewhere, nothing with ``quiet``."""
    return Meter(sys.stderr, quiet=quiet)


def ensure_parent(path) -> None:
    """Create the folder that will hold ``path``."""
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(parent, exist_ok=True)


class Interrupted(click.ClickException):
    """Ctrl-C during a resumable run: one line, exit status 130 (128 + SIGINT)."""

    exit_code = 130


def _is_interrupt(err: BaseException) -> bool:
    # torch.save reports a KeyboardInterrupt raised inside its writer as a RuntimeError
    # ("unexpected pos ...") whose context is the KeyboardInterrupt.
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


@contextlib.contextmanager
def resumable():
    """``with resumable():`` around a run that checkpoints: Ctrl-C anywhere in it (inside
    ``torch.save`` too) ends with "interrupted; resume with --resume" and status 130, no
    traceback. Outputs are atomic, so the files of the last finished epoch survive."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted("interrupted; resume with --resume") from None
    except RuntimeError as err:
        if _is_interrupt(err):
            raise Interrupted("interrupted; resume with --resume") from None
        raise
