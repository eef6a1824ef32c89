"""Data parallelism for training: process group from the torchrun environment, gathers, gradient averaging."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn

from paxion.errors import PaxionError


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: rank, world size and local rank (one process = rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and reports progress."""
        return self.rank == 0


def context_from_env() -> DistContext:
    """The context torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK (a single process when unset)."""
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise PaxionError(f"bad torchrun environment (RANK / WORLD_SIZE / LOCAL_RANK): {exc}") from None
    if world_size < 1 or not 0 <= rank < world_size:
        raise PaxionError(f"bad torchrun environment: rank {rank} of world size {world_size}")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)


def start(ctx: DistContext, device: torch.device) -> bool:
    """Join the process group (nccl on CUDA, gloo on CPU); returns whether this call created it."""
    if not ctx.enabled or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ctx.rank, world_size=ctx.world_size)
    return True


def stop() -> None:
    """Leave the process group."""
    dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (nothing to wait for in a single process)."""
    if ctx.enabled:
        dist.barrier()


def gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's tensor concatenated along dim 0 in rank order, keeping gradients to each rank's part."""
    return torch.cat(dist_fn.all_gather(tensor))


def average_gradients(parameters: Iterable[torch.nn.Parameter], world_size: int) -> None:
    """Average the gradients over ranks in one flat all-reduce (a missing gradient counts as zero)."""
    params = [p for p in parameters if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    for p, part in zip(params, flat.split([g.numel() for g in grads])):
        p.grad = part.view_as(p)
