"""A small JSON record beside every command's outputs: config, seed, device, version, argv."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys

import torch

from .. import __version__
from .files import atomic_output


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, torch.device):
        return str(value)
    return repr(value)


def write_record(path, command: str, config: dict, *, seed=None, device=None, results=None):
    """Write ``path`` (a ``.json`` file) describing one run; returns the record dict.

    Parameters
    ----------
    path : str or PathLike
        Where the record goes, usually ``<output>.json`` or ``<run_dir>/run.json``.
    command : str
        The command name (``"kmeans fit"``).
    config : dict
        The settings the library function ran with.
    seed, device : optional
        Recorded as given.
    results : dict, optional
        Measured numbers (accuracy, time) to keep beside the settings.
    """
    record = {
        "command": command,
        "config": _jsonable(config),
        "seed": seed,
        "device": None if device is None else str(device),
        "results": _jsonable(results or {}),
        "version": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "argv": list(sys.argv),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_output(path, "w") as f:
        json.dump(record, f, indent=2, sort_keys=False)
        f.write("\n")
    return record
