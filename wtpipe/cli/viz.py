"""``wtpipe viz masks CHECKPOINT_OR_RUN SHARDS --out DIR``: DoRA's tracked object masks as PNGs."""

from __future__ import annotations

import sys

from wtpipe.cli import make_parser


def main(argv: list[str] | None = None, prog: str = "wtpipe-viz") -> int:
    parser = make_parser(prog, __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "masks", help="object masks per frame and raw per-head attention, for a few clips"
    )
    p.add_argument("checkpoint", help="a DoRA checkpoint directory or run directory")
    p.add_argument("shards", help="a wtpipe-shards output directory")
    p.add_argument("--out", required=True, help="directory for the PNGs")
    p.add_argument("--clips", type=int, default=4)
    args = parser.parse_args(argv)
    from wtpipe.train.pictures import masks_from_checkpoint

    try:
        paths = masks_from_checkpoint(args.checkpoint, args.shards, args.out, args.clips)
    except (FileNotFoundError, ValueError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
