"""Stop requests (SIGTERM from SLURM before a kill, SIGUSR1 before the time limit) that every rank
agrees on at a step boundary, so all of them save the same step and stop together."""

from __future__ import annotations

import signal
from types import FrameType

import torch
import torch.distributed as dist


class StopRequest:
    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGUSR1)) -> None:
        self.requested = False
        self.signal_name = ""
        for sig in signals:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def agreed(self, device: torch.device) -> bool:
        """True on every rank if any rank was asked to stop (a collective: all ranks must call it)."""
        flag = torch.tensor([1.0 if self.requested else 0.0], device=device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())
