"""wtpipe: one command for every stage of the pipeline (the wtpipe-* scripts are aliases)."""

from __future__ import annotations

import importlib
import sys

from wtpipe import __version__
from wtpipe.eval.settings import TASKS

COMMANDS = {
    "demo": (
        "wtpipe.cli.demo",
        "the whole pipeline on the bundled clip: shards, DoRA, evaluation, report.md",
    ),
    "shards": (
        "wtpipe.cli.shards",
        "ingest long videos into verified WebDataset shards (build, verify, info, preview)",
    ),
    "train": (
        "wtpipe.cli.train",
        "pretrain a ViT with DINO or DoRA; re-run the same command to resume",
    ),
    "export": (
        "wtpipe.cli.export",
        "write a run's or checkpoint's teacher backbone as safetensors",
    ),
    "eval": (
        "wtpipe.cli.eval",
        f"frozen-backbone evaluation ({', '.join(TASKS)}) and fine-tuning (seg, det)",
    ),
    "viz": ("wtpipe.cli.viz", "pictures of a checkpoint: DoRA's tracked object masks"),
    "submit": (
        "wtpipe.cli.submit",
        "run any of these as a SLURM job (multi-node, requeued on time-out)",
    ),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        f"usage: wtpipe [--version] COMMAND [ARGS...]\n\n{__doc__.splitlines()[0]}\n\ncommands:"
    ]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines.append("\n'wtpipe COMMAND --help' shows a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] == "--version":
        print(f"wtpipe {__version__}")
        return 0
    if args[0] not in COMMANDS:
        print(f"wtpipe: unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[args[0]][0])
    return module.main(args[1:], prog=f"wtpipe {args[0]}")


if __name__ == "__main__":
    sys.exit(main())
