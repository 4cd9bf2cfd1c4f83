"""Decode one work unit and hand over only the frames on the stored grid, resized and upright.

Decoding 4K is the cost that cannot be avoided; converting to RGB is nearly as expensive and
*can* be: frames stay in the decoder's YUV until the grid keeps them, and then the converter
resizes and converts in one pass (``VideoFrame.reformat``). Data errors in the stream (a
corrupt packet) are counted and skipped as a player would; anything else propagates so the
unit is retried on the next run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from wtpipe.video import BACKENDS  # noqa: F401  (re-exported)
from wtpipe.video.grid import FrameGrid
from wtpipe.video.probe import VideoInfo, describe_error
from wtpipe.video.units import Unit

DECORD_CODECS = ("h264", "hevc")


@dataclass
class DecodeStats:
    """What a unit's decode saw, for progress and for the problem report."""

    source_frames: int = 0
    decode_errors: int = 0
    first_error: str = ""
    last_pts: int | None = None

    def saw(self, pts: int, unit: Unit) -> None:
        """Count a decoded frame the unit owns (frames read past its end serve only its grid)."""
        if unit.end is None or pts < unit.end:
            self.source_frames += 1
        self.last_pts = pts if self.last_pts is None else max(self.last_pts, pts)


def stored_size(info: VideoInfo, short_side: int) -> tuple[int, int]:
    """Coded-orientation (width, height) whose upright short side is ``short_side`` (even, no upscaling)."""
    w, h = info.width, info.height
    scale = min(1.0, short_side / min(w, h))
    return max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)


class StoredFrameConverter:
    """Area-resize in the decoder's YUV, then convert the small frame to RGB.

    Only the stored pixels reach the colour converter, and both scaler contexts are kept for
    the whole unit: together about five times cheaper per 4K frame than a fresh
    ``frame.reformat(..., format="rgb24")``.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._resize = VideoReformatter()
        self._to_rgb = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        small = self._resize.reformat(
            frame, width=self.width, height=self.height, interpolation="AREA", threads=1
        )
        return self._to_rgb.reformat(small, format="rgb24", threads=1).to_ndarray()


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply the container's display rotation (counter-clockwise degrees)."""
    if rotation == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))


def decode_unit(
    info: VideoInfo,
    unit: Unit,
    short_side: int,
    fps_out: Fraction,
    threads: int,
    backend: str,
    stats: DecodeStats,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(pts, rgb)`` of the grid frames that ``unit`` owns, in pts order."""
    if backend == "pyav":
        yield from _decode_pyav(info, unit, short_side, fps_out, threads, stats)
    elif backend == "decord":
        yield from _decode_decord(info, unit, short_side, fps_out, threads, stats)
    else:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def _decode_pyav(
    info: VideoInfo,
    unit: Unit,
    short_side: int,
    fps_out: Fraction,
    threads: int,
    stats: DecodeStats,
) -> Iterator[tuple[int, np.ndarray]]:
    grid = FrameGrid(info.first_pts, info.time_base, fps_out)
    convert = StoredFrameConverter(*stored_size(info, short_side))
    with av.open(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        if unit.start > info.first_pts:
            container.seek(unit.start, stream=stream, backward=True, any_frame=False)
        frames = _FrameStream(container, stream, info, stats)
        for pts, keep in grid.select(frames, unit.start, unit.end):
            frame = frames.current
            stats.saw(pts, unit)
            if keep:
                yield pts, upright(convert(frame), info.rotation)


class _FrameStream:
    """Iterate decoded frames' pts (corrupt packets counted and skipped), keeping the frame at hand."""

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        info: VideoInfo,
        stats: DecodeStats,
    ) -> None:
        self._packets = container.demux(stream)
        self._info, self._stats = info, stats
        self.current: av.VideoFrame | None = None

    def __iter__(self) -> Iterator[int]:
        for packet in self._packets:
            try:
                frames = packet.decode()
            except av.error.InvalidDataError as err:
                self._stats.decode_errors += 1
                if not self._stats.first_error:
                    when = (
                        self._info.seconds(packet.pts) if packet.pts is not None else float("nan")
                    )
                    self._stats.first_error = (
                        f"decode error near {when:.2f}s: {describe_error(err)}"
                    )
                continue
            for frame in frames:
                if frame.pts is not None:
                    self.current = frame
                    yield int(frame.pts)


def _decode_decord(
    info: VideoInfo,
    unit: Unit,
    short_side: int,
    fps_out: Fraction,
    threads: int,
    stats: DecodeStats,
) -> Iterator[tuple[int, np.ndarray]]:
    """decord resizes at open (its full-size batches leak memory) and reads frames by index."""
    if info.codec not in DECORD_CODECS:
        raise ValueError(
            f"decord backend reads only {'/'.join(DECORD_CODECS)}, not {info.codec}; "
            "use --backend pyav"
        )
    import decord

    grid = FrameGrid(info.first_pts, info.time_base, fps_out)
    width, height = stored_size(info, short_side)
    reader = decord.VideoReader(
        info.path, ctx=decord.cpu(0), width=width, height=height, num_threads=threads
    )
    seconds = reader.get_frame_timestamp(np.arange(len(reader)))[:, 0]
    pts_of = [info.first_pts + round(Fraction(float(s)) / info.time_base) for s in seconds]
    index_of = {p: i for i, p in enumerate(pts_of)}
    keep: list[tuple[int, int]] = []
    for pts, kept in grid.select(pts_of, unit.start, unit.end):
        stats.saw(pts, unit)
        if kept:
            keep.append((index_of[pts], pts))
    for chunk in range(0, len(keep), 16):
        batch = keep[chunk : chunk + 16]
        arrays = reader.get_batch([i for i, _ in batch]).asnumpy()
        for (_, pts), rgb in zip(batch, arrays):
            yield pts, upright(rgb, info.rotation)
