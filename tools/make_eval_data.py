#!/usr/bin/env python3
"""Build the real evaluation sample data (scenes ImageFolder, VOC/COCO boxes, DAVIS sequences).

Usage: python tools/make_eval_data.py [--out DIR]   (default: $WTPIPE_MEDIA_CACHE/evaldata-vN)
"""

import argparse

from wtpipe.demo import sample_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="output directory")
    print(sample_data.build(parser.parse_args().out))


if __name__ == "__main__":
    main()
