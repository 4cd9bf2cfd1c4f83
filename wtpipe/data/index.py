"""Random access into wtpipe shards: where every sample's members lie, from the tar headers.

Training draws samples by index (a pure function of seed, rank and step), so resuming at any
step costs nothing and no worker ever reads a shard it does not need. Building the index reads
only tar headers. A shard that is missing, truncated or corrupt, or whose sample count differs
from the manifest, is skipped with a warning and counted: training goes on without it.
"""

from __future__ import annotations

import json
import logging
import os
import tarfile
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from wtpipe.shards.read import load_manifest, read_span

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleRef:
    shard: str
    key: str
    json: tuple[int, int]  # (offset, size) of KEY.json
    frames: tuple[tuple[int, int], ...]  # JPEG frames in order, or one mp4
    is_mp4: bool


@dataclass
class ShardIndex:
    samples: list[SampleRef]
    skipped: list[str] = field(default_factory=list)  # "shard: reason" for every shard left out
    source_per_stored: float = (
        1.0  # source frames each stored frame stands for (60 fps stored at 4: 15)
    )

    def clip_starts(self, clip_frames: int, frame_gap: int) -> int:
        """Clip starts counted in source frames, as the official DoRA loader counts its epoch (a
        clip may start at every frame of the video): in each segment, the stored frames a clip of
        this length can start at (at least one), times the source frames each one stands for."""
        span = (clip_frames - 1) * frame_gap
        stored = sum(max(_frame_count(ref) - span, 1) for ref in self.samples)
        return round(stored * self.source_per_stored)

    @classmethod
    def build(cls, directory: str) -> ShardIndex:
        manifest = load_manifest(directory)
        samples: list[SampleRef] = []
        skipped: list[str] = []
        for entry in manifest["shards"]:
            path = os.path.join(directory, entry["name"])
            try:
                refs = _index_shard(path)
                if len(refs) != entry["samples"]:
                    raise ValueError(
                        f"{len(refs)} samples, manifest says {entry['samples']} (truncated?)"
                    )
            except (OSError, tarfile.TarError, ValueError) as err:
                reason = f"{entry['name']}: {' '.join(str(err).split())}"
                log.warning("skipping shard %s", reason)
                skipped.append(reason)
                continue
            samples.extend(refs)
        if not samples:
            raise ValueError(f"{directory}: no readable samples ({len(skipped)} shard(s) skipped)")
        return cls(samples, skipped, _source_per_stored(manifest))


def _source_per_stored(manifest: dict[str, Any]) -> float:
    """Source frames per stored frame over the build, weighted by each video's stored frames."""
    videos = [v for v in manifest.get("videos", []) if v.get("frames_stored") and v.get("fps")]
    stored = sum(v["frames_stored"] for v in videos)
    fps_out = manifest.get("settings", {}).get("fps")
    if not stored or not fps_out:
        return 1.0
    return (
        sum(v["frames_stored"] * v["fps"] for v in videos) / float(Fraction(str(fps_out))) / stored
    )


def _frame_count(ref: SampleRef) -> int:
    return len(json.loads(read_span(ref.shard, ref.json))["pts"]) if ref.is_mp4 else len(ref.frames)


def _index_shard(path: str) -> list[SampleRef]:
    groups: dict[str, dict[str, tuple[int, int]]] = {}
    with tarfile.open(path, mode="r:") as tar:
        for info in tar:
            if info.isfile():
                key, _, ext = info.name.partition(".")
                groups.setdefault(key, {})[ext] = (info.offset_data, info.size)
    refs = []
    for key, members in groups.items():
        if "json" not in members:
            raise ValueError(f"sample {key} has no json")
        frames = sorted(e for e in members if e.endswith(".jpg"))
        is_mp4 = "mp4" in members
        spans = (members["mp4"],) if is_mp4 else tuple(members[e] for e in frames)
        if not spans:
            raise ValueError(f"sample {key} has no frames")
        refs.append(SampleRef(path, key, members["json"], spans, is_mp4))
    return refs
