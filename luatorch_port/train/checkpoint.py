"""Checkpoint and resume: model, optimizer state, epoch, every RNG the loop draws from.

A checkpoint is one ``.pt`` file (``torch.save`` of plain tensors, numbers and lists, so it
loads with ``weights_only=True``). Restoring it and running the remaining epochs gives, on
CPU, weights bitwise equal to an uninterrupted run with the same seed: the loop's own
``torch.Generator`` (batch order seed, flips), torch's global CPU RNG (dropout) and, where
present, the CUDA RNGs are all saved and put back.
"""

from __future__ import annotations

import os

import torch

from ..util.errors import A2Error
from ..util.files import atomic_output

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1


def save_checkpoint(path, *, model, optimizer, epoch: int, generator: torch.Generator,
                    history: list, extra: dict | None = None) -> None:
    """Write ``path`` atomically. ``epoch`` is the number of completed epochs."""
    state = {
        "format": FORMAT_VERSION,
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "history": history,
        "extra": extra or {},
    }
    with atomic_output(path, "wb") as f:
        torch.save(state, f)


def require_checkpoint(path) -> str:
    """``path`` as a string; A2Error when there is no file to resume from."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise A2Error(f"{path}: no checkpoint to resume from (run without --resume first)")
    return path


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors land on the CPU)."""
    path = require_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise A2Error(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise A2Error(f"{path}: not a checkpoint of format {FORMAT_VERSION}")
    return state


def restore_rng(state: dict, generator: torch.Generator) -> None:
    """Put back the loop generator, torch's CPU RNG and the CUDA RNGs saved in ``state``."""
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    cuda_states = state.get("cuda_rng") or []
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
