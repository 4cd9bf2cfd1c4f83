"""``wtpipe submit COMMAND|JOB.yaml [command args...] [resources]``: run a wtpipe command as a SLURM job.

A JOB.yaml (jobs/) names the command, its arguments, the resources and the log folder;
arguments and resource options given here are added to / override the file's.

Resources (any order among the command's own arguments): --nodes N --gpus-per-node G
(one task per GPU) or --cpu --tasks-per-node T, --cpus-per-task C, --time MIN, --mem GB,
--partition P --account A --qos Q --constraint C, --slurm key=value (any sbatch option),
--signal-lead S (SIGUSR2 that long before the time limit: save and requeue), --after JOBID,
--logs DIR (default: the job's own output folder, e.g. RUN/slurm for training). --local runs
with submitit's local executor (no SLURM); --dry-run prints the sbatch script (with --local,
the local executor's parameters) instead of submitting, and needs no SLURM on this machine.

Examples:
  wtpipe submit train --config configs/dino_vits16_wt.yaml data.shards=/data/wt --nodes 2 --gpus-per-node 8
  wtpipe submit ingest /data/videos --out /data/wt --array-size 32 --cpus-per-task 8 [wtpipe shards build options]
  wtpipe submit eval knn --weights runs/x --data /data/imagenette --after 1234 --gpus-per-node 1
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from wtpipe.cli import make_parser
from wtpipe.cluster.submit import (  # torch-free: submitit is imported on submission
    JobFile,
    Resources,
)
from wtpipe.config import ConfigError, load_config
from wtpipe.engine import rundir

COMMANDS = ("train", "ingest", "eval", "export", "shards")


def resource_parser(prog: str) -> argparse.ArgumentParser:
    """Resource options; each defaults to "not given" so a job file's value stands unless overridden."""
    parser = make_parser(prog, __doc__)
    parser.set_defaults(cpu=False, local=False, dry_run=False, slurm=[])
    d = Resources()
    add = parser.add_argument
    add("--nodes", type=int, default=argparse.SUPPRESS, help=f"default {d.nodes}")
    add("--gpus-per-node", type=int, default=argparse.SUPPRESS, help="one task per GPU")
    add("--cpu", action="store_true", help="CPU tasks (no GPUs); with --tasks-per-node")
    add(
        "--tasks-per-node",
        type=int,
        default=argparse.SUPPRESS,
        help=f"CPU tasks per node (default {d.tasks_per_node})",
    )
    add("--cpus-per-task", type=int, default=argparse.SUPPRESS, help=f"default {d.cpus_per_task}")
    add(
        "--time",
        type=int,
        default=argparse.SUPPRESS,
        dest="time_minutes",
        help=f"minutes (default {d.time_minutes})",
    )
    add("--mem", type=float, default=argparse.SUPPRESS, dest="mem_gb", help="GB per node")
    for name in ("partition", "account", "qos", "constraint", "after", "job_name"):
        add(f"--{name.replace('_', '-')}", default=argparse.SUPPRESS)
    add(
        "--signal-lead",
        type=int,
        default=argparse.SUPPRESS,
        dest="signal_lead_s",
        help=f"seconds before the time limit to save and requeue (default {d.signal_lead_s})",
    )
    add("--slurm", action="append", metavar="KEY=VALUE", help="any other sbatch option")
    add(
        "--logs",
        default=argparse.SUPPRESS,
        help="folder for the job's logs (default: the job's output folder/slurm)",
    )
    add("--local", action="store_true", help="submitit's local executor instead of SLURM")
    add("--dry-run", action="store_true", help="print the sbatch script; submit nothing")
    return parser


def split_argv(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], list[str]]:
    """(this parser's options, the rest in order): the command's own arguments pass through."""
    ours, rest, i = [], [], 0
    flags = {s: a for a in parser._actions for s in a.option_strings}
    while i < len(argv):
        token = argv[i]
        name = token.split("=", 1)[0]
        action = flags.get(name)
        if action is None:
            rest.append(token)
        else:
            ours.append(token)
            if action.nargs != 0 and "=" not in token and i + 1 < len(argv):
                i += 1
                ours.append(argv[i])
        i += 1
    return ours, rest


