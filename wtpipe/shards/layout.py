"""From staged frames to segments, and from segments to shards.

A segment is a run of consecutive stored frames of one video (at most ``segment_frames``),
broken at dead footage and at gaps in the timeline. Segments from all videos are shuffled with
a fixed seed and dealt round-robin into shards, so every shard mixes videos and timelines and
the layout is a pure function of the staged frames and the settings.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from wtpipe.video import dead


@dataclass(frozen=True)
class FrameRef:
    """Where a stored frame's encoded bytes lie in a staged unit tar, and when it was shown."""

    staged: str
    offset: int
    size: int
    pts: int
    t: float


@dataclass(frozen=True)
class Segment:
    video_id: str
    key: str
    frames: tuple[FrameRef, ...]

    @property
    def nbytes(self) -> int:
        return sum(f.size for f in self.frames)


@dataclass(frozen=True)
class DeadRange:
    start_s: float
    end_s: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "reason": self.reason,
        }


def join_units(
    units: list[tuple[str, dict[str, Any]]],
) -> tuple[list[FrameRef], list[float], list[float]]:
    """Concatenate staged units of one video (in order): frame refs, flatness, change.

    The first frame of a unit is compared with the previous unit's last frame, so frozen runs
    are measured across unit boundaries exactly as in one pass. A frame kept by two neighbouring
    units (the first one at or after the earlier unit's last grid point) is joined once.
    """
    refs: list[FrameRef] = []
    flat: list[float] = []
    changes: list[float] = []
    prev_last = None
    for staged, sidecar in units:
        for i, frame in enumerate(sidecar["frames"]):
            if refs and frame["pts"] <= refs[-1].pts:
                continue
            refs.append(FrameRef(staged, frame["offset"], frame["size"], frame["pts"], frame["t"]))
            flat.append(frame["flat"])
            if i == 0:
                first = np.asarray(sidecar["first_thumb"], dtype=np.uint8)
                prev = None if prev_last is None else np.asarray(prev_last, dtype=np.uint8)
                changes.append(dead.change(prev, first))
            else:
                changes.append(frame["change"])
        if sidecar["frames"]:
            prev_last = sidecar["last_thumb"]
    return refs, flat, changes


def find_dead(
    refs: list[FrameRef],
    flat: list[float],
    changes: list[float],
    period: float,
    limits: dead.DeadThresholds,
) -> tuple[list[bool], list[DeadRange]]:
    """Per-frame dead flags and the dead time ranges."""
    times = [r.t for r in refs]
    mask = [False] * len(refs)
    ranges = []
    for i, j, reason in dead.dead_runs(times, flat, changes, period, limits):
        mask[i:j] = [True] * (j - i)
        ranges.append(DeadRange(times[i], times[j - 1] + period, reason))
    return mask, ranges


def cut_segments(
    video_id: str,
    refs: list[FrameRef],
    dead_mask: list[bool],
    grid_index: Any,
    segment_frames: int,
    period: float,
) -> list[Segment]:
    """Split live frames into segments of at most ``segment_frames``; a gap > 2.5 periods cuts too.

    Keys are ``{video_id}_{grid index of the first frame:08d}``: stable, unique, dot-free.
    """
    segments: list[Segment] = []
    current: list[FrameRef] = []

    def close() -> None:
        if current:
            key = f"{video_id}_{grid_index(current[0].pts):08d}"
            segments.append(Segment(video_id, key, tuple(current)))
            current.clear()

    for ref, is_dead in zip(refs, dead_mask):
        if is_dead:
            close()
            continue
        if current and (len(current) >= segment_frames or ref.t - current[-1].t > 2.5 * period):
            close()
        current.append(ref)
    close()
    return segments


def assign_shards(
    segments: list[Segment], shard_bytes: int, min_shards: int, seed: int
) -> list[list[Segment]]:
    """Shuffle segments with ``seed`` and deal them round-robin into enough shards."""
    if not segments:
        return []
    total = sum(s.nbytes for s in segments)
    count = min(len(segments), max(min_shards, math.ceil(total / shard_bytes)))
    order = sorted(segments, key=lambda s: s.key)
    random.Random(seed).shuffle(order)
    return [order[i::count] for i in range(count)]
