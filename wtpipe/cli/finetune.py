"""``wtpipe eval seg|det --config FILE [key=value ...]``: fine-tune a pretrained ViT.

seg: linear head (frozen backbone) or UperNet on blocks 4/6/8/12, on an ADE20K-layout folder;
sliding-window validation, mIoU / mAcc / aAcc. det: Mask R-CNN on a ViTDet simple pyramid, on a
COCO-layout folder; box and mask AP by pycocotools. Layer-wise lr decay, poly schedule, best and
last models, overlay PNGs. Runs as one process or under torchrun / accelerate launch; Ctrl-C or
SIGTERM saves at the end of the step, and re-running the same command resumes.
"""

from __future__ import annotations

import argparse
import sys

from wtpipe.cli import config_or_exit, make_parser, run_or_exit, setup_logging
from wtpipe.config import ConfigError, load_config
from wtpipe.finetune import config_class, make_task


def parser(prog: str, task: str) -> argparse.ArgumentParser:
    parser = make_parser(f"{prog} {task}", __doc__)
    parser.add_argument("--config", help=f"YAML recipe, e.g. configs/{task}_*.yaml")
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also score the trivial predictor on val "
        "(seg: the majority class everywhere; det: no detections, AP 0 by definition)",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="e.g. data.root=/data/ade model.weights=RUN",
    )
    return parser


def check(argv: list[str], task: str) -> str | None:
    """The problem with these arguments, or None (``wtpipe submit`` asks before queueing)."""
    args, unknown = parser("wtpipe eval", task).parse_known_args(argv)
    if unknown:
        return f"unrecognized arguments: {' '.join(unknown)}"
    try:
        load_config(config_class(task), args.config, args.overrides)
    except ConfigError as err:
        return str(err)
    return None


def main(argv: list[str], prog: str = "wtpipe eval", task: str = "seg") -> int:
    args = parser(prog, task).parse_intermixed_args(argv)
    prog = f"{prog} {task}"
    config = config_or_exit(config_class(task), args, prog)
    for key in ("data.root", "model.weights"):
        section, name = key.split(".")
        if not getattr(getattr(config, section), name):
            print(f"{prog}: {key} is not set", file=sys.stderr)
            return 2
    setup_logging()
    from wtpipe.engine.stopping import CONTINUE_SIGNALS, EXIT_REQUEUE
    from wtpipe.eval.datasets import LayoutError
    from wtpipe.finetune.loop import Finetuner
    from wtpipe.models.weights import WeightsError

    result = run_or_exit(
        prog,
        lambda: Finetuner(config, make_task(task, config)).run(),
        (LayoutError, WeightsError),
        f"{config.run.output_dir}/checkpoints",
    )
    if not result.main:
        return 0
    if result.stopped:
        print(
            f"{prog}: stopped by {result.signal} after step {result.step} of {result.end} (saved); "
            "re-run the same command to resume",
            file=sys.stderr,
        )
        return EXIT_REQUEUE if result.signal in CONTINUE_SIGNALS else 0
    out = result.output_dir
    if result.loss != result.loss:  # NaN: no step ran
        print(f"{prog}: {out} already reached step {result.end}; nothing to do")
    else:
        print(
            f"{prog}: finished step {result.end} in {result.seconds:.0f} s, last loss {result.loss:.4f}"
        )
    print("  val     " + ", ".join(f"{k} {v:.2f}" for k, v in result.metrics.items()))
    if result.best:
        print(
            f"  best    {result.best['metric']} {result.best['value']:.2f} at step {result.best['step']} "
            f"-> {out}/best/model.safetensors"
        )
    if args.baseline:
        if task == "seg":
            from wtpipe.finetune.seg import majority_baseline

            trivial = majority_baseline(config)
        else:
            trivial = {k: 0.0 for k in result.metrics}
        print("  trivial " + ", ".join(f"{k} {v:.2f}" for k, v in trivial.items()))
    print(
        f"  last    {out}/last/model.safetensors; pictures {out}/val/; curves {out}/loss.png, {out}/scalars.csv"
    )
    return 0