def main(argv: list[str] | None = None, prog: str = "wtpipe-submit") -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = resource_parser(prog)
    parser.add_argument(
        "command", metavar="COMMAND|JOB.yaml", help=f"one of {', '.join(COMMANDS)}, or a job file"
    )
    ours, rest = split_argv(parser, argv)
    if not rest:
        parser.parse_args(ours)  # prints the usage and what is missing
        return 2
    args = parser.parse_args([*ours, rest[0]])
    job = JobFile()
    if rest[0].endswith((".yaml", ".yml")):
        try:
            job = load_config(JobFile, rest[0])
        except ConfigError as err:
            print(f"{prog}: {err}", file=sys.stderr)
            return 2
    elif rest[0] in COMMANDS:
        job = JobFile(command=rest[0])
    else:
        parser.error(
            f"{rest[0]!r} is neither a command ({', '.join(COMMANDS)}) nor a job file (.yaml)"
        )
    extra = dict(job.resources.slurm)
    for item in args.slurm:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--slurm {item!r} is not key=value")
        extra[key] = value
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(Resources)
        if f.name != "slurm" and hasattr(args, f.name)
    }
    resources = dataclasses.replace(job.resources, **given, slurm=extra)
    command_args = [*job.args, *rest[1:]]
    logs = getattr(args, "logs", None) or job.logs
    if job.command == "ingest":
        return ingest(
            prog,
            command_args,
            resources,
            logs or default_logs(job.command, command_args),
            args.local,
            args.dry_run,
        )
    problem = check(job.command, command_args)
    if problem:
        print(f"{prog}: not submitted: wtpipe {job.command} {problem}", file=sys.stderr)
        return 2
    logs = logs or default_logs(job.command, command_args)
    from wtpipe.cluster.submit import submit

    what = f"wtpipe {job.command} {' '.join(command_args)}"
    if args.dry_run:
        dry_run(logs, resources, args.local)
        print(f"# the job runs: {what}")
        return 0
    job = submit(job.command, command_args, logs, resources, local=args.local)
    if args.local:  # the job is a child of this process: wait for it
        print(f"running job {job.job_id} locally: {what}; logs in {job.paths.stdout}")
        try:
            job.result()
        except Exception as err:  # submitit re-raises the job's failure with its traceback text
            print(
                f"{prog}: job {job.job_id} failed: {str(err).strip().splitlines()[-1]}",
                file=sys.stderr,
            )
            return 1
        print(f"job {job.job_id} finished; logs in {job.paths.stdout}")
        return 0
    print(f"submitted job {job.job_id}: {what}")
    print(f"  logs     {job.paths.stdout} (and _log.err), one per task")
    watch_lines([str(job.job_id)])
    print(f"  stop     scancel --signal=USR1 {job.job_id}   (saves at the next step, then ends)")
    return 0


def dry_run(logs: str, resources: Resources, local: bool, array: int = 0) -> None:
    """Print what would be submitted: the sbatch script, or the local executor's parameters."""
    from wtpipe.cluster.submit import local_parameters, sbatch_script

    if local:
        print(f"# submitit's local executor, logs in {logs}/JOBID/, with:")
        for key, value in local_parameters(resources).items():
            print(f"#   {key} = {value}")
    else:
        print(sbatch_script(logs, resources, array))


def default_logs(command: str, argv: list[str]) -> str:
    """The job's own output folder + ``slurm`` (never the current directory): the run folder of a
    training or fine-tuning config, else the folder named by ``--out`` or by the weights/run
    argument; the build's logs go beside it (``--overwrite`` empties the build folder)."""
    if command == "train" or (command == "eval" and argv[:1] in (["seg"], ["det"])):
        from wtpipe.cli.finetune import config_class
        from wtpipe.cli.finetune import parser as finetune_parser
        from wtpipe.cli.train import parser as train_parser
        from wtpipe.train.config import TrainConfig

        task = argv[0] if command == "eval" else ""
        args, _ = (
            finetune_parser("wtpipe eval", task).parse_known_args(argv[1:])
            if task
            else train_parser().parse_known_args(argv)
        )
        config = load_config(
            config_class(task) if task else TrainConfig, args.config, args.overrides
        )
        return os.path.join(config.run.output_dir, rundir.JOB_LOGS)
    out = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--out"), None)
    out = out or next((a.split("=", 1)[1] for a in argv if a.startswith("--out=")), None)
    if command in ("ingest", "shards") and out:
        return os.path.normpath(out) + "-slurm"
    if out:
        return os.path.join(out, rundir.JOB_LOGS)
    weights = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--weights"), None)
    target = weights or next(
        (a for a in argv[1 if command == "eval" else 0 :] if not a.startswith("-")), None
    )
    if target and not target.startswith(
        "random"
    ):  # a run folder, or a checkpoint or weights file in one
        target = target.split(f"{os.sep}{rundir.CHECKPOINTS}{os.sep}")[0]
        return os.path.join(
            os.path.dirname(target) or "." if os.path.splitext(target)[1] else target,
            rundir.JOB_LOGS,
        )
    return os.path.join(os.path.expanduser("~"), ".cache", "wtpipe", "slurm-logs")


