"""Options and helpers every `a2` command shares: the naming convention (hidden aliases,
input splits, ``--out``), seed, device, progress, errors, and where the JSON record goes.

The convention (README's "CLI convention"): kebab-case options; input splits are
``--train/--val/--test/--extra`` with defaults ``data/<split>.t7b`` (or one positional FILE
where a command takes exactly one file); ``--out`` is a FILE for commands that write one
artefact and a folder for commands that write a run folder; a command's JSON record goes to
:func:`record_path` of its output. Older spellings (train.lua's ``--batchSize``, ``-r``, ...)
stay accepted as hidden aliases.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys

import click
import numpy as np
import torch

from ..util.progress import Meter


DATA_DIR = "data"  # the card's folder of train/val/test/extra.t7b
SPLITS = ("train", "val", "test", "extra")
RUN_RECORD = "run.json"        # the record inside a run folder
RECORD_SUFFIX = ".run.json"    # the record beside a file output: <stem>.run.json


class AliasedOption(click.Option):
    """A click option that also accepts older spellings (``aliases``) without showing them in
    ``--help``."""

    def __init__(self, *args, aliases=(), **kwargs):
        self.aliases = tuple(aliases)
        super().__init__(*args, **kwargs)

    def get_help_spec(self, ctx):
        opts, secondary = self.opts, self.secondary_opts
        self.opts = [o for o in opts if o not in self.aliases] or opts
        self.secondary_opts = [o for o in secondary if o not in self.aliases]
        try:
            return super().get_help_spec(ctx)
        finally:
            self.opts, self.secondary_opts = opts, secondary


def option(*names, aliases=(), **kwargs):
    """``click.option(*names, **kwargs)`` that also accepts each of ``aliases`` (e.g.
    ``["-b", "--batchSize"]``) as a hidden spelling: parsed as the option, absent from
    ``--help``. ``names`` are the visible spellings, then optionally the parameter name."""
    return click.option(*names, *aliases, cls=AliasedOption, aliases=aliases, **kwargs)


class LegacyArgument(click.Argument):
    """An optional positional argument kept for older command lines, absent from the usage
    line (e.g. ``a2 predict MODEL TEST`` where ``--test`` is the spelling now)."""

    def get_usage_pieces(self, ctx):
        return []


def default_split(split: str) -> str:
    """``data/<split>.t7b``, the default of ``--<split>``."""
    return os.path.join(DATA_DIR, f"{split}.t7b")


def split_option(split: str, help: str, *, dest=None, default=..., exists=False, aliases=()):
    """``--train``, ``--val``, ``--test`` or ``--extra``: a course split, default
    ``data/<split>.t7b`` (pass ``default=None`` for an optional split)."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} should be one of {SPLITS}")
    return option(f"--{split}", dest or f"{split}_path", aliases=aliases,
                  type=click.Path(exists=exists, dir_okay=False),
                  default=default_split(split) if default is ... else default, help=help)


def out_file_option(default, what: str, *, dest="out", aliases=(), required=False):
    """``--out FILE`` of a command that writes one artefact; its record goes beside it."""
    return option("--out", dest, aliases=aliases, type=click.Path(dir_okay=False),
                  default=default, required=required,
                  help=f"File to write: {what}; the record is <stem>{RECORD_SUFFIX} beside it.")


def out_dir_option(default, what: str, *, dest="out_dir", aliases=()):
    """``--out DIR`` of a command that writes a run folder; its record is ``DIR/run.json``."""
    return option("--out", dest, aliases=aliases, type=click.Path(file_okay=False),
                  default=default, help=f"Folder to write ({what}); the record is OUT/{RUN_RECORD}.")


def record_path(out, *, folder=None) -> str:
    """Where a command's JSON record goes: ``DIR/run.json`` in a folder output,
    ``<stem>.run.json`` beside a file output (``tsne.png`` -> ``tsne.run.json``).

    ``folder`` says which ``out`` is; None decides by whether ``out`` is an existing folder.
    """
    out = os.fspath(out)
    if folder is None:
        folder = os.path.isdir(out)
    if folder:
        return os.path.join(out, RUN_RECORD)
    return os.path.splitext(out)[0] + RECORD_SUFFIX


class CValue(click.ParamType):
    """``auto`` or a positive float."""

    name = "auto|FLOAT"

    def convert(self, value, param, ctx):
        if isinstance(value, float) or value == "auto":
            return value
        try:
            c = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither 'auto' nor a number", param, ctx)
        if not c > 0:
            self.fail(f"C={c:g} should be > 0", param, ctx)
        return c


