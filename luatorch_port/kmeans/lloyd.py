"""Port of Coates' ``run_kmeans.m`` (kmeans_demo, Coates, Lee & Ng 2011): Lloyd's k-means.

Each iteration assigns every patch to the centroid that maximises ``x·c − ½‖c‖²`` (the
nearest one), then moves each centroid to the mean of its patches. The objective
reported per iteration is the inertia ``Σ ‖x − c_assigned‖²`` of the assignment step,
i.e. before that iteration's update (``run_kmeans.m`` prints half of it as ``loss``).

Deviations: Coates initialises with ``randn(k, d) * 0.1`` and sets an empty cluster's
centroid to zero; here an empty cluster is re-seeded from a random patch (a dead zero
centroid wastes a feature), and ``init="patches"`` (the line commented out in
``run_kmeans.m``) starts from ``k`` distinct random patches. The assignment is computed
in blocks of ``batch_size`` patches (Coates: 1000); the block size changes only speed and
the float rounding of the centroid sums, and on CPU the worker threads' partial sums are
folded in a fixed order, so a seed gives the same centroids whatever the thread count.
Neither change can make the objective increase: an empty centroid
plays no part in the objective of the assignment it was empty in. ``precision="bf16"``
scores the assignment in bfloat16 (not in Coates): near ties may be broken the other way,
which moves the path of Lloyd's iterations.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..util.errors import A2Error
from ..util.threads import single_threaded_openmp

INIT_SCALE = 0.1        # run_kmeans.m: centroids = randn(k, d) * 0.1
COATES_BATCH = 1000     # run_kmeans.m: BATCH_SIZE = 1000 (the assignment chunk)
DEFAULT_CHUNK = 512     # rows per GEMM block: a 512 x 1600 score block (3.3 MB) per worker stays in
                        # the L3 for the argmax (speed only)
TASK_ROWS = 8192        # rows per task handed to a worker (one index_add and partial sum each)
PRECISIONS = ("fp32", "bf16")
# The bf16 assignment takes the argmax of bf16 scores x·c − ½‖c‖² (inputs rounded to 8
# significant bits, products summed in fp32 by the GEMM, the output rounded to bf16): a patch
# whose two nearest centroids score within that rounding of each other may go to the second,
# which costs the objective at most that difference, but moves Lloyd's path: the final
# inertia is not fp32's, only close to it (docs/kmeans.md, bench-out/kmeans.json). Scoring
# such near ties again in fp32 keeps fp32's labels but needs the runner-up of every row,
# which costs as much as the gain.


@dataclass
class KMeansResult:
    """Output of :func:`run_kmeans`.

    centroids : float32 (k, d) tensor on the input's device.
    objective : list of float, the inertia of each iteration's assignment step.
    inertia : float, the inertia of the final centroids (one more assignment pass).
    counts : int64 (k,) tensor, patches per centroid in that final assignment.
    reseeded : list of int, empty clusters re-seeded in each iteration.
    seconds : dict, wall seconds of the ``setup`` (the start and the stored copies of the
        patches), the ``iterations`` and the ``final`` assignment pass.
    rescored : list of int, rows of each bf16 assignment (iterations, then the final pass)
        with no positive bf16 score, scored again in fp32; empty in fp32.
    """

    centroids: torch.Tensor
    objective: list = field(default_factory=list)
    inertia: float = float("nan")
    counts: torch.Tensor | None = None
    reseeded: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    rescored: list = field(default_factory=list)


def initial_centroids(patches: torch.Tensor, k: int, init: str = "randn",
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Starting centroids, float32 (k, d) on ``patches.device``.

    ``"randn"``: ``randn(k, d) * 0.1`` as ``run_kmeans.m``; ``"patches"``: k distinct
    random rows of ``patches``.
    """
    n, d = patches.shape
    if init == "randn":
        c = torch.randn(k, d, generator=generator, dtype=torch.float32) * INIT_SCALE
        return c.to(patches.device)
    if init == "patches":
        idx = torch.randperm(n, generator=generator)[:k]
        return patches[idx.to(patches.device)].float().clone()
    raise A2Error(f"k-means init must be 'randn' or 'patches', got {init!r}")


