"""`a2 t7 ...`: look inside t7 files and convert models."""

from __future__ import annotations

import click

from .. import t7 as t7io
from ..t7.show import describe


@click.group("t7")
def group():
    """Lua Torch7 t7 files: show their contents, convert models."""


@group.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--depth", type=int, default=3, help="How many levels of tables to open.")
@click.option("--long-size", type=click.Choice(["auto", "4", "8"]), default="auto",
              help="Bytes per serialized long (4 for files written on Windows).")
def show(file, depth, long_size):
    """Print a readable tree of FILE (class names, dtypes, shapes, a few values)."""
    obj = t7io.load(file, long_size=None if long_size == "auto" else int(long_size))
    click.echo(describe(obj, depth=depth))
