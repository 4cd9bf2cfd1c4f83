"""How many intra-op threads a training process may use without fighting its own loader workers.

PyTorch's default is one thread per core in every process; with loader workers decoding and
augmenting on the same cores, its OpenMP threads spin at each barrier waiting for a core, and a
2-core machine ran 10x slower (docs: performance, threads). The budget is this process's share of the cores
it may run on (affinity, divided among the ranks on this node) minus one per loader worker.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from wtpipe.process import available_cores


def thread_budget(
    requested: int, num_workers: int, local_world_size: int = 1, cores: int | None = None
) -> int:
    """``requested`` if > 0, else ``OMP_NUM_THREADS`` if set, else cores / ranks - workers (at least 1)."""
    if requested > 0:
        return requested
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"])
    share = (cores or available_cores()) // max(local_world_size, 1)
    return max(1, share - num_workers)


def start_process(
    mixed_precision: str, threads: int, num_workers: int, timeout_minutes: float = 10.0
) -> tuple[Any, int]:
    """What every loop does first: end with torchrun's launcher, set up Accelerate (CPU without
    CUDA; a collective waiting ``timeout_minutes`` on a dead rank fails the job), and take this
    process's thread budget. Returns (the accelerator, the intra-op threads set)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    from wtpipe.engine.stopping import die_with_launcher

    die_with_launcher()
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=mixed_precision,
        kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(minutes=timeout_minutes))],
    )
    budget = thread_budget(threads, num_workers, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    torch.set_num_threads(budget)
    return accelerator, budget
