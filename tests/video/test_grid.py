"""FrameGrid: the first frame at or after each grid point, each frame at most once, exactly."""

from __future__ import annotations

from fractions import Fraction

from wtpipe.video.grid import FrameGrid


def reference(times: list[Fraction], fps: Fraction) -> list[Fraction]:
    kept, k = [], 0
    for t in times:
        if k / fps <= t:
            kept.append(t)
            while k / fps <= t:
                k += 1
    return kept


def select(pts: list[int], tb: Fraction, fps: Fraction, cuts: tuple[int, ...] = ()) -> list[int]:
    """Frames kept when the video is split at ``cuts`` (pts values of frames), joined without repeats."""
    grid = FrameGrid(pts[0], tb, fps)
    bounds = [pts[0], *cuts, None]
    out: list[int] = []
    for start, end in zip(bounds, bounds[1:]):
        out.extend(
            p for p, keep in grid.select(pts, start, end) if keep and (not out or p > out[-1])
        )
    return out


def test_ntsc_source_to_integer_rate_matches_reference():
    tb = Fraction(1, 30000)
    pts = [1001 * i + 500 for i in range(3000)]  # 29.97 fps with a non-zero start
    kept = select(pts, tb, Fraction(4))
    assert [(p - 500) * tb for p in kept] == reference([(p - 500) * tb for p in pts], Fraction(4))
    assert len(kept) == 401  # 100.1 s at 4 fps, both ends included


def test_output_faster_than_source_keeps_every_frame_once():
    pts = list(range(0, 1000, 40))  # 25 fps in ms
    assert select(pts, Fraction(1, 1000), Fraction(60)) == pts


def test_variable_frame_rate_matches_reference():
    steps = [40, 160, 100, 60, 100, 140, 80, 120]
    pts = [sum(steps[j % 8] for j in range(i)) for i in range(200)]
    tb, fps = Fraction(1, 1000), Fraction(5)
    assert [p * tb for p in select(pts, tb, fps)] == reference([p * tb for p in pts], fps)


def test_splitting_at_any_frame_changes_nothing():
    steps = [40, 160, 100, 60, 100, 140, 80, 120, 400, 40]
    pts = [sum(steps[j % 10] for j in range(i)) for i in range(120)]
    tb, fps = Fraction(1, 1000), Fraction(3)
    whole = select(pts, tb, fps)
    for cuts in [(pts[7],), (pts[8], pts[9], pts[50]), tuple(pts[1::11])]:
        assert select(pts, tb, fps, cuts) == whole


def test_a_unit_sees_its_frames_and_keeps_its_grid_points():
    grid = FrameGrid(0, Fraction(1, 10), Fraction(1))  # 10 fps source, 1 fps grid
    seen = list(grid.select(range(100), 5, 25))
    assert [p for p, _ in seen] == list(range(5, 25))
    assert [p for p, keep in seen if keep] == [10, 20]  # grid points 10 and 20 lie in [5, 25)


def test_a_unit_reads_past_its_end_to_serve_its_last_grid_point():
    grid = FrameGrid(0, Fraction(1, 10), Fraction(1))
    pts = [0, 3, 7, 12, 30, 31]  # nothing between 12 and 30: grid point 20 is served by frame 30
    assert [p for p, keep in grid.select(pts, 0, 25) if keep] == [0, 12, 30]


def test_index_is_exact_for_long_videos():
    # 3 hours of 60000/1001 fps in a 1/90000 time base: no float drift.
    grid = FrameGrid(0, Fraction(1, 90000), Fraction(60000, 1001))
    last = 3 * 3600 * 90000
    assert grid.index(last) == (last * 60000) // (90000 * 1001)
