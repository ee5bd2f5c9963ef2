"""Shared fixtures: the Torch7 oracle files (``oracle``), one intra-op thread per test; the
per-section markers and summary (sections.py).

The oracle's generated files are vendored in tests/fixtures/torch7/; the fetched ones are read
from ../shared/t7-oracle/ (``LUATORCH_ORACLE`` overrides that folder) and their tests skip
cleanly without it (see helpers.py).
"""

from __future__ import annotations

import pytest
import torch

from helpers import SHARED_ORACLE, oracle_file

pytest_plugins = ("sections",)  # a marker per report section, and the per-section summary

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


def oracle_path(*parts):
    """Path of an oracle file (vendored or shared), or skip the calling test when it is absent."""
    path = oracle_file(*parts)
    if path is None:
        pytest.skip(f"Torch7 oracle file not present: {SHARED_ORACLE.joinpath(*parts)}")
    return path


@pytest.fixture
def oracle():
    """``oracle("made", "dag_backprop.t7")`` -> Path, skipping when the file is absent."""
    return oracle_path
