"""A small JSON record beside every command's outputs: config, seed, device, version, git
revision (when run from a checkout), argv."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from .. import __version__
from .files import atomic_output

CHECKOUT = Path(__file__).resolve().parents[2]   # the repository root when run from a checkout


def git_revision(root=CHECKOUT) -> str | None:
    """``git rev-parse HEAD`` of ``root``, with ``-dirty`` when tracked files differ; None
    outside a git checkout (an installed package) or without git."""
    if not (Path(root) / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty.strip() else "") if sha else None


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
        "git": git_revision(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "argv": list(sys.argv),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_output(path, "w") as f:
        json.dump(record, f, indent=2, sort_keys=False)
        f.write("\n")
    return record
