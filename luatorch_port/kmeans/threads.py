"""Worker threads for the CPU paths of k-means and the encoder (no Lua counterpart).

Both paths run one single-threaded BLAS GEMM per worker thread (numpy releases the GIL) and
a few torch ops per block. torch's ops in a worker thread would otherwise start an OpenMP
team of their own, putting four busy-waiting threads on two cores.
"""

from __future__ import annotations

import functools

import torch
from threadpoolctl import ThreadpoolController


def single_threaded_openmp() -> None:
    """Thread-pool initializer: torch's ops in this worker thread run on it alone.

    libgomp keeps the thread count per calling thread, so this leaves the main thread's
    ``torch.get_num_threads()`` as it was. torch initialises each thread's count lazily, on
    its first parallel op, to the process-wide ``torch.set_num_threads`` value when one was
    set; that runs first here so it cannot undo the limit later.
    """
    torch.get_num_threads()
    _openmp_controller().limit(limits=1, user_api="openmp")


@functools.lru_cache(maxsize=1)
def _openmp_controller():
    return ThreadpoolController()
