"""Manifest and sample-header contents: upright stored sizes, totals that add up."""

from __future__ import annotations

from wtpipe.shards.layout import DeadRange, FrameRef, Segment
from wtpipe.shards.manifest import build_manifest, sample_header, video_entry
from wtpipe.shards.settings import BuildSettings
from wtpipe.video.probe import probe


def test_sample_header_gives_the_upright_stored_size(media):
    header = sample_header(probe(media("rotated")), BuildSettings(short_side=136))
    assert header["source"]["rotation"] == 90
    assert (header["source"]["width"], header["source"]["height"]) == (272, 640)
    assert (header["stored"]["width"], header["stored"]["height"]) == (136, 320)


def test_totals_add_up(media):
    info = probe(media("short_gop"))
    settings = BuildSettings(fps="2")
    frames = tuple(FrameRef("x.tar", 0, 1000, i, i / 2) for i in range(10))
    segments = [Segment("v", "v_00000000", frames[:6]), Segment("v", "v_00000006", frames[6:])]
    video = video_entry("v", info, settings, segments, [DeadRange(10.0, 16.0, "blank")], 300, 30.0)
    shards = [
        {"name": "shard-000000.tar", "samples": 2, "frames": 10, "bytes": 20480, "sha256": "0" * 64}
    ]
    manifest = build_manifest(settings, [info.path], shards, [video], [])
    totals = manifest["totals"]
    assert video["frames_stored"] == 10 and video["segments"] == 2 and video["dead_s"] == 6.0
    assert totals["samples"] == 2 and totals["frames"] == 10 and totals["bytes_per_frame"] == 2048.0
    assert totals["stored_hours"] == round(10 / 2 / 3600, 4)
