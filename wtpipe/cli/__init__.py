"""Command-line fronts. Each module's ``main(argv, prog)`` parses its arguments before importing
anything heavy (torch, timm, accelerate, av, matplotlib), so ``--help`` and usage errors are instant."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from wtpipe import __version__

T = TypeVar("T")


def make_parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """An argument parser with ``--version``; ``description`` is the module docstring's first line."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wtpipe {__version__}")
    return parser


def setup_logging(fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s") -> None:
    logging.basicConfig(level=logging.INFO, format=fmt)
    for noisy in ("matplotlib", "PIL"):  # font-cache and plugin chatter is not the user's business
        logging.getLogger(noisy).setLevel(logging.WARNING)


def config_or_exit(cls: type, args: argparse.Namespace, prog: str) -> Any:
    """``cls`` from ``args.config`` and ``args.overrides``; exits 2 with one line on a bad key or value,
    or prints the resolved config and exits 0 for ``--print-config``."""
    from wtpipe.config import ConfigError, describe, load_config

    try:
        config = load_config(cls, args.config, args.overrides)
    except ConfigError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.print_config:
        print(describe(config), end="")
        raise SystemExit(0)
    return config


def run_or_exit(
    prog: str, run: Callable[[], T], bad_input: tuple[type[BaseException], ...], checkpoints: str
) -> T:
    """``run()``'s result, or one line and an exit: 2 for bad input (a config that cannot resume,
    a missing file, ``bad_input``), 1 for a write that failed (disk full, quota), 130 for Ctrl-C
    twice (nothing saved; the last checkpoint in ``checkpoints`` stands)."""
    from wtpipe.engine.checkpoint import ResumeError, WriteError

    try:
        return run()
    except (ResumeError, FileNotFoundError, *bad_input) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except (WriteError, OSError) as err:  # a full disk or a quota: the one line names the file
        print(f"{prog}: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        if os.environ.get("RANK", "0") == "0":
            print(
                f"\n{prog}: stopped without saving (Ctrl-C twice); re-run the same command to resume from "
                f"the last checkpoint in {checkpoints}",
                file=sys.stderr,
            )
        raise SystemExit(130) from None
