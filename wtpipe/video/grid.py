"""The stored-frame grid: which decoded frames are kept when storing at a lower frame rate.

Grid points lie at ``k / fps_out`` seconds after the first frame. For every grid point the
first frame at or after it is kept; a frame that serves several grid points (a gap in a
variable-rate stream) is kept once. A work unit owns the grid points in its ``[start, end)``
range, so the choice does not depend on how a video is split. Integer arithmetic only: exact
and identical on every machine, even for hours of 60000/1001 fps video.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction


class FrameGrid:
    def __init__(self, first_pts: int, time_base: Fraction, fps_out: Fraction) -> None:
        scale = time_base * fps_out  # grid points per pts tick
        self._num, self._den = scale.numerator, scale.denominator
        self._origin = first_pts

    def index(self, pts: int) -> int:
        """Number of the last grid point at or before ``pts``."""
        return ((pts - self._origin) * self._num) // self._den

    def first_at_or_after(self, pts: int) -> int:
        """Number of the first grid point at or after ``pts``."""
        return self.index(pts - 1) + 1

    def select(
        self, pts_in_order: Iterable[int], start: int, end: int | None
    ) -> Iterator[tuple[int, bool]]:
        """For frames in pts order, yield ``(pts, keep)`` while grid points in ``[start, end)`` remain.

        Frames before ``start`` are not yielded; every frame in ``[start, end)`` is. The last frame
        kept may lie at or after ``end``: the first frame at or after the unit's last grid point.
        """
        want = self.first_at_or_after(start)
        last = None if end is None else self.index(end - 1)
        for pts in pts_in_order:
            if pts < start:
                continue
            served = last is not None and want > last
            if served and pts >= end:
                return
            keep = not served and self.index(pts) >= want
            if keep:
                want = self.index(pts) + 1
            yield pts, keep
