"""Kaggle submission CSV for the course's in-class competition: ``Id,Prediction``.

Reading and writing only; scoring a submission is :func:`luatorch_port.train.confusion.score`.

Id runs 1..N in test.t7b order, Prediction is the 1-based class 1..10 (STL-10 order).
Labels are 0-based inside Python; the shift happens here and nowhere else.
"""

from __future__ import annotations

import os
import torch

from ..util.errors import A2Error
from ..util.files import atomic_output

HEADER = ("Id", "Prediction")
N_CLASSES = 10


def write_predictions(path, labels0, n_classes: int = N_CLASSES) -> None:
    """Write ``path``: header ``Id,Prediction``, then ``k,label+1`` for k = 1..N.

    ``labels0`` : int sequence or tensor of 0-based classes in test-file order.
    """
    labels = torch.as_tensor(labels0).reshape(-1).tolist()
    for i, lab in enumerate(labels):
        if not 0 <= int(lab) < n_classes:
            raise A2Error(f"prediction {i} is class {lab}, expected 0..{n_classes - 1} (0-based)")
    with atomic_output(path, "w") as f:
        f.write(",".join(HEADER) + "\n")
        f.writelines(f"{k},{int(lab) + 1}\n" for k, lab in enumerate(labels, start=1))


def read_predictions(path, n_expected: int | None = None,
                     n_classes: int = N_CLASSES) -> torch.Tensor:
    """Read a submission; return int64 0-based labels ordered by Id (Id 1 first).

    Rows may come in any order, but every Id in 1..N must appear exactly once, where N is
    ``n_expected`` (the test file's size) or else the number of rows. Raises ``A2Error``
    naming the line for a wrong header, a malformed row, a duplicate or out-of-range Id or
    a Prediction outside 1..n_classes; a missing Id is named with the count missing.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8-sig", newline="") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as err:
        raise A2Error(f"{name}: offset {err.start}: expected a UTF-8 CSV 'Id,Prediction', got "
                      f"byte {err.object[err.start]:#04x} (a binary file?)") from None
    if not lines or [c.strip() for c in lines[0].split(",")] != list(HEADER):
        got = lines[0] if lines else "an empty file"
        raise A2Error(f"{name}:1: header must be 'Id,Prediction', got {got!r}")
    rows = [(no, line) for no, line in enumerate(lines[1:], start=2) if line.strip()]
    n = n_expected if n_expected is not None else len(rows)
    labels = [None] * n
    for no, line in rows:
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 2:
            raise A2Error(f"{name}:{no}: expected 2 fields 'Id,Prediction', got {line!r}")
        try:
            ident, pred = int(cells[0]), int(cells[1])
        except ValueError:
            raise A2Error(f"{name}:{no}: Id and Prediction must be integers, got {line!r}") from None
        if not 1 <= ident <= n:
            raise A2Error(f"{name}:{no}: Id {ident} outside 1..{n}")
        if labels[ident - 1] is not None:
            raise A2Error(f"{name}:{no}: Id {ident} appears twice")
        if not 1 <= pred <= n_classes:
            raise A2Error(f"{name}:{no}: Prediction {pred} outside 1..{n_classes}")
        labels[ident - 1] = pred - 1
    missing = [i + 1 for i, lab in enumerate(labels) if lab is None]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise A2Error(f"{name}: {len(missing)} of Ids 1..{n} missing ({shown})")
    return torch.tensor(labels, dtype=torch.int64)
