"""``wtpipe export RUN_OR_CHECKPOINT [--out FILE] [--overwrite]``: the teacher backbone as safetensors.

From a run directory: its newest intact checkpoint (a damaged one is named, and the one before
it used), into RUN/backbone.safetensors; a finished run already has that file, and then there is
nothing to do. From a checkpoint directory (RUN/checkpoints/step-XXXXXXXX): into that directory.
A file given with --out is replaced only with --overwrite.
"""

from __future__ import annotations

import sys

from wtpipe.cli import make_parser


def main(argv: list[str] | None = None, prog: str = "wtpipe-export") -> int:
    parser = make_parser(prog, __doc__)
    parser.add_argument(
        "checkpoint",
        metavar="RUN_OR_CHECKPOINT",
        help="a run directory or one of its checkpoint directories (step-XXXXXXXX)",
    )
    parser.add_argument("--out", help="output file; parent folders are created")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    args = parser.parse_args(argv)
    from wtpipe.train.export import ExportError, export_checkpoint

    try:
        _, done = export_checkpoint(
            args.checkpoint,
            args.out,
            overwrite=args.overwrite,
            warn=lambda line: print(f"{prog}: {line}", file=sys.stderr),
        )
    except ExportError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    print(done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
