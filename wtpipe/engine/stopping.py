"""Stopping a run cleanly, whoever asks and however the signal arrives.

Ctrl-C (SIGINT), ``kill``/a scheduler's preemption (SIGTERM), a user's ``scancel
--signal=USR1`` and SLURM's warning before the time limit (SIGUSR2, as submitit asks for it)
usually reach the whole process group or every task, and under torchrun each rank gets them
again from the launcher. The first one only sets a flag: at the next step boundary every rank agrees
on it (a MAX all-reduce), saves the same step and returns, so nothing is lost and the same
command resumes. A second SIGINT means "now" (KeyboardInterrupt; the last checkpoint stands).
Loader workers ignore these signals (``wtpipe.data.loader``): the main process shuts them down.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

import torch
import torch.distributed as dist

from wtpipe.process import die_with_parent

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
CONTINUE_SIGNALS = (
    "SIGUSR2",
)  # SLURM's warning before the time limit (submitit's): the job goes on
EXIT_REQUEUE = (
    3  # the exit code of a run that saved on such a warning: whoever started it starts it again
)


class StopRequest:
    """Installs the stop handlers until :meth:`restore`; ``requested`` is this rank's own view and
    ``signal_name`` the signal that asked (the loops return it; a run stopped by one of
    :data:`CONTINUE_SIGNALS` exits with :data:`EXIT_REQUEUE`)."""

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        self.requested = False
        self.signal_name = ""
        self._previous = {sig: signal.signal(sig, self._handle) for sig in signals}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not self.requested:
            self.requested = True
            self.signal_name = signal.Signals(signum).name
            again = (
                "; Ctrl-C again stops at once, without saving" if signum == signal.SIGINT else ""
            )
            os.write(
                sys.stderr.fileno(),
                f"\n{self.signal_name}: saving at the end of this step{again}\n".encode(),
            )

    def agreed(self, device: torch.device) -> bool:
        """True on every rank if any rank was asked to stop (a collective: all ranks must call it)."""
        flag = torch.tensor([1.0 if self.requested else 0.0], device=device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        agreed = bool(flag.item())
        if agreed and not self.requested:  # another rank got the signal: stop for its reason
            self.requested, self.signal_name = True, "a signal to another rank"
        return agreed

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def die_with_launcher() -> None:
    """Under torchrun, end this rank when the launcher dies.

    torchrun starts every rank in a session of its own, so ``kill -9`` of the launcher's process
    group would leave the ranks training as orphans that keep writing checkpoints into the run.
    """
    if "TORCHELASTIC_RUN_ID" in os.environ:
        die_with_parent(signal.SIGKILL)
