"""Process-group glue for `torchrun --nproc_per_node N flip train ...`.

Design choices:
- torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) is the only launcher
  supported; without it the trainer runs as one process. A process group that the caller already
  initialised (tests spawning their own processes) is used as it is and left open.
- gloo on the CPU, nccl on CUDA devices (one device per local rank).
- The few collective needs of the loop are small helpers here: agreeing on stop flags (a NaN on any
  rank or a SIGTERM anywhere stops every rank at the same step) and collecting every rank's RNG
  state for the checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # whether `shutdown` should destroy the process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """"auto": the local rank's CUDA device when there is one, else the CPU; otherwise as given."""
    if preference == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"run.device {preference!r}: CUDA is not available on this machine")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def setup(preference: str = "auto") -> DistributedContext:
    """Join (or start, under torchrun) the process group and pick this process's device."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        return DistributedContext(rank, world, local_rank, pick_device(preference, local_rank), owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext(device=pick_device(preference))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(rank, world, local_rank, device, owns_group=True)


def shutdown(context: DistributedContext) -> None:
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def any_flag(context: DistributedContext, *flags: bool) -> list[bool]:
    """Each flag OR-ed over all ranks (one small all-reduce)."""
    if not context.enabled:
        return list(flags)
    tensor = torch.tensor([float(f) for f in flags], device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(v) for v in tensor.tolist()]


def gather_objects(context: DistributedContext, obj) -> list:
    """`obj` from every rank, in rank order (every rank gets the list)."""
    if not context.enabled:
        return [obj]
    out = [None] * context.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(context: DistributedContext) -> None:
    if context.enabled:
        dist.barrier()
