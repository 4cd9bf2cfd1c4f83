"""``wtpipe eval TASK --weights W --data DIR [--out DIR] [key=value ...]``: frozen-backbone evaluation.

Tasks: knn, linear (ImageFolder train/ + val/), discover (VOC folder or COCO json), davis
(DAVIS-2017 folder); ``wtpipe eval seg|det --config FILE`` fine-tune for segmentation or
detection (their own --help). W: a backbone.safetensors, a checkpoint directory, a run directory, or
random[:ARCH[:SEED]] for the random-initialisation floor.
"""

from __future__ import annotations

import json
import os
import sys

from wtpipe.cli import make_parser, setup_logging
from wtpipe.config import ConfigError, load_config
from wtpipe.engine import rundir
from wtpipe.eval.settings import TASKS


def main(argv: list[str] | None = None, prog: str = "wtpipe-eval") -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("seg", "det"):  # fine-tuning: a training run with its own config
        from wtpipe.cli.finetune import main as finetune

        return finetune(args[1:], prog, task=args[0])
    parser = make_parser(
        prog,
        __doc__,
        epilog="settings (key=value): "
        + "; ".join(f"{t}: {', '.join(c.__dataclass_fields__)}" for t, c in TASKS.items()),
    )
    parser.add_argument("task", choices=[*TASKS, "seg", "det"])
    parser.add_argument(
        "--weights",
        required=True,
        help="backbone.safetensors, checkpoint dir, run dir, or random[:ARCH]",
    )
    parser.add_argument(
        "--data", required=True, help="the task's data directory (or COCO json for discover)"
    )
    parser.add_argument(
        "--out",
        help="output directory (default: eval/TASK next to the weights' run, or ./eval/TASK)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("settings", nargs="*", help="task settings as key=value, e.g. ks=[10,20]")
    args = parser.parse_intermixed_args(argv)
    try:
        config = load_config(TASKS[args.task], None, args.settings)
    except ConfigError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    setup_logging("%(levelname)s %(message)s")

    from wtpipe.eval.datasets import LayoutError
    from wtpipe.eval.tasks import run_task
    from wtpipe.models.weights import WeightsError, load_backbone

    try:
        backbone, info = load_backbone(args.weights, args.device)
        out = args.out or default_out(args.weights, args.task)
        report = run_task(args.task, backbone, info, args.data, out, config)
    except (WeightsError, LayoutError, FileNotFoundError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report["metrics"], indent=1))
    if report["skipped"]:
        print(
            f"skipped {len(report['skipped'])} unreadable file(s); listed in metrics.json",
            file=sys.stderr,
        )
    print(
        f"{args.task}: {', '.join(f'{k} {v:.2f}' for k, v in report['metrics'].items())} "
        f"({report['seconds']} s; weights {info.source}, step {info.step}) -> {out}/metrics.json"
    )
    return 0


def default_out(weights: str, task: str) -> str:
    """Next to the run (RUN/eval/TASK) when the weights live in a run, else ./eval/TASK."""
    if os.path.isdir(weights):
        return os.path.join(weights, rundir.EVALUATIONS, task)
    if os.path.isfile(weights):
        return os.path.join(os.path.dirname(os.path.abspath(weights)), rundir.EVALUATIONS, task)
    return os.path.join("eval", task)


if __name__ == "__main__":
    sys.exit(main())
