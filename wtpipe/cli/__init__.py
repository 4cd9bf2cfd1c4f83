"""Command-line fronts. Each module's ``main(argv, prog)`` parses its arguments before importing
anything heavy (torch, timm, accelerate, av, matplotlib), so ``--help`` and usage errors are instant."""

from __future__ import annotations

import argparse
import logging

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
