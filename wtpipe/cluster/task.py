"""One submitit task for every job kind: run a wtpipe command in the job's distributed environment."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from submitit.helpers import DelayedSubmission

log = logging.getLogger(__name__)

EXIT_REQUEUED = 3


def master_port(job_id: str, restart: str) -> int:
    """A rendezvous port from the job id and its restart count: every rank derives the same one,
    and a requeued job on the same nodes does not meet its previous run's sockets."""
    digest = hashlib.sha256(f"{job_id}-{restart}".encode()).digest()
    return 20000 + int.from_bytes(digest[:4], "little") % 40000


def command_line() -> Callable[[list[str]], int]:
    """The ``wtpipe`` command's entry point, found by its installed name (no import of the CLI here)."""
    (entry,) = entry_points(group="console_scripts", name="wtpipe")
    return entry.load()


@dataclass
class Command:
    """``wtpipe COMMAND ARGV...`` as a submitit callable (pickled with the job; no state of its own)."""

    command: str
    argv: list[str] = field(default_factory=list)

    def __call__(self) -> int:
        import submitit

        env = submitit.JobEnvironment()
        distributed = submitit.helpers.TorchDistributedEnvironment().export(
            set_cuda_visible_devices=False
        )
        os.environ["MASTER_PORT"] = str(
            master_port(env.job_id, os.environ.get("SLURM_RESTART_COUNT", "0"))
        )
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        log.info(
            "job %s, rank %d of %d on %s, restart %s: wtpipe %s %s",
            env.job_id,
            distributed.rank,
            distributed.world_size,
            env.hostname,
            os.environ.get("SLURM_RESTART_COUNT", "0"),
            self.command,
            " ".join(self.argv),
        )
        from wtpipe.engine.stopping import EXIT_REQUEUE

        code = command_line()([self.command, *self.argv])
        if code == EXIT_REQUEUE:
            if distributed.rank == 0:
                log.info(
                    "saved before the time limit; requeueing job %s (it resumes from the checkpoint)",
                    env.job_id,
                )
                subprocess.run(["scontrol", "requeue", env.job_id], check=False)
            sys.exit(EXIT_REQUEUED)  # no result: the requeued job produces it
        if code:
            raise RuntimeError(
                f"wtpipe {self.command} exited with {code} (job {env.job_id}, rank {distributed.rank})"
            )
        return code

    def checkpoint(self) -> DelayedSubmission:
        """What submitit resubmits if its own handler ever runs: the same command (it resumes)."""
        import submitit

        return submitit.helpers.DelayedSubmission(Command(self.command, list(self.argv)))
