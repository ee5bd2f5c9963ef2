"""GEMM into a reused buffer: numpy's OpenBLAS on CPU, torch elsewhere.

On the project's AMD CPUs torch's matmul goes through MKL's slower AVX2 path while numpy's
bundled OpenBLAS runs near peak (PERF-NOTES.md); both share memory with the torch tensors,
so nothing is copied.
"""

from __future__ import annotations

import numpy as np
import torch


def matmul_into(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = a @ b`` for float32 2-D tensors on one device; returns ``out``."""
    if a.device.type == "cpu":
        np.matmul(a.numpy(), b.numpy(), out=out.numpy())
    else:
        torch.matmul(a, b, out=out)
    return out
