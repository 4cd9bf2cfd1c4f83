"""plan_units(): keyframe-aligned units that tile the whole video."""

from __future__ import annotations

import av

from wtpipe.video.probe import probe
from wtpipe.video.units import plan_units


def keyframe_pts(path: str) -> set[int]:
    with av.open(path) as container:
        return {f.pts for f in container.decode(video=0) if f.key_frame}


def test_units_start_on_keyframes_and_tile_the_video(media):
    path = media("short_gop")
    info = probe(path)
    units = plan_units(info, "v", unit_seconds=5)
    assert len(units) >= 5
    assert units[0].start == info.first_pts and units[-1].end is None
    for a, b in zip(units, units[1:]):
        assert a.end == b.start
    assert {u.start for u in units} <= keyframe_pts(path)


def test_video_without_usable_keyframes_is_one_unit(sources):
    info = probe(sources["bigbuckbunny.mp4"])  # a single keyframe
    assert len(plan_units(info, "v", unit_seconds=1)) == 1
