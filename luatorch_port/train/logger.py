"""Port of optim.Logger (torch/optim Logger.lua): a tab-separated log, one row per ``add``.

File format, as Lua writes it: a header of ``name + "\\t"`` per column then ``"\\n"``; each
row ``string.format('%11.4e', value) + "\\t"`` per number (strings as they are), then ``"\\n"``.

Deviations: the whole file is rewritten atomically on every ``add`` (Lua appends and
flushes), so an interrupted run never leaves a half row and a resumed run restores exactly
the rows of its checkpoint. No gnuplot/eps plot.
"""

from __future__ import annotations

import os

from ..util.errors import A2Error
from ..util.files import atomic_output

# optim.Logger:add's number format (Logger.lua: string.format('%11.4e', val)).
NUMBER_FORMAT = "%11.4e"

# The starter's train.lua: valLogger:setNames{...}.
STARTER_NAMES = ("% mean class accuracy (train set)", "% mean class accuracy (val set)")


def format_value(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise A2Error(f"Logger: can only log numbers and strings, got {type(value).__name__}")
    return NUMBER_FORMAT % value


class Logger:
    """``Logger(path, names)``; ``add([v1, v2, ...])`` appends a row and rewrites ``path``.

    Parameters
    ----------
    path : str or PathLike
    names : sequence of str
        Column names (Lua ``setNames``).
    rows : list of lists, optional
        Rows already logged (restored from a checkpoint).
    """

    def __init__(self, path, names, rows=None):
        self.path = os.fspath(path)
        self.names = list(names)
        self.rows = [list(r) for r in (rows or [])]
        self._write()

    def add(self, values) -> None:
        values = list(values)
        if len(values) != len(self.names):
            raise A2Error(f"Logger {self.path}: {len(values)} values for {len(self.names)} columns")
        for v in values:
            format_value(v)
        self.rows.append(values)
        self._write()

    def text(self) -> str:
        out = ["".join(n + "\t" for n in self.names) + "\n"]
        for row in self.rows:
            out.append("".join(format_value(v) + "\t" for v in row) + "\n")
        return "".join(out)

    def _write(self) -> None:
        with atomic_output(self.path, "w") as f:
            f.write(self.text())


def read_log(path):
    """Read an optim.Logger file back: ``(names, rows)`` with numbers as floats."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except UnicodeDecodeError as err:
        raise A2Error(f"{path}: offset {err.start}: expected a UTF-8 optim.Logger text file, "
                      f"got byte {err.object[err.start]:#04x} (a binary file?)") from None
    if not lines or not lines[0]:
        raise A2Error(f"{path}: empty log, expected a header line of tab-separated names")
    names = [n for n in lines[0].split("\t") if n != ""]
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        cells = line.rstrip("\t").split("\t")
        if len(cells) != len(names):
            raise A2Error(f"{path}:{lineno}: {len(cells)} values, expected {len(names)}")
        row = []
        for c in cells:
            try:
                row.append(float(c))
            except ValueError:
                row.append(c)
        rows.append(row)
    return names, rows
