"""``wtpipe-train --config FILE [key=value ...]``: pretrain with DINO (more methods to come).

Runs as one process, under ``torchrun``/``accelerate launch`` for DDP, and resumes from the
output directory's latest checkpoint when re-run with the same command.
"""

from __future__ import annotations

import argparse
import logging
import sys

from wtpipe.config import ConfigError, load_config
from wtpipe.train.config import TrainConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wtpipe-train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML recipe, e.g. configs/tiny_cpu.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="dotted overrides, e.g. data.shards=demo_shards optim.epochs=2")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(TrainConfig, args.config, args.overrides)
    except ConfigError as err:
        print(f"wtpipe-train: {err}", file=sys.stderr)
        return 2
    if not config.data.shards:
        print("wtpipe-train: data.shards is not set (a wtpipe-shards output directory)", file=sys.stderr)
        return 2
    from wtpipe.train.trainer import ResumeError, Trainer

    try:
        Trainer(config).run()  # a run stopped by SIGTERM/SIGUSR1 has saved: exit 0, re-run resumes
    except (ResumeError, FileNotFoundError, ValueError) as err:
        print(f"wtpipe-train: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
