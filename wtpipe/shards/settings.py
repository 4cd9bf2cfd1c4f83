"""Build settings: everything that changes the bytes of the shards, and nothing else."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from typing import Any

from wtpipe.shards import FRAME_FORMATS
from wtpipe.video import BACKENDS
from wtpipe.video.dead import DeadThresholds


@dataclass(frozen=True)
class BuildSettings:
    fps: str = "4"  # stored frames per second, as a number or a fraction like 30000/1001
    short_side: int = 320  # stored frame size (short side, pixels; never upscaled)
    segment_seconds: float = 16.0  # longest run of consecutive stored frames in one sample
    frame_format: str = "jpg"
    jpeg_quality: int = 90
    shard_mb: float = 1024.0  # target shard size
    min_shards: int = 1
    unit_seconds: float = 300.0  # work-unit length: a long video is decoded by many workers
    backend: str = "pyav"
    keep_dead: bool = False
    blank_std: float = 4.0
    frozen_change: float = 0.5
    dead_min_seconds: float = 5.0
    seed: int = 0  # shard mixing

    def __post_init__(self) -> None:
        problems = []
        try:
            if self.fps_out <= 0:
                problems.append(f"fps must be positive, got {self.fps}")
        except (ValueError, ZeroDivisionError):
            problems.append(f"fps must be a number or a fraction like 30000/1001, got {self.fps!r}")
        for name in ("short_side", "segment_seconds", "shard_mb", "min_shards", "unit_seconds"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if not 1 <= self.jpeg_quality <= 100:
            problems.append(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.frame_format not in FRAME_FORMATS:
            problems.append(
                f"frame_format must be one of {', '.join(FRAME_FORMATS)}, got {self.frame_format!r}"
            )
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def fps_out(self) -> Fraction:
        return Fraction(self.fps).limit_denominator(100_000)

    @property
    def segment_frames(self) -> int:
        return max(1, round(self.segment_seconds * float(self.fps_out)))

    @property
    def staged_quality(self) -> int:
        """JPEG frames are staged at their final quality; mp4 clips are encoded from near-lossless ones."""
        return self.jpeg_quality if self.frame_format == "jpg" else 95

    @property
    def dead_limits(self) -> DeadThresholds:
        return DeadThresholds(self.blank_std, self.frozen_change, self.dead_min_seconds)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown build settings: {', '.join(unknown)}")
        return cls(**data)

    def differences(self, other: BuildSettings) -> list[str]:
        """Human-readable ``name: old -> new`` for every setting that differs."""
        mine, theirs = self.to_json(), other.to_json()
        return [f"{k}: {mine[k]} -> {theirs[k]}" for k in mine if mine[k] != theirs[k]]
