"""Turn a shard's segments into WebDataset samples and write the shard.

One sample per segment: ``KEY.json`` (video, source, stored settings, per-frame pts) and the
frames, either ``KEY.000000.jpg ...`` copied byte for byte from the staged units, or one
``KEY.mp4`` encoded from them.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import numpy as np
from PIL import Image

from wtpipe import __version__
from wtpipe.shards import FRAME_FORMATS  # noqa: F401  (re-exported)
from wtpipe.shards.layout import Segment
from wtpipe.shards.read import read_span
from wtpipe.shards.tarwriter import AtomicTarWriter
from wtpipe.video.clipcodec import encode_h264

Member = tuple[str, bytes]


def sample_members(segment: Segment, header: dict[str, Any], frame_format: str) -> list[Member]:
    """The tar members of one sample. ``header`` holds what every sample of the video shares."""
    meta = {
        "key": segment.key,
        "video_id": segment.video_id,
        **header,
        "frames": len(segment.frames),
        "pts": [f.t for f in segment.frames],
        "pts_ticks": [f.pts for f in segment.frames],
        "wtpipe": __version__,
    }
    jpegs = [read_span(ref.staged, (ref.offset, ref.size)) for ref in segment.frames]
    if frame_format == "jpg":
        members = [(f"{segment.key}.{i:06d}.jpg", data) for i, data in enumerate(jpegs)]
    elif frame_format == "mp4":
        rgbs = [np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) for data in jpegs]
        fps = Fraction(header["stored"]["fps"]).limit_denominator(1001)
        members = [(f"{segment.key}.mp4", encode_h264(rgbs, fps))]
    else:
        raise ValueError(f"unknown frame format {frame_format!r}; choose from {FRAME_FORMATS}")
    return [(f"{segment.key}.json", json.dumps(meta, sort_keys=True).encode()), *members]


def write_shard(path: str, samples: Iterable[list[Member]]) -> dict[str, Any]:
    """Write samples into ``path`` atomically; return its manifest entry."""
    count = frames = 0
    with AtomicTarWriter(path) as writer:
        for members in samples:
            for name, data in members:
                writer.add(name, data)
            count += 1
            frames += json.loads(members[0][1])["frames"]
        sha256, size = writer.commit()
    return {
        "name": os.path.basename(path),
        "samples": count,
        "frames": frames,
        "bytes": size,
        "sha256": sha256,
    }