def watch_lines(ids: list[str]) -> None:
    """How to follow and cancel the submitted jobs."""
    print(f"  watch    squeue -j {','.join(ids)}; sacct -j {','.join(ids)}")
    print(f"  cancel   scancel {' '.join(ids)}")


def check(command: str, argv: list[str]) -> str | None:
    """What is wrong with a training or fine-tuning command line, found before it waits in the queue."""
    if command == "train":
        from wtpipe.cli.train import check as check_train

        return check_train(argv)
    if command == "eval" and argv[:1] in (["seg"], ["det"]):
        from wtpipe.cli.finetune import check as check_finetune

        problem = check_finetune(argv[1:], argv[0])
        return f"{argv[0]} {problem}" if problem else None
    return None


def ingest(
    prog: str, argv: list[str], resources: Resources, logs: str, local: bool, dry: bool
) -> int:
    """``ingest VIDEOS --out DIR --array-size K [build options]``: plan here, then the array and the assembly."""
    from wtpipe.cli.shards import add_settings_arguments, settings_from

    parser = make_parser(f"{prog} ingest", ingest.__doc__)
    parser.add_argument("inputs", nargs="+", metavar="VIDEO_OR_DIR")
    parser.add_argument("--out", required=True, help="output directory, shared by every node")
    parser.add_argument(
        "--array-size", type=int, default=16, help="array tasks (at most one per unit; default 16)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="discard an existing build in --out"
    )
    add_settings_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args)
    except ValueError as err:
        parser.error(str(err))
    if args.array_size < 1:
        parser.error("--array-size must be at least 1")
    from wtpipe.cluster.ingest import array_id, submit_ingest, task_resources
    from wtpipe.shards.build import BuildError

    if dry:
        dry_run(logs, task_resources(resources, "units"), local, array=args.array_size)
        print(
            f"# each array task runs: wtpipe shards stage {args.out} --units ... (the units left when submitted)"
        )
        print(f"# then, after the whole array: wtpipe shards assemble {args.out}")
        return 0
    try:
        jobs = submit_ingest(
            args.inputs, args.out, settings, args.array_size, resources, logs, local, args.overwrite
        )
    except BuildError as err:
        print(f"{prog}: not submitted: {err}", file=sys.stderr)
        return 2
    plan = jobs.plan
    if plan.finished is not None:
        print(
            f"nothing to submit: {plan.finished.out} holds a finished build "
            f"({len(plan.finished.manifest['shards'])} shards)"
        )
        return 0
    for problem in plan.unreadable:
        print(f"{prog}: {problem}", file=sys.stderr)
    if not plan.units:
        print(f"{prog}: not submitted: none of the inputs could be read", file=sys.stderr)
        return 2
    ids = [array_id(jobs.array[0])] if jobs.array else []
    if jobs.array:
        print(
            f"submitted array job {ids[0]}: {len(jobs.array)} task(s) decoding {len(plan.todo)} of "
            f"{plan.units} unit(s) (wtpipe shards stage {args.out} --units ...)"
        )
    else:
        print(f"all {plan.units} unit(s) are already staged")
    ids.append(str(jobs.assemble.job_id))
    print(f"submitted job {ids[-1]} (after the array): wtpipe shards assemble {args.out}")
    if local:
        failed = jobs.assemble.exception()
        print(
            f"assembly {'failed: see ' + str(jobs.assemble.paths.stderr) if failed else 'finished'}; "
            f"logs in {logs}"
        )
        return 1 if failed else 0
    print(
        f"  logs     {logs}/{ids[0]}_*/ (one folder per array task), {logs}/{ids[-1]}/"
        if jobs.array
        else f"  logs     {logs}/{ids[-1]}/"
    )
    watch_lines(ids)
    print(
        "  a unit that fails is listed in the assembly's log and manifest; submit the same command "
        "again to run only the units not done"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