def val_for_C(val, no_val: bool, C) -> str | None:
    """The val split a feature SVM's C is chosen on: None with ``--no-val`` (saying so when
    ``--C auto`` then falls back to Coates' fixed C); an A2Error when ``val`` is missing."""
    from ..kmeans.svm import COATES_C
    from ..util.errors import A2Error

    if no_val:
        if C == "auto":
            click.echo(f"--no-val: no split to choose C on, using Coates' fixed C = {COATES_C:g}")
        return None
    if not os.path.isfile(val):
        raise A2Error(f"--val {val}: no such file (give the labelled val split, or --no-val "
                      f"for the fixed C = {COATES_C:g})")
    return val


def seed_option(default=1):
    return click.option("--seed", type=int, default=default, show_default=True,
                        help="Random seed (torch, numpy, random); recorded in the run's JSON.")


def device_option():
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                        show_default=True, help="auto = cuda when available, else cpu.")


def quiet_option():
    return click.option("--quiet", is_flag=True, help="No progress (bars on a terminal, lines elsewhere).")


def sgd_options(tag: str = "", *, learning_rate: float | None = None,
                learning_rate_decay: float | None = None, weight_decay: float | None = None,
                momentum: float | None = None, epoch_step: int | None = None,
                notes: dict | None = None):
    """optim.sgd's settings (``--learning-rate``, ``--learning-rate-decay``, ``--weight-decay``,
    ``--momentum``, ``--epoch-step``) plus ``--channels-last``, shared by every training
    command; train.lua's names (``-r/--learningRate``, ``--learningRateDecay``,
    ``--weightDecay``, ``-m``, ``--epoch_step``) are hidden aliases. A default left None is
    :class:`~luatorch_port.train.TrainConfig`'s. ``tag`` prefixes each help text (e.g.
    ``"[cnn] "``); ``notes`` maps a parameter name to a remark appended to its help (e.g.
    ``{"learning_rate": "paper: 0.01"}``)."""
    from ..train.loop import TrainConfig

    base = TrainConfig()
    notes = notes or {}

    def pick(value, name):
        return getattr(base, name) if value is None else value

    def text(name, help_):
        return tag + help_ + (f" ({notes[name]})" if name in notes else "") + "."

    options = [
        option("--learning-rate", "learning_rate", aliases=["-r", "--learningRate"], type=float,
               default=pick(learning_rate, "learning_rate"),
               help=text("learning_rate", "optim.sgd learningRate")),
        option("--learning-rate-decay", "learning_rate_decay", aliases=["--learningRateDecay"],
               type=float, default=pick(learning_rate_decay, "learning_rate_decay"),
               help=text("learning_rate_decay", "lr / (1 + steps * learningRateDecay)")),
        option("--weight-decay", "weight_decay", aliases=["--weightDecay"], type=float,
               default=pick(weight_decay, "weight_decay"),
               help=text("weight_decay", "L2 weight decay")),
        option("--momentum", "momentum", aliases=["-m"], type=float,
               default=pick(momentum, "momentum"), help=text("momentum", "Momentum")),
        option("--epoch-step", "epoch_step", aliases=["--epoch_step"], type=int,
               default=pick(epoch_step, "epoch_step"),
               help=text("epoch_step", "Halve the learning rate at every multiple of this epoch")),
        click.option("--channels-last/--no-channels-last", default=base.channels_last,
                     help=text("channels_last", "NHWC memory format (faster convolutions on CPU)")),
    ]

    def decorate(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return decorate


def training_options(tag: str = "", *, batch_size: int | None = None, max_epoch: int | None = None,
                     batch_help: str = "Global batch size (split across torchrun processes)"):
    """``--epochs`` (alias ``--max_epoch``), ``--batch-size`` (aliases ``-b``, ``--batchSize``)
    and ``--save-every`` of a training command; a default left None is TrainConfig's. Their
    ranges are checked by ``TrainConfig.validate`` (one place, before anything is written)."""
    from ..train.loop import TrainConfig

    base = TrainConfig()
    options = [
        option("--epochs", "max_epoch", aliases=["--max_epoch"], type=int,
               default=base.max_epoch if max_epoch is None else max_epoch,
               help=f"{tag}Number of epochs (train.lua's --max_epoch)."),
        option("--batch-size", "batch_size", aliases=["-b", "--batchSize"], type=int,
               default=base.batch_size if batch_size is None else batch_size,
               help=f"{tag}{batch_help}."),
        option("--save-every", "save_every", type=int, default=base.save_every,
               help=f"{tag}Write model.net every N epochs (and after the last)."),
    ]

    def decorate(f):
        for opt in reversed(options):
            f = opt(f)
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
