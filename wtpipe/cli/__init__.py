"""Command-line fronts. Each module's ``main(argv, prog)`` parses its arguments before importing
anything heavy (torch, timm, accelerate, av, matplotlib), so ``--help`` and usage errors are instant."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from wtpipe import __version__


def make_parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """An argument parser with ``--version``; ``description`` is the module docstring's first line."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
