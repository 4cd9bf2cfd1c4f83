#!/usr/bin/env python3
"""JPEG frames vs one H.264 clip per segment: bytes per stored frame and loader speed.

Builds the same real footage both ways in one run (default settings: 4 fps, 16 s segments)
and prints side by side: shard bytes per stored frame; frames/s decoding whole segments; and
the rate that matters to a clip loader, clip frames/s when each segment yields one 8-frame clip
with a gap of 4 stored frames (JPEG decodes just those 8; H.264 must decode up to the last).

Usage: python benchmarks/shard_format.py [VIDEO...]   (default: the bundled sample clip)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from wtpipe.shards.build import ShardBuilder
from wtpipe.shards.read import iter_samples, load_manifest
from wtpipe.shards.settings import BuildSettings

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "wtpipe", "assets", "vtest.mp4")
CLIP, GAP = 8, 4


def measure(videos: list[str], frame_format: str) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as out:
        ShardBuilder(videos, out, BuildSettings(frame_format=frame_format), progress=False).run()
        manifest = load_manifest(out)
        samples = [
            s
            for shard in manifest["shards"]
            for s in iter_samples(os.path.join(out, shard["name"]))
        ]
        start = time.monotonic()
        frames = sum(len(s.frames()) for s in samples)
        whole = frames / (time.monotonic() - start)
        start = time.monotonic()
        used = 0
        for sample in samples:
            wanted = list(range(0, CLIP * GAP, GAP))
            if wanted[-1] < sample.meta["frames"]:
                used += len(sample.frames(wanted))
        clips = used / (time.monotonic() - start)
    return manifest["totals"]["bytes"] / frames, whole, clips


def main() -> None:
    videos = sys.argv[1:] or [SAMPLE]
    print(
        f"input: {', '.join(os.path.basename(v) for v in videos)}; defaults (4 fps, short side 320, 16 s segments)"
    )
    rows = {f: measure(videos, f) for f in ("jpg", "mp4")}
    base = rows["jpg"]
    for name, (per_frame, whole, clips) in rows.items():
        print(
            f"{name:<4} {per_frame / 1024:6.1f} KB/frame ({per_frame / base[0]:4.2f} x jpg)  "
            f"whole segments {whole:7.1f} frames/s ({whole / base[1]:4.2f} x)  "
            f"8-frame clips {clips:7.1f} frames/s ({clips / base[2]:4.2f} x)"
        )


if __name__ == "__main__":
    main()
