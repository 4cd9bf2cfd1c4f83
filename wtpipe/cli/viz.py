"""``wtpipe-viz masks CHECKPOINT_OR_RUN SHARDS --out DIR``: DoRA's tracked object masks as PNGs."""

from __future__ import annotations

import argparse
import sys

from wtpipe.train.pictures import masks_from_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wtpipe-viz", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("masks", help="object masks per frame and raw per-head attention, for a few clips")
    p.add_argument("checkpoint", help="a DoRA checkpoint directory or run directory")
    p.add_argument("shards", help="a wtpipe-shards output directory")
    p.add_argument("--out", required=True, help="directory for the PNGs")
    p.add_argument("--clips", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        paths = masks_from_checkpoint(args.checkpoint, args.shards, args.out, args.clips)
    except (FileNotFoundError, ValueError) as err:
        print(f"wtpipe-viz: {err}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
