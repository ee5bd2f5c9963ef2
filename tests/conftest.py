"""Shared fixtures: the Torch7 oracle files (``oracle``), one intra-op thread per test; the
per-section markers and summary (sections.py).

The oracle's generated files are vendored in tests/fixtures/torch7/; the fetched ones are read
from ../shared/t7-oracle/ (``LUATORCH_ORACLE`` overrides that folder) and their tests skip
cleanly without it (see helpers.py).
"""

from __future__ import annotations

import shutil

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


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """Factory: ``sample_data(image_size=32, per_class=18, seed=1)`` -> a folder of the digits
    sample in the course layout (train/val/test/extra.t7b, extra_labels.t7).

    Each set of parameters is built once per session; every call returns a fresh copy in its
    own folder, so a module may write beside the files without touching another's.
    ``per_class=18`` gives 40/10/40/90 images; ``None`` uses every digit (~180 per class).
    """
    from luatorch_port.data import build_sample

    built = {}

    def make(image_size: int = 32, per_class=18, seed: int = 1):
        key = (image_size, per_class, seed)
        if key not in built:
            built[key] = tmp_path_factory.mktemp(f"sample{image_size}_{per_class}_{seed}_built")
            build_sample(built[key], seed, image_size=image_size, per_class=per_class)
        out = tmp_path_factory.mktemp(f"sample{image_size}")
        for path in built[key].iterdir():
            shutil.copyfile(path, out / path.name)
        return out

    return make
