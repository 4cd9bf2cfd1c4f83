"""Submit a wtpipe command as a SLURM job (or to submitit's local executor): resources in, job out."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from wtpipe.cluster.task import Command
from wtpipe.config import PathStr


# Each field's help is the comment on its line (wtpipe.config.field_help): not reformatted.
# fmt: off
@dataclass
class Resources:
    """What a job asks SLURM for; one task per GPU (or ``tasks_per_node`` CPU tasks)."""

    nodes: int = 1  # machines
    gpus_per_node: int = 0  # one task per GPU; 0: CPU tasks
    tasks_per_node: int = 1  # used when gpus_per_node is 0; else one task per GPU
    cpus_per_task: int = 2  # cores for each task and its loader workers
    time_minutes: int = 60  # the time limit; the job saves and requeues itself before it
    mem_gb: float = 0.0  # per node; 0: the partition's default
    partition: str = ""  # sbatch --partition
    account: str = ""  # sbatch --account
    qos: str = ""  # sbatch --qos
    constraint: str = ""  # sbatch --constraint (node features)
    signal_lead_s: int = 90  # SIGUSR2 this long before the time limit: save and requeue
    job_name: str = "wtpipe"  # the name squeue shows
    after: str = ""  # a job id this one waits for (afterok)
    slurm: dict[str, str] = field(default_factory=dict)  # any other sbatch option, e.g. {"exclude": "n3"}
# fmt: on

    @property
    def tasks(self) -> int:
        return self.gpus_per_node or self.tasks_per_node

    def parameters(self) -> dict[str, Any]:
        """submitit AutoExecutor parameters (its ``slurm_`` prefix for SLURM-only ones)."""
        extra = dict(self.slurm)
        if self.after:
            extra["dependency"] = f"afterok:{self.after}"
        params: dict[str, Any] = {
            "nodes": self.nodes,
            "tasks_per_node": self.tasks,
            "cpus_per_task": self.cpus_per_task,
            "timeout_min": self.time_minutes,
            "name": self.job_name,
            "slurm_signal_delay_s": self.signal_lead_s,
            "slurm_additional_parameters": extra,
        }
        if self.gpus_per_node:
            params["gpus_per_node"] = self.gpus_per_node
        if self.mem_gb:
            params["mem_gb"] = self.mem_gb
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(self, key):
                params[f"slurm_{key}"] = getattr(self, key)
        return params


# fmt: off
@dataclass
class JobFile:
    """A job recipe (``jobs/*.yaml``): what to run and what to ask for; a person edits it."""

    command: Literal["train", "ingest", "eval", "export", "shards"] = "train"  # the wtpipe subcommand the job runs
    args: list[str] = field(default_factory=list)  # the command's own arguments, e.g. ["--config", "x.yaml"]
    resources: Resources = field(default_factory=Resources)  # what the job asks SLURM for (below)
    logs: PathStr = ""  # folder for the job's logs and submitit files; "": the job's output folder/slurm
# fmt: on


def executor(folder: str, resources: Resources, local: bool = False) -> Any:
    import submitit

    ex = submitit.AutoExecutor(
        folder=os.path.join(folder, "%j"), cluster="local" if local else "slurm"
    )
    ex.update_parameters(**(local_parameters(resources) if local else resources.parameters()))
    return ex


def sbatch_script(folder: str, resources: Resources, array: int = 0) -> str:
    """The sbatch file SLURM would get (for ``--dry-run``), for an ``array`` of that many tasks if
    given; nothing is submitted, and no SLURM command needs to exist on this machine."""
    from submitit.slurm.slurm import SlurmExecutor

    class Preview(SlurmExecutor):
        """submitit's SLURM executor, minus its check for ``srun``: it only writes the file."""

        @classmethod
        def affinity(cls) -> int:
            return 1

    ex = Preview(folder=os.path.join(folder, "%j"))
    params = resources.parameters()
    generic = {k: v for k, v in params.items() if not k.startswith("slurm_")}
    ex.update_parameters(
        **ex._convert_parameters(generic),
        **{k.removeprefix("slurm_"): v for k, v in params.items() if k.startswith("slurm_")},
    )
    if array:
        ex.parameters["map_count"] = array
    return ex._make_submission_file_text("python -u -m submitit.core._submit ...", "DRY-RUN")


def local_parameters(resources: Resources) -> dict[str, Any]:
    """What submitit's local executor is given (``--local --dry-run``): the SLURM-only keys dropped."""
    return {k: v for k, v in resources.parameters().items() if not k.startswith("slurm_")}


def submit(
    command: str, argv: list[str], folder: str, resources: Resources, local: bool = False
) -> Any:
    """Submit ``wtpipe COMMAND ARGV`` and return the submitit job."""
    return executor(folder, resources, local).submit(Command(command, list(argv)))
