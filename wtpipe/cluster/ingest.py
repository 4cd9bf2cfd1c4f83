"""Ingestion as cluster jobs: plan once here, a job array decodes the units, one job assembles.

The plan (``.work/plan.json``) is made at submission, so the array is sized to the units still
to decode and a resubmission after failures runs only those. Array tasks write staged units
into the shared output directory (each atomically); the assembly job starts when the whole
array has ended (``afterany``: it reports units that failed rather than never running), and
cuts shards exactly as a local ``wtpipe shards build`` does, so the result is byte-identical.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from wtpipe.cluster.submit import Resources, executor
from wtpipe.cluster.task import Command
from wtpipe.shards.build import PlanReport, ShardBuilder
from wtpipe.shards.settings import BuildSettings


@dataclass
class IngestJobs:
    """What one submission did: nothing (already built, or nothing readable), an array and an
    assembly, or only the assembly (every unit staged already)."""

    plan: PlanReport
    array: list[Any] = field(default_factory=list)  # submitit jobs, one per array task
    assemble: Any = None


def array_id(job: Any) -> str:
    """The array's job id from one of its tasks' ("123_4" -> "123")."""
    return str(job.job_id).split("_")[0]


def unit_groups(names: list[str], tasks: int) -> list[list[str]]:
    """Deal units round-robin into at most ``tasks`` groups: the plan lists each video's units in
    order, so dealing spreads every long video over all tasks."""
    count = max(1, min(tasks, len(names)))
    return [names[i::count] for i in range(count)]


def task_resources(resources: Resources, part: str) -> Resources:
    """Every ingestion job is one CPU task on one node (its worker processes use the task's cores)."""
    return dataclasses.replace(
        resources,
        nodes=1,
        gpus_per_node=0,
        tasks_per_node=1,
        job_name=f"{resources.job_name}-{part}",
    )


def submit_ingest(
    inputs: list[str],
    out: str,
    settings: BuildSettings,
    array_size: int,
    resources: Resources,
    logs: str,
    local: bool = False,
    overwrite: bool = False,
) -> IngestJobs:
    """Plan the build of ``inputs`` into ``out`` and submit what is left of it."""
    workers = resources.cpus_per_task
    builder = ShardBuilder(
        inputs, out, settings, workers=min(workers, len(inputs)), overwrite=overwrite
    )
    plan = builder.plan(split=array_size * workers)
    jobs = IngestJobs(plan=plan)
    if plan.finished is not None or not plan.units:
        return jobs
    if plan.todo:
        groups = unit_groups(plan.todo, array_size)
        array = executor(logs, task_resources(resources, "units"), local)
        array.update_parameters(slurm_array_parallelism=len(groups))
        with array.batch():
            jobs.array = [
                array.submit(
                    Command(
                        "shards",
                        ["stage", builder.out, "--workers", str(workers), "--units", *group],
                    )
                )
                for group in groups
            ]
    last = task_resources(resources, "assemble")
    if jobs.array:  # the user's --after held the array back; the assembly waits for the array
        last.after = ""
        if local:  # the local executor knows no dependencies: wait for the array here
            for job in jobs.array:
                job.exception()
        else:
            last.slurm = {**last.slurm, "dependency": f"afterany:{array_id(jobs.array[0])}"}
    jobs.assemble = executor(logs, last, local).submit(
        Command("shards", ["assemble", builder.out, "--workers", str(workers)])
    )
    return jobs
