"""Train-time clip sampling: T frames, ``gap`` stored frames apart, at a random offset in a segment.

Segments are stored once; clip length, gap and offset are training choices made here. A segment
shorter than the clip gives the longest clip that fits, with frames repeated at the end.
"""

from __future__ import annotations

import random


def clip_indices(num_frames: int, length: int, gap: int, rng: random.Random) -> list[int]:
    """Indices of one clip inside a segment of ``num_frames`` frames."""
    if num_frames < 1 or length < 1 or gap < 1:
        raise ValueError(f"bad clip request: {num_frames} frames, length {length}, gap {gap}")
    span = (length - 1) * gap
    if span < num_frames:
        start = rng.randrange(num_frames - span)
        return [start + i * gap for i in range(length)]
    step = max(1, (num_frames - 1) // max(1, length - 1)) if length > 1 else 1
    return [min(i * step, num_frames - 1) for i in range(length)]
