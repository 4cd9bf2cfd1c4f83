"""``wtpipe-export CHECKPOINT_OR_RUN [--out FILE]``: teacher backbone as timm-layout safetensors."""

from __future__ import annotations

import argparse
import sys

from wtpipe.train.export import export_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wtpipe-export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a checkpoint directory (step-XXXXXXXX) or a run directory")
    parser.add_argument("--out", help="output file (default: RUN/backbone.safetensors)")
    args = parser.parse_args(argv)
    try:
        path = export_checkpoint(args.checkpoint, args.out)
    except (FileNotFoundError, KeyError) as err:
        print(f"wtpipe-export: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
