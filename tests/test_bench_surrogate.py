"""benchmarks/bench_surrogate.py's own pieces: the PIL baseline's output and the RAM check."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

PIL = pytest.importorskip("PIL.Image")
import bench_surrogate as bench  # noqa: E402  (benchmarks/ is on pytest's pythonpath)

from luatorch_port.surrogate import build as B  # noqa: E402
from luatorch_port.surrogate import transforms as T  # noqa: E402


def test_pil_loop_bytes_are_pil_patches_in_the_port_layout():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 3, 40, 40), generator=gen, dtype=torch.uint8)
    k, patch = 3, 8
    boxes = B.seed_windows(images, gen, window=(8, 16))
    params = T.sample_params(2 * k, T.TransformRanges(color=False), gen).view(2, k, -1)
    coeffs = bench.pil_coefficients(boxes.repeat_interleave(k, 0), params.reshape(2 * k, -1),
                                    patch)
    got = bench.pil_patches(bench.pil_loop(images, coeffs, k, patch), 2, k, patch)
    assert got.shape == (2, k, 3, patch, patch)
    rows = coeffs.view(2, k, 6).tolist()
    for i in range(2):
        img = PIL.fromarray(images[i].permute(1, 2, 0).numpy())
        for j in range(k):
            one = np.asarray(img.transform((patch, patch), PIL.Transform.AFFINE, rows[i][j],
                                           resample=PIL.Resampling.BILINEAR))
            assert torch.equal(got[i, j], torch.from_numpy(one.copy()).permute(2, 0, 1))


def test_ram_fits_checks_room_and_existence(tmp_path):
    assert bench.ram_fits(str(tmp_path), 1)
    assert not bench.ram_fits(str(tmp_path), 1 << 62)
    assert not bench.ram_fits(str(tmp_path / "missing"), 1)


def test_grid_sample_limit_runs_the_builds_sampling_path():
    """The limit times the calls the build makes (mirrored sources, border padding)."""
    images = torch.randint(0, 256, (3, 3, 96, 96), generator=torch.Generator().manual_seed(4),
                           dtype=torch.uint8)
    assert bench.grid_sample_limit(images, 2, 3, 1) > 0
