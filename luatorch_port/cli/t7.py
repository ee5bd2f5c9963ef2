"""`a2 t7 ...`: look inside t7 files and convert models."""

from __future__ import annotations

import click

from .. import t7 as t7io
from ..t7.show import DEPTH, describe


@click.group("t7")
def group():
    """Lua Torch7 t7 files: show their contents, convert models."""


@group.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--depth", type=click.IntRange(min=0), default=DEPTH,
              help="How many levels of tables and objects to open (0: the root's type only).")
@click.option("--long-size", type=click.Choice(["auto", "4", "8"]), default="auto",
              help="Bytes per serialized long (4 for files written on Windows).")
def show(file, depth, long_size):
    """Print a readable tree of FILE (class names, dtypes, shapes, a few values).

    Binary and ascii t7 files; objects met twice are marked "(same object as PATH)" and
    tensors on one storage "(shares storage with PATH)". Lua functions are listed, never run.
    """
    obj = t7io.load(file, long_size=None if long_size == "auto" else int(long_size))
    click.echo(describe(obj, depth=depth))


@group.command("convert")
@click.argument("src", metavar="IN", type=click.Path(exists=True, dir_okay=False))
@click.argument("dst", metavar="OUT", type=click.Path(dir_okay=False))
@click.option("--spec", default=None,
              help="Model name/spec to record in a .pt (e.g. 64c5-128c5-256c5-512f); default: "
                   "the one IN records, if any.")
def convert(src, dst, spec):
    """Convert a model between Lua Torch (.t7/.net) and PyTorch (.pt), either way.

    A .pt holds a state dict plus the module structure and loads with
    torch.load(OUT, weights_only=True); a .t7 is an nn.Sequential Lua's torch.load runs.
    Writes the run's record beside OUT (<stem>.run.json).
    """
    from ..nn.io import convert_model
    from ..util.provenance import write_record
    from .common import ensure_parent, record_path

    ensure_parent(dst)
    model = convert_model(src, dst, spec=spec)
    nparams = sum(p.numel() for p in model.parameters())
    write_record(record_path(dst, folder=False), "t7 convert", {"in": src, "out": dst, "spec": spec},
                 results={"class": model.lua_class, "parameters": nparams})
    click.echo(f"{src} -> {dst}: {model.lua_class}, {nparams} parameters")
