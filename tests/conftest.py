"""Shared fixtures: where the Torch7 oracle files are (tests skip cleanly without them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ORACLE = Path(os.environ.get("LUATORCH_ORACLE",
                             Path(__file__).resolve().parents[1].parent / "shared" / "t7-oracle"))

# Tests use tiny tensors: one intra-op thread avoids oversubscription on a 2-core box
# (small elementwise ops ran ~100x slower with 2 threads on a busy machine). The torchrun
# test starts its own processes; benchmarks set their own thread counts.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    """Every test starts with one thread, whatever the test before it set."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def oracle_path(*parts) -> Path:
    """Path under ../shared/t7-oracle/, or skip the calling test when it is absent."""
    path = ORACLE.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"Torch7 oracle file not present: {path}")
    return path


@pytest.fixture
def oracle():
    """``oracle("made", "dag_backprop.t7")`` -> Path, skipping when the oracle pack is absent."""
    return oracle_path
