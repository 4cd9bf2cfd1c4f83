"""``wtpipe train --config FILE [key=value ...]``: pretrain a ViT with DINO or DoRA.

Runs as one process, or under ``torchrun``/``accelerate launch`` for DDP. Ctrl-C, SIGTERM or
SIGUSR1 (to the process or its whole group) saves at the end of the step and exits; re-running
the same command resumes from the newest intact checkpoint. Ctrl-C twice stops at once.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from wtpipe.cli import config_or_exit, make_parser, run_or_exit, setup_logging
from wtpipe.config import ConfigError, load_config
from wtpipe.engine import rundir
from wtpipe.train.config import TrainConfig


def summary(result: dict[str, Any]) -> str:
    """The end-of-run lines: what happened and where everything is."""
    out = result["output_dir"]
    done = result["step"] - result["start_step"]
    loss = "" if math.isnan(result["loss"]) else f", last loss {result['loss']:.4f}"
    head = (
        f"stopped by {result['signal']} after step {result['step']} of {result['end']} (saved); "
        "re-run the same command to resume"
        if result["stopped"]
        else f"finished step {result['step']} of {result['end']}"
    )
    lines = [
        f"wtpipe train: {head}",
        f"  {done} steps in {result['seconds']:.1f} s ({result['clips_per_s']:.1f} clips/s, "
        f"{result['data_wait']:.0%} of it waiting for data){loss}",
    ]
    if result.get("peak_gpu_gib") is not None:
        lines.append(f"  peak GPU memory {result['peak_gpu_gib']:.1f} GiB (this rank)")
    where = [
        ("weights", os.path.join(out, rundir.BACKBONE)),
        ("checkpoint", result["checkpoint"]),
        ("loss curve", os.path.join(out, rundir.LOSS_CURVE)),
        ("scalars", os.path.join(out, rundir.SCALARS)),
        ("tensorboard", os.path.join(out, rundir.TENSORBOARD)),
        ("pictures", os.path.join(out, rundir.PICTURES)),
        ("evaluations", os.path.join(out, rundir.EVALUATIONS)),
        ("config", os.path.join(out, rundir.CONFIG)),
    ]
    lines += [f"  {name:<12}{path}" for name, path in where if path and os.path.exists(path)]
    if result["collapsed"]:
        lines.append(
            f"  warning: the run collapsed ({', '.join(result['collapsed'])}); the log says what to change"
        )
    if result["skipped_shards"] or result["sample_failures"]:
        lines.append(
            f"  skipped: {len(result['skipped_shards'])} shard(s), "
            f"{result['sample_failures']} sample(s) (named in the log)"
        )
    return "\n".join(lines)


def parser(prog: str = "wtpipe-train") -> argparse.ArgumentParser:
    parser = make_parser(prog, __doc__)
    parser.add_argument("--config", help="YAML recipe, e.g. configs/tiny_cpu.yaml")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config, every key with its meaning, and exit",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted overrides, e.g. data.shards=demo_shards optim.epochs=2",
    )
    return parser


def check(argv: list[str]) -> str | None:
    """The problem with these training arguments, or None: ``wtpipe submit`` asks before a job
    waits in the queue only to fail on a typo."""
    args, unknown = parser().parse_known_args(argv)
    if unknown:
        return f"unrecognized arguments: {' '.join(unknown)}"
    try:
        load_config(TrainConfig, args.config, args.overrides)
    except ConfigError as err:
        return str(err)
    return None


def main(argv: list[str] | None = None, prog: str = "wtpipe-train") -> int:
    args = parser(prog).parse_intermixed_args(argv)
    config = config_or_exit(TrainConfig, args, prog)
    if not config.data.shards:
        print(f"{prog}: data.shards is not set (a wtpipe-shards output directory)", file=sys.stderr)
        return 2
    setup_logging()
    from wtpipe.engine.stopping import CONTINUE_SIGNALS, EXIT_REQUEUE
    from wtpipe.train.trainer import Trainer

    result = run_or_exit(
        prog,
        lambda: Trainer(config).run(),
        (ValueError,),
        os.path.join(config.run.output_dir, rundir.CHECKPOINTS),
    )
    if result["main"]:
        print(summary(result), file=sys.stderr if result["stopped"] else sys.stdout)
    return EXIT_REQUEUE if result["signal"] in CONTINUE_SIGNALS else 0


if __name__ == "__main__":
    sys.exit(main())
