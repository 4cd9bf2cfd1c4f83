"""Probe a video file with PyAV: what it holds, and whether wtpipe can ingest it.

Probing decodes exactly one frame. Headers lie (frame counts, durations), so the first decoded
frame's pts anchors the stored-frame grid and proves the stream really decodes.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import av

# Demuxers that read single pictures: a still image is not footage.
_IMAGE_FORMATS = {
    "image2",
    "image2pipe",
    "png_pipe",
    "jpeg_pipe",
    "webp_pipe",
    "gif",
    "bmp_pipe",
    "tiff_pipe",
    "apng",
    "jpegxl_pipe",
    "pgm_pipe",
    "ppm_pipe",
    "qoi_pipe",
}


class ProbeError(Exception):
    """A file that cannot be ingested; ``str()`` is one line naming the file and the problem."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)  # both in args, so it survives pickling between processes
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass(frozen=True)
class VideoInfo:
    """What ingestion needs to know about one video stream (all times in stream ticks)."""

    path: str
    container: str
    codec: str
    pix_fmt: str
    width: int  # coded size, before rotation
    height: int
    rotation: int  # counter-clockwise degrees to display upright: 0, 90, 180 or 270
    fps_num: int  # average frame rate as a fraction
    fps_den: int
    tb_num: int  # stream time base as a fraction
    tb_den: int
    first_pts: int  # pts of the first decoded frame: the origin of the stored-frame grid
    duration_s: float  # as the container declares it (may lie)
    frames_declared: int  # as the header declares it (often lies)
    keyframes_indexed: int  # keyframes in the container index (0 when it has none)

    @property
    def fps(self) -> Fraction:
        return Fraction(self.fps_num, self.fps_den)

    @property
    def time_base(self) -> Fraction:
        return Fraction(self.tb_num, self.tb_den)

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown to a viewer, i.e. after rotation."""
        return (
            (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)
        )

    def seconds(self, pts: int) -> float:
        """Time of ``pts`` from the first frame, in seconds."""
        return float((pts - self.first_pts) * self.time_base)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VideoInfo:
        return cls(**data)


def describe_error(err: BaseException) -> str:
    """One line for an error, without FFmpeg's errno and file-name noise."""
    text = getattr(err, "strerror", None) if isinstance(err, av.FFmpegError) else None
    return " ".join(str(text or err).split()) or type(err).__name__


def probe(path: str) -> VideoInfo:
    """Probe ``path``; raise :class:`ProbeError` with a clear reason if it is not ingestible."""
    if not os.path.exists(path):
        raise ProbeError(path, "no such file")
    if not os.path.isfile(path):
        raise ProbeError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise ProbeError(path, "empty file (0 bytes)")
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise ProbeError(path, f"not a readable video file ({describe_error(err)})") from None
    with container:
        return _probe_open(path, container)


def _probe_open(path: str, container: av.container.InputContainer) -> VideoInfo:
    fmt = container.format.name
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        what = f"only {'/'.join(kinds)} streams" if kinds else "no streams"
        raise ProbeError(path, f"no video stream ({what})")
    stream = container.streams.video[0]
    codec = stream.codec_context.name
    if fmt in _IMAGE_FORMATS or fmt.split(",")[0] in _IMAGE_FORMATS:
        raise ProbeError(path, f"still image ({fmt}/{codec}), not a video")
    try:
        frame = next(container.decode(stream))
    except StopIteration:
        raise ProbeError(path, f"no decodable frame ({codec}); truncated or corrupt") from None
    except av.FFmpegError as err:
        raise ProbeError(path, f"cannot decode {codec} video ({describe_error(err)})") from None
    if frame.pts is None:
        raise ProbeError(path, f"{codec} frames carry no timestamps")
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise ProbeError(path, "no usable frame rate")
    time_base = stream.time_base or Fraction(1, 1_000_000)
    if stream.duration is not None:
        duration = float(stream.duration * time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = 0.0
    if duration <= 0:
        raise ProbeError(path, "unknown or zero duration")
    if stream.frames == 1:
        raise ProbeError(path, f"still image ({fmt}/{codec}), not a video")
    try:
        keyframes = sum(1 for entry in stream.index_entries if entry.is_keyframe)
    except (AttributeError, av.FFmpegError):
        keyframes = 0
    return VideoInfo(
        path=os.path.abspath(path),
        container=fmt,
        codec=codec,
        pix_fmt=stream.codec_context.pix_fmt or "",
        width=frame.width,
        height=frame.height,
        rotation=int(round(frame.rotation or 0)) % 360,
        fps_num=rate.numerator,
        fps_den=rate.denominator,
        tb_num=time_base.numerator,
        tb_den=time_base.denominator,
        first_pts=int(frame.pts),
        duration_s=duration,
        frames_declared=int(stream.frames or 0),
        keyframes_indexed=keyframes,
    )
