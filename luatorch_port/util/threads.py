"""torch's thread settings for the CPU paths (no Lua counterpart).

* :func:`torch_threads`: run a block with a given intra-op thread count, restoring the
  previous one (the surrogate build, the exact t-SNE).
* :func:`single_threaded_openmp`: the worker threads of k-means and the encoder each run
  one single-threaded BLAS GEMM (numpy releases the GIL) and a few torch ops per block;
  torch's ops in a worker thread would otherwise start an OpenMP team of their own,
  putting four busy-waiting threads on two cores.
"""

from __future__ import annotations

import contextlib
import functools

import torch
from threadpoolctl import ThreadpoolController


@contextlib.contextmanager
def torch_threads(n: int | None):
    """``with torch_threads(n):`` runs the block with ``torch.set_num_threads(n)`` and restores
    the previous count afterwards, also on an error; ``n`` None or 0 leaves it as it is."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
