"""decode_unit(): grid frames only, resized and upright, identical for any split into units."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from wtpipe.video.decode import DecodeStats, decode_unit, stored_size
from wtpipe.video.probe import probe
from wtpipe.video.units import plan_units

from ..conftest import reference_grid_times


def decode_all(
    path: str, unit_seconds: float, fps: Fraction, backend: str = "pyav", short_side: int = 160
):
    info = probe(path)
    out = []
    for unit in plan_units(info, "v", unit_seconds):
        out.extend(decode_unit(info, unit, short_side, fps, 1, backend, DecodeStats()))
    return info, out


@pytest.mark.parametrize("kind", ["short_gop", "h264_4k", "vfr"])
def test_kept_frames_match_an_independent_decode(media, kind):
    path = media(kind)
    info, frames = decode_all(path, unit_seconds=0.5, fps=Fraction(3))
    assert [round(info.seconds(p), 6) for p, _ in frames] == pytest.approx(
        reference_grid_times(path, Fraction(3))
    )


def test_any_split_gives_the_same_frames(media):
    path = media("short_gop")
    _, whole = decode_all(path, unit_seconds=1000, fps=Fraction(2))
    _, split = decode_all(path, unit_seconds=3, fps=Fraction(2))
    assert [p for p, _ in whole] == [p for p, _ in split]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(whole, split))


def test_frames_are_resized_to_the_short_side(media):
    info, frames = decode_all(media("h264_4k"), 1000, Fraction(2), short_side=288)
    assert stored_size(info, 288) == (512, 288)
    assert frames[0][1].shape == (288, 512, 3)


def test_pixels_match_the_source_frame(media):
    path = media("short_gop")
    info, frames = decode_all(path, 1000, Fraction(1), short_side=288)
    with av.open(path) as container:
        ref = {f.pts: f.to_ndarray(format="rgb24") for f in container.decode(video=0)}
    for pts, rgb in frames[:5]:
        diff = np.abs(rgb.astype(float) - ref[pts].astype(float)).mean()
        assert diff < 3.0  # same size (288 short side): only the converter differs


def test_rotation_metadata_is_honoured(media, sources):
    _, rotated = decode_all(media("rotated"), 1000, Fraction(25), short_side=272)
    with av.open(sources["bikes.mp4"]) as container:
        original = next(container.decode(video=0)).to_ndarray(format="rgb24")
    first = rotated[0][1]
    assert first.shape == (640, 272, 3)
    upright = np.rot90(original, k=1)  # 90 degrees counter-clockwise, as the display matrix says
    assert np.abs(first.astype(float) - upright.astype(float)).mean() < 5
    assert np.abs(first.astype(float) - np.rot90(original, k=3).astype(float)).mean() > 15


def test_decord_backend_keeps_the_same_frames(media):
    pytest.importorskip("decord")
    path = media("short_gop")
    _, by_pyav = decode_all(path, 5, Fraction(2))
    _, by_decord = decode_all(path, 5, Fraction(2), backend="decord")
    assert [p for p, _ in by_pyav] == [p for p, _ in by_decord]
    assert np.abs(by_pyav[3][1].astype(float) - by_decord[3][1].astype(float)).mean() < 6


def test_decord_backend_refuses_codecs_it_cannot_read(media):
    info = probe(media("av1"))
    unit = plan_units(info, "v", 1000)[0]
    with pytest.raises(ValueError, match="decord backend reads only h264/hevc"):
        list(decode_unit(info, unit, 160, Fraction(2), 1, "decord", DecodeStats()))


def test_corrupt_packets_are_counted_and_skipped(media):
    info = probe(media("corrupt_middle"))
    stats = DecodeStats()
    frames = [
        f
        for u in plan_units(info, "v", 1000)
        for f in decode_unit(info, u, 160, Fraction(2), 1, "pyav", stats)
    ]
    assert stats.decode_errors > 0 and "decode error near" in stats.first_error
    assert len(frames) > 60  # the rest of the 36 s video is still there
