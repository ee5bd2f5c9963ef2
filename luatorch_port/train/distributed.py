"""Data-parallel training under ``torchrun``: process group, DDP wrapping, per-rank batches.

The same command runs alone or as ``torchrun --nproc_per_node N ...``. Under torchrun
(``WORLD_SIZE`` > 1 in the environment) each process joins a process group (gloo on CPU,
nccl on CUDA), the model is wrapped in ``DistributedDataParallel``, and every global batch
of ``batch_size`` images is split across the ranks exactly as ``DistributedSampler`` splits
an epoch (rank ``r`` takes positions ``r, r + N, r + 2N, ...``), so the union of the ranks'
batches is the batch a single process would take and DDP's gradient average equals the
single-process gradient. Rank 0 alone writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..util.errors import A2Error


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: ``rank`` of ``world_size`` (1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


SINGLE = DistContext()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: torch.device):
    """Join the torchrun process group if there is one.

    Returns ``(DistContext, device)``: on CUDA the device becomes ``cuda:LOCAL_RANK``.
    Without torchrun's environment, returns ``(SINGLE, device)`` and does nothing.
    """
    if not launched_by_torchrun():
        return SINGLE, device
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank=rank, world_size=world, local_rank=local), device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, ctx: DistContext, device: torch.device):
    """``DistributedDataParallel(model)`` when distributed, else ``model`` unchanged."""
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def local_batch_size(batch_size: int, ctx: DistContext) -> int:
    if batch_size % ctx.world_size:
        raise A2Error(f"batch size {batch_size} is not divisible by the {ctx.world_size} "
                      f"processes torchrun started; the global batch is split evenly")
    return batch_size // ctx.world_size


def shard(global_rows: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's part of a global batch (positions ``rank::world_size``)."""
    return global_rows[ctx.rank::ctx.world_size] if ctx.enabled else global_rows


def all_reduce_sum_(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``tensor`` over the ranks in place (a no-op when not distributed)."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)
