"""Split one video into keyframe-aligned work units so many workers decode it at once.

Each unit owns the frames whose pts lie in ``[start, end)``. Boundaries are keyframe pts found
by seeking (cheap: one seek and one decoded frame per boundary), so a worker that seeks to its
start decodes nothing it throws away. Ownership is by pts, so a boundary that is not exactly a
keyframe costs a little decoding but never a lost or duplicated frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import av

from wtpipe.video.probe import VideoInfo


@dataclass(frozen=True)
class Unit:
    """Frames of ``video_id`` with pts in ``[start, end)``; ``end=None`` means to the end."""

    video_id: str
    index: int
    start: int
    end: int | None
    start_s: float
    end_s: float

    @property
    def name(self) -> str:
        return f"{self.video_id}-u{self.index:05d}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Unit:
        return cls(**data)


def keyframe_at_or_before(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, pts: int
) -> int | None:
    """pts of the keyframe a backward seek to ``pts`` lands on, or None.

    The first packet after the seek is that keyframe; its pts is read without decoding it. Only
    containers whose packets carry no pts (old AVI) need one decoded frame.
    """
    container.seek(pts, stream=stream, backward=True, any_frame=False)
    for packet in container.demux(stream):
        if packet.pts is not None:
            return int(packet.pts)
        if packet.dts is not None:
            break
    container.seek(pts, stream=stream, backward=True, any_frame=False)
    for frame in container.decode(stream):
        if frame.pts is not None:
            return int(frame.pts)
    return None


def plan_units(info: VideoInfo, video_id: str, unit_seconds: float) -> list[Unit]:
    """Cut ``info`` into units of about ``unit_seconds`` at keyframes."""
    ticks_per_unit = int(unit_seconds / info.time_base)
    starts = [info.first_pts]
    nominal = info.first_pts + ticks_per_unit
    last = info.first_pts + int(info.duration_s / info.time_base)
    if ticks_per_unit > 0 and nominal < last:
        with av.open(info.path) as container:
            stream = container.streams.video[0]
            while nominal < last:
                try:
                    found = keyframe_at_or_before(container, stream, nominal)
                except av.FFmpegError:
                    found = None
                if found is not None and found > starts[-1]:
                    starts.append(found)
                nominal += ticks_per_unit
    ends: list[int | None] = [*starts[1:], None]
    return [
        Unit(
            video_id,
            i,
            s,
            e,
            info.seconds(s),
            info.seconds(e) if e is not None else info.duration_s,
        )
        for i, (s, e) in enumerate(zip(starts, ends))
    ]
