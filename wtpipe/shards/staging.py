"""Stage one work unit: decode, keep grid frames, encode them, measure them for dead footage.

A staged unit is a tar of encoded frames plus a JSON sidecar holding per-frame pts, member
offsets and dead-footage measures. The sidecar is written last and atomically, so its presence
is the unit's completion marker; shards are later cut from staged units by byte copy.
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from PIL import Image

from wtpipe.atomic import write_json_atomic
from wtpipe.shards.tarwriter import AtomicTarWriter
from wtpipe.video import dead
from wtpipe.video.decode import DecodeStats, decode_unit
from wtpipe.video.probe import VideoInfo
from wtpipe.video.units import Unit


@dataclass(frozen=True)
class StageJob:
    info: VideoInfo
    unit: Unit
    staging_dir: str
    short_side: int
    fps_out: Fraction
    jpeg_quality: int
    threads: int
    backend: str


def unit_paths(staging_dir: str, unit: Unit) -> tuple[str, str]:
    """(frames tar, sidecar json) of a staged unit."""
    base = os.path.join(staging_dir, unit.name)
    return f"{base}.tar", f"{base}.json"


def is_staged(staging_dir: str, unit: Unit) -> bool:
    return os.path.exists(unit_paths(staging_dir, unit)[1])


def _failure_path(staging_dir: str, unit: Unit) -> str:
    return os.path.join(staging_dir, f"{unit.name}.failed")


def mark_failed(staging_dir: str, unit: Unit, why: str) -> None:
    """Record why a unit failed, so that the assembly (maybe another job, on another node) can say."""
    write_json_atomic(_failure_path(staging_dir, unit), json.dumps(why))


def failure(staging_dir: str, unit: Unit) -> str | None:
    """Why the unit's last attempt failed (None if it never failed or has since been staged)."""
    try:
        with open(_failure_path(staging_dir, unit), encoding="utf-8") as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):
        return None


def load_staged(staging_dir: str, unit: Unit) -> dict[str, Any]:
    with open(unit_paths(staging_dir, unit)[1], encoding="utf-8") as handle:
        return json.load(handle)


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def stage_unit(job: StageJob, progress: Any = None) -> dict[str, Any]:
    """Stage ``job.unit``; return its sidecar. ``progress`` (a queue) receives source-frame counts."""
    tar_path, json_path = unit_paths(job.staging_dir, job.unit)
    stats = DecodeStats()
    frames: list[dict[str, Any]] = []
    first_thumb = prev_thumb = None
    reported, last_report = 0, time.monotonic()
    with AtomicTarWriter(tar_path) as writer:
        for pts, rgb in decode_unit(
            job.info, job.unit, job.short_side, job.fps_out, job.threads, job.backend, stats
        ):
            data = encode_jpeg(rgb, job.jpeg_quality)
            offset = writer.add(f"{len(frames):06d}.jpg", data)
            thumb = dead.thumbnail(rgb)
            frames.append(
                {
                    "pts": pts,
                    "t": round(job.info.seconds(pts), 6),
                    "offset": offset,
                    "size": len(data),
                    "flat": round(dead.flatness(thumb), 3),
                    "change": round(min(dead.change(prev_thumb, thumb), 1e9), 3),
                }
            )
            first_thumb = thumb if first_thumb is None else first_thumb
            prev_thumb = thumb
            if progress is not None and time.monotonic() - last_report > 0.5:
                progress.put(stats.source_frames - reported)
                reported, last_report = stats.source_frames, time.monotonic()
        writer.commit()
    if progress is not None:
        progress.put(stats.source_frames - reported)
    sidecar = {
        "unit": job.unit.to_json(),
        "source_frames": stats.source_frames,
        "last_t": job.info.seconds(stats.last_pts) if stats.last_pts is not None else None,
        "decode_errors": stats.decode_errors,
        "first_error": stats.first_error,
        "frames": frames,
        "first_thumb": first_thumb.tolist() if first_thumb is not None else None,
        "last_thumb": prev_thumb.tolist() if prev_thumb is not None else None,
    }
    write_json_atomic(json_path, json.dumps(sidecar))
    if os.path.exists(_failure_path(job.staging_dir, job.unit)):
        os.remove(_failure_path(job.staging_dir, job.unit))
    return sidecar
