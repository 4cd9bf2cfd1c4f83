"""What the manifest and every sample's JSON say about a build, its videos and its shards."""

from __future__ import annotations

from typing import Any

from wtpipe import __version__
from wtpipe.shards.layout import DeadRange, Segment
from wtpipe.shards.settings import BuildSettings
from wtpipe.video.decode import stored_size
from wtpipe.video.probe import VideoInfo


def _source(info: VideoInfo) -> dict[str, Any]:
    return {
        "path": info.path,
        "container": info.container,
        "codec": info.codec,
        "fps": round(float(info.fps), 6),
        "width": info.display_size[0],
        "height": info.display_size[1],
        "rotation": info.rotation,
        "duration_s": round(info.duration_s, 3),
    }


def sample_header(info: VideoInfo, settings: BuildSettings) -> dict[str, Any]:
    """The part of a sample's JSON that all samples of one video share: source and stored format."""
    width, height = stored_size(info, settings.short_side)
    if info.rotation in (90, 270):
        width, height = height, width
    return {
        "source": _source(info),
        "stored": {
            "fps": str(settings.fps_out),
            "width": width,
            "height": height,
            "format": settings.frame_format,
            "quality": settings.jpeg_quality,
        },
    }


def video_entry(
    video_id: str,
    info: VideoInfo,
    settings: BuildSettings,
    segments: list[Segment],
    dead: list[DeadRange],
    frames_decoded: int,
    decoded_until_s: float,
) -> dict[str, Any]:
    """One video's line in the manifest: source facts, what was stored, what was dead."""
    return {
        "id": video_id,
        **_source(info),
        "frames_declared": info.frames_declared,
        "frames_decoded": frames_decoded,
        "decoded_until_s": round(decoded_until_s, 3),
        "frames_stored": sum(len(s.frames) for s in segments),
        "segments": len(segments),
        "dead": [d.to_json() for d in dead],
        "dead_s": round(sum(d.end_s - d.start_s for d in dead), 3),
        "dead_kept": settings.keep_dead,
    }


def build_manifest(
    settings: BuildSettings,
    inputs: list[str],
    shards: list[dict[str, Any]],
    videos: list[dict[str, Any]],
    failures: list[dict[str, str]],
) -> dict[str, Any]:
    stored = sum(v["frames_stored"] for v in videos)
    total_bytes = sum(s["bytes"] for s in shards)
    return {
        "wtpipe": __version__,
        "settings": settings.to_json(),
        "inputs": inputs,
        "totals": {
            "videos": len(videos),
            "shards": len(shards),
            "samples": sum(s["samples"] for s in shards),
            "frames": stored,
            "bytes": total_bytes,
            "source_hours": round(sum(v["duration_s"] for v in videos) / 3600, 4),
            "stored_hours": round(stored / float(settings.fps_out) / 3600, 4),
            "dead_hours": round(sum(v["dead_s"] for v in videos) / 3600, 4),
            "bytes_per_frame": round(total_bytes / stored, 1) if stored else 0.0,
        },
        "shards": shards,
        "videos": videos,
        "failures": failures,
    }
