"""The process group as the ops see it: alone (no group, or a group of one) every collective is a
no-op, so the same code runs in one process and under DDP."""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(this process's rank, the number of ranks); (0, 1) without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's ``tensor`` (same shape on each), stacked in rank order: (ranks, ...)."""
    ranks = world()[1]
    if ranks == 1:
        return tensor[None]
    parts = [torch.empty_like(tensor) for _ in range(ranks)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.stack(parts)
