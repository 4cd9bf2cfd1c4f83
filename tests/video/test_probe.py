"""probe(): what a video holds, and a one-line reason when it cannot be ingested."""

from __future__ import annotations

import pytest

from wtpipe.video.probe import ProbeError, probe


@pytest.mark.parametrize(
    "kind, codec, size",
    [
        ("h264_4k", "h264", (3840, 2160)),
        ("hevc_4k", "hevc", (3840, 2160)),
        ("hevc10", "hevc", (1280, 720)),
        ("vp9", "vp9", (640, 272)),
        ("av1", "libdav1d", (640, 272)),
        ("odd_size", "vp9", (853, 480)),
    ],
)
def test_probe_reports_codec_size_and_rate(media, kind, codec, size):
    info = probe(media(kind))
    assert info.codec == codec
    assert (info.width, info.height) == size
    assert info.fps > 0 and info.duration_s > 0
    assert info.rotation == 0


def test_probe_reads_ten_bit_pixel_format(media):
    assert "10" in probe(media("hevc10")).pix_fmt


def test_probe_reads_rotation_and_upright_size(media):
    info = probe(media("rotated"))
    assert info.rotation == 90
    assert info.display_size == (272, 640)


def test_probe_does_not_trust_header_frame_count(sources):
    info = probe(sources["tree.avi"])  # header claims 444 frames; 68 decode
    assert info.codec == "cinepak" and info.frames_declared == 444


def test_probe_old_codecs(sources):
    assert probe(sources["vtest.avi"]).codec == "msmpeg4"


@pytest.mark.parametrize(
    "name, message",
    [
        ("zero_bytes", "empty file (0 bytes)"),
        ("random_bytes", "not a readable video file"),
        ("still_image", "still image"),
        ("audio_only", "no video stream (only audio streams)"),
        ("missing", "no such file"),
    ],
)
def test_bad_inputs_give_one_clear_line(bad, name, message):
    with pytest.raises(ProbeError) as caught:
        probe(bad[name])
    text = str(caught.value)
    assert text.startswith(bad[name]) and message in text and "\n" not in text