class _Assigner:
    """Nearest-centroid assignment with reused buffers: one GEMM per chunk of rows.

    The patches are stored once with a column of ones appended and each centroid row gets
    ``−½‖c‖²`` appended, so a single GEMM gives ``x·c − ½‖c‖²`` and the nearest centroid
    is its argmax (``‖x − c‖² = ‖x‖² − 2·max``).
    """

    def __init__(self, patches: torch.Tensor, chunk: int, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise A2Error(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        self.bf16 = precision == "bf16" and patches.device.type == "cpu"
        self.rescored = 0           # rows scored again in fp32 by the last bf16 pass
        n, d = patches.shape
        self.n, self.d = n, d
        self.device = patches.device
        self.xa = torch.empty(n, d + 1, dtype=torch.float32, device=self.device)
        self.xa[:, :d] = patches
        self.xa[:, d] = 1.0
        self.x2 = patches.double().pow(2).sum(1) if self.device.type != "cpu" else \
            torch.from_numpy(np.einsum("ij,ij->i", patches.numpy(), patches.numpy(),
                                       dtype=np.float64))
        self.chunk = max(1, min(chunk, n))
        if self.bf16:
            self.xb = self.xa.to(torch.bfloat16)
        self.labels = torch.empty(n, dtype=torch.int64, device=self.device)
        self.best = torch.empty(n, dtype=torch.float32, device=self.device)
        self._buf = None

    def assign(self, centroids: torch.Tensor, sums: torch.Tensor | None = None) -> float:
        """Fill ``self.labels``; return the inertia ``Σ ‖x − c_label‖²`` (float64 sum).

        With ``sums`` (float32 (k, d+1)), also accumulate each cluster's sum of patches and,
        in the last column, its count (the appended column of ones).
        """
        k = centroids.shape[0]
        ca = torch.empty(k, self.d + 1, dtype=torch.float32, device=self.device)
        ca[:, :self.d] = centroids
        ca[:, self.d] = -0.5 * centroids.double().pow(2).sum(1).float()
        cat = ca.t()
        if self.device.type == "cpu":
            return self._assign_cpu(cat.numpy(), sums)
        if self._buf is None or self._buf.shape[1] != k:
            self._buf = torch.empty(self.chunk, k, dtype=torch.float32, device=self.device)
        for lo in range(0, self.n, self.chunk):
            hi = min(lo + self.chunk, self.n)
            buf = self._buf[: hi - lo]
            torch.matmul(self.xa[lo:hi], cat, out=buf)
            torch.max(buf, dim=1, out=(self.best[lo:hi], self.labels[lo:hi]))
        if sums is not None:
            sums.zero_().index_add_(0, self.labels, self.xa)
        return float((self.x2 - 2.0 * self.best.double()).clamp_(min=0).sum())

    def _assign_cpu(self, cat, sums):
        """Like sklearn's lloyd, with worker threads that each run single-threaded GEMM +
        argmax on their own rows; numpy and torch release the GIL, so every pass is parallel
        and no BLAS or OpenMP thread pool spins beside the other work (each worker runs torch's
        index_add_ on one OpenMP thread: two-thread teams per worker cost more CPU per pass).

        Work is split into tasks of ``TASK_ROWS`` rows handed out one at a time (a busy core
        delays one task, not half of the pass); a task computes its scores in blocks of
        ``self.chunk`` rows whose score matrix stays in cache for the argmax, then adds its rows
        into its own partial sums and inertia. The main thread folds the partials in task
        order, so the result does not depend on which worker ran which task.

        In bf16 no per-row fp32 score exists, so the inertia comes from the cluster sums:
        ``Σ‖x‖² − 2·Σ_j [S_j, n_j]·[c_j, −½‖c_j‖²]`` (float64), the same sum regrouped.
        """
        k = cat.shape[1]
        xa, labels, best, x2 = self.xa.numpy(), self.labels.numpy(), self.best.numpy(), self.x2.numpy()
        bf16, chunk = self.bf16, self.chunk
        if bf16:
            cat_b = torch.from_numpy(cat).to(torch.bfloat16)
            if sums is None:
                sums = torch.empty(k, self.d + 1, dtype=torch.float32)
        step = max(chunk, TASK_ROWS)
        tasks = [(lo, min(lo + step, self.n)) for lo in range(0, self.n, step)]
        rescored = [0] * len(tasks)
        workers = max(1, min(torch.get_num_threads(), len(tasks)))
        local = threading.local()
        rows = np.arange(chunk)

        def work(task):
            lo, hi = task
            buf = getattr(local, "buf", None)
            if buf is None:
                if bf16:     # the bf16 scores and their bits as int16, one buffer
                    buf = local.buf = torch.empty(chunk, k, dtype=torch.bfloat16)
                    local.keys = buf.view(torch.int16).numpy()
                else:
                    buf = local.buf = np.empty((chunk, k), np.float32)
            for s in range(lo, hi, chunk):
                e = min(s + chunk, hi)
                if bf16:
                    rescored[lo // step] += self._block_bf16(cat_b, cat, s, e, buf[: e - s],
                                                             local.keys[: e - s], rows[: e - s])
                    continue
                b = buf[: e - s]
                np.matmul(xa[s:e], cat, out=b)
                np.argmax(b, axis=1, out=labels[s:e])
                best[s:e] = b[rows[: e - s], labels[s:e]]
            inertia = 0.0
            if not bf16:
                dist = x2[lo:hi] - 2.0 * best[lo:hi]          # float64
                inertia = float(np.maximum(dist, 0.0, out=dist).sum())
            if sums is None:
                return inertia, None
            part = np.zeros(tuple(sums.shape), np.float32)  # torch.zeros would start OpenMP threads
            torch.from_numpy(part).index_add_(0, self.labels[lo:hi], self.xa[lo:hi])
            return inertia, part

        total = 0.0
        if sums is not None:
            acc = sums.numpy()
            acc.fill(0.0)
        # a pool even for one worker: torch's bf16 GEMM on the calling thread would start an
        # OpenMP team, whose barriers wait for descheduled threads on a busy machine
        with threadpool_limits(1, user_api="blas"), \
                ThreadPoolExecutor(workers, initializer=single_threaded_openmp) as pool:
            for inertia, part in pool.map(work, tasks):     # in task order: a fixed summation order
                total += inertia
                if part is not None:
                    np.add(acc, part, out=acc)
        self.rescored = sum(rescored)
        if bf16:
            best = np.einsum("ij,ji->", acc, cat, dtype=np.float64)    # Σ_rows x·c − ½‖c‖²
            total = max(float(x2.sum()) - 2.0 * float(best), 0.0)
        return total

    def _block_bf16(self, cat_b, cat, s, e, scores, keys, rows) -> int:
        """Labels of rows s..e: the argmax of their bf16 scores, read as int16 keys; a row with
        no positive score is scored again in fp32. Returns the number of such rows.

        A positive bf16 number's bits, read as an int16, order like the number, and every
        negative one reads as a negative int16, so numpy's vectorised int16 argmax finds the
        largest positive score without converting the block (torch's max over bf16 costs as
        much as the GEMM).
        """
        torch.matmul(self.xb[s:e], cat_b, out=scores)
        lab = self.labels.numpy()[s:e]
        np.argmax(keys, axis=1, out=lab)
        redo = np.flatnonzero(keys[rows, lab] <= 0)
        if redo.size:
            lab[redo] = np.argmax(self.xa.numpy()[s + redo] @ cat, axis=1)
        return int(redo.size)


def run_kmeans(patches: torch.Tensor, k: int, iterations: int = 50, *,
               init: str | torch.Tensor = "randn", generator: torch.Generator | None = None,
               batch_size: int = DEFAULT_CHUNK, precision: str = "fp32",
               callback=None) -> KMeansResult:
    """Lloyd's k-means on the rows of ``patches`` (Coates' ``run_kmeans.m``).

    Parameters
    ----------
    patches : float (n, d) tensor, on any device; converted to float32.
    k : int, number of centroids (Coates: 1600).
    iterations : int, number of assignment + update steps (Coates: 50).
    init : ``"randn"`` (Coates), ``"patches"`` or a (k, d) tensor of starting centroids.
    generator : torch.Generator for the initialisation and re-seeding (CPU generator).
    batch_size : rows per distance GEMM (speed only).
    precision : ``"fp32"`` (default) or ``"bf16"``: on CPU, each patch goes to the argmax of
        its bf16 scores (fp32 accumulation); a near tie may go to the second nearest
        centroid (see the note above :class:`KMeansResult`); the objective and inertia are
        those of the labels chosen, from the fp32 cluster sums. Other devices use fp32.
    callback : called as ``callback(iteration, objective)`` after each iteration.

    Returns
    -------
    KMeansResult
    """
    if patches.dim() != 2:
        raise A2Error(f"k-means expects a (n, d) matrix of patches, got shape {tuple(patches.shape)}")
    n, d = patches.shape
    if k < 1 or n < k:
        raise A2Error(f"n_patches={n} should be >= k={k} (and k >= 1)")
    if iterations < 0:
        raise A2Error(f"iterations={iterations} should be >= 0")
    t = time.perf_counter()
    x = patches.float().contiguous()
    if isinstance(init, torch.Tensor):
        if tuple(init.shape) != (k, d):
            raise A2Error(f"initial centroids have shape {tuple(init.shape)}, expected ({k}, {d})")
        centroids = init.to(device=x.device, dtype=torch.float32).clone()
    else:
        centroids = initial_centroids(x, k, init, generator)
    assigner = _Assigner(x, batch_size, precision)
    result = KMeansResult(centroids=centroids)
    sums = torch.empty(k, d + 1, dtype=torch.float32, device=x.device)
    result.seconds["setup"], t = time.perf_counter() - t, time.perf_counter()
    for it in range(iterations):
        objective = assigner.assign(centroids, sums)
        if assigner.bf16:
            result.rescored.append(assigner.rescored)
        counts = sums[:, d]
        empty = (counts == 0).nonzero().flatten()
        centroids = sums[:, :d] / counts.clamp(min=1).unsqueeze(1)
        if empty.numel():
            pick = torch.randint(0, n, (empty.numel(),), generator=generator)
            centroids[empty] = x[pick.to(x.device)]
        result.objective.append(objective)
        result.reseeded.append(int(empty.numel()))
        if callback is not None:
            callback(it, objective)
    result.centroids = centroids
    result.seconds["iterations"] = time.perf_counter() - t
    t = time.perf_counter()
    result.inertia = assigner.assign(centroids)
    if assigner.bf16:
        result.rescored.append(assigner.rescored)
    result.seconds["final"] = time.perf_counter() - t
    result.counts = torch.bincount(assigner.labels, minlength=k)
    return result


def assign(patches: torch.Tensor, centroids: torch.Tensor,
           batch_size: int = DEFAULT_CHUNK) -> tuple[torch.Tensor, float]:
    """Nearest centroid of each row of ``patches``: (int64 (n,) labels, inertia)."""
    a = _Assigner(patches.float().contiguous(), batch_size)
    inertia = a.assign(centroids.float())
    return a.labels, inertia
