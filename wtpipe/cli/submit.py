"""``wtpipe submit COMMAND [command args...] [resources]``: run a wtpipe command as a SLURM job.

Resources (any order among the command's own arguments): --nodes N --gpus-per-node G
(one task per GPU) or --cpu --tasks-per-node T, --cpus-per-task C, --time MIN, --mem GB,
--partition P --account A --qos Q --constraint C, --slurm key=value (any sbatch option),
--signal-lead S (SIGUSR2 that long before the time limit: save and requeue), --after JOBID,
--logs DIR (default ./slurm-logs). --local runs with submitit's local executor (no SLURM);
--dry-run prints the sbatch script instead of submitting.

Example: wtpipe submit train --config configs/dino_vits16_wt.yaml data.shards=/data/wt --nodes 2 --gpus-per-node 8
"""

from __future__ import annotations

import argparse
import sys

from wtpipe.cli import make_parser

COMMANDS = ("train", "eval", "export", "shards")


def resource_parser(prog: str) -> argparse.ArgumentParser:
    parser = make_parser(prog, __doc__)
    add = parser.add_argument
    add("--nodes", type=int, default=1)
    add("--gpus-per-node", type=int, default=0)
    add("--cpu", action="store_true", help="CPU tasks (no GPUs); with --tasks-per-node")
    add("--tasks-per-node", type=int, default=1)
    add("--cpus-per-task", type=int, default=2)
    add("--time", type=int, default=60, dest="time_minutes", help="minutes")
    add("--mem", type=float, default=0.0, dest="mem_gb", help="GB per node")
    for name in ("partition", "account", "qos", "constraint", "after"):
        add(f"--{name}", default="")
    add("--signal-lead", type=int, default=90, dest="signal_lead_s", help="seconds")
    add("--job-name", default="wtpipe")
    add("--slurm", action="append", default=[], metavar="KEY=VALUE", help="any other sbatch option")
    add("--logs", default="slurm-logs", help="folder for the job's logs and submitit files")
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
    parser.add_argument("command", choices=COMMANDS)
    ours, rest = split_argv(parser, argv)
    if not rest or rest[0] not in COMMANDS:
        parser.parse_args(ours + rest[:1] if rest else ours)  # prints usage and the error
        return 2
    args = parser.parse_args([*ours, rest[0]])
    from wtpipe.cluster.submit import Resources, sbatch_script, submit

    extra = {}
    for item in args.slurm:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--slurm {item!r} is not key=value")
        extra[key] = value
    resources = Resources(**{k: getattr(args, k) for k in (
        "nodes", "gpus_per_node", "tasks_per_node", "cpus_per_task", "time_minutes", "mem_gb", "partition",
        "account", "qos", "constraint", "signal_lead_s", "job_name", "after")}, slurm=extra)
    if args.dry_run:
        print(sbatch_script(args.logs, resources))
        return 0
    job = submit(args.command, rest[1:], args.logs, resources, local=args.local)
    if args.local:  # the job is a child of this process: wait for it
        print(f"running job {job.job_id} locally: wtpipe {' '.join(rest)}; logs in {job.paths.stdout}")
        try:
            job.result()
        except Exception as err:  # submitit re-raises the job's failure with its traceback text
            print(f"{prog}: job {job.job_id} failed: {str(err).strip().splitlines()[-1]}", file=sys.stderr)
            return 1
        print(f"job {job.job_id} finished; logs in {job.paths.stdout}")
        return 0
    print(f"submitted job {job.job_id}: wtpipe {' '.join(rest)}")
    print(f"  logs     {job.paths.stdout} (and _log.err), one per task")
    print(f"  watch    squeue -j {job.job_id}; sacct -j {job.job_id}")
    print(f"  stop     scancel --signal=USR1 {job.job_id}   (saves at the next step, then ends)")
    print(f"  cancel   scancel {job.job_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
