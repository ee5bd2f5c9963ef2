"""Shared fixtures: where the Torch7 oracle files are (tests skip cleanly without them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ORACLE = Path(os.environ.get("LUATORCH_ORACLE",
                             Path(__file__).resolve().parents[1].parent / "shared" / "t7-oracle"))

# Tests are small; two intra-op threads contend with pytest's own work on a 2-core box.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


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
