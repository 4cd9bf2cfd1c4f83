"""ShardBuilder: real videos in every codec become verified, mixed, reproducible shards."""

from __future__ import annotations

import json
import os
from fractions import Fraction

import numpy as np
import pytest
import webdataset as wds

from wtpipe.shards.build import BuildError, ShardBuilder
from wtpipe.shards.read import iter_samples, load_manifest
from wtpipe.shards.settings import BuildSettings
from wtpipe.shards.verify import verify

from ..conftest import reference_grid_times, shard_names

CODEC_KINDS = ["h264_4k", "hevc_4k", "hevc10", "vp9", "av1", "odd_size", "rotated", "vfr"]


def samples_by_video(out: str) -> dict[str, list]:
    videos: dict[str, list] = {}
    for name in shard_names(out):
        for sample in iter_samples(os.path.join(out, name)):
            videos.setdefault(sample.meta["video_id"], []).append(sample)
    for samples in videos.values():
        samples.sort(key=lambda s: s.meta["pts"][0])
    return videos


@pytest.fixture(scope="module")
def codec_build(tmp_path_factory, sources):
    from wtpipe.demo import media as testmedia

    paths = [testmedia.derived(k) for k in CODEC_KINDS] + [
        sources["tree.avi"],
        sources["vtest.avi"],
    ]
    out = str(tmp_path_factory.mktemp("codecs") / "shards")
    report = ShardBuilder(
        paths,
        out,
        BuildSettings(fps="5", short_side=192, segment_seconds=2, min_shards=4, unit_seconds=0.5),
        workers=2,
        progress=False,
    ).run()
    return paths, out, report


def test_every_codec_is_ingested_with_the_reference_frames(codec_build):
    paths, out, report = codec_build
    assert report.problems == []
    by_video = samples_by_video(out)
    manifest = load_manifest(out)
    for path, video in zip(paths, manifest["videos"]):
        stored = [t for s in by_video[video["id"]] for t in s.meta["pts"]]
        assert stored == pytest.approx(reference_grid_times(path, Fraction(5)), abs=1e-5), path
        assert video["frames_stored"] == len(stored)


def test_samples_are_segments_of_consecutive_frames(codec_build):
    _, out, _ = codec_build
    for samples in samples_by_video(out).values():
        for sample in samples:
            frames = sample.frames()
            assert len(frames) == sample.meta["frames"] == len(sample.meta["pts"]) <= 10
            assert sample.meta["pts"] == sorted(sample.meta["pts"])
            assert frames[0].shape[:2] == (
                sample.meta["stored"]["height"],
                sample.meta["stored"]["width"],
            )
            assert min(frames[0].shape[:2]) <= 192 and "." not in sample.key


def test_header_frame_count_lies_are_ignored(codec_build):
    _, out, _ = codec_build
    tree = next(v for v in load_manifest(out)["videos"] if v["id"] == "tree")
    assert tree["frames_declared"] == 444 and tree["frames_decoded"] == 68


def test_shards_mix_videos_and_verify(codec_build):
    _, out, _ = codec_build
    manifest = load_manifest(out)
    assert len(manifest["shards"]) == 4
    for name in shard_names(out):
        videos = {s.meta["video_id"] for s in iter_samples(os.path.join(out, name))}
        assert len(videos) >= 3
    assert verify(out, progress=False) == []


def test_webdataset_reads_the_shards(codec_build):
    _, out, _ = codec_build
    urls = [os.path.join(out, n) for n in shard_names(out)]
    samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("rgb8"))
    assert len(samples) == load_manifest(out)["totals"]["samples"]
    sample = samples[0]
    meta = sample["json"]
    assert sum(1 for k in sample if k.endswith(".jpg")) == meta["frames"]
    assert sample["000000.jpg"].dtype == np.uint8


def test_rebuild_is_byte_identical_whatever_the_worker_count(codec_build, build):
    paths, out, _ = codec_build
    _, again = build(
        paths, workers=1, fps="5", short_side=192, segment_seconds=2, min_shards=4, unit_seconds=30
    )
    names = shard_names(out)
    assert names == shard_names(again)
    for name in [*names, "manifest.json"]:
        with open(os.path.join(out, name), "rb") as a, open(os.path.join(again, name), "rb") as b:
            if name == "manifest.json":
                ma, mb = json.load(a), json.load(b)
                assert ma["shards"] == mb["shards"] and ma["videos"] == mb["videos"]
            else:
                assert a.read() == b.read(), name


def test_bad_inputs_are_reported_and_good_ones_ingested(build, bad, media, sources):
    broken = [media("truncated"), media("corrupt_middle"), *bad.values()]
    report, out = build([sources["bikes.mp4"], *broken], fps="2")
    failed = {f["path"]: f["problem"] for f in load_manifest(out)["failures"]}
    assert set(failed) == set(broken)
    assert "truncated" in failed[media("truncated")]
    assert "corrupt packet" in failed[media("corrupt_middle")]
    assert "empty file" in failed[bad["zero_bytes"]]
    assert "still image" in failed[bad["still_image"]]
    assert "no video stream" in failed[bad["audio_only"]]
    assert "no such file" in failed[bad["missing"]]
    assert "not a readable video" in failed[bad["random_bytes"]]
    bikes = next(v for v in load_manifest(out)["videos"] if v["id"] == "bikes")
    assert bikes["frames_stored"] == 20  # all of the good 10 s clip at 2 fps
    assert verify(out, progress=False) == []


def test_dead_footage_is_left_out_and_reported(build, media):
    report, out = build([media("dead")], fps="2")
    video = load_manifest(out)["videos"][0]
    reasons = {d["reason"]: (d["start_s"], d["end_s"]) for d in video["dead"]}
    assert reasons["blank"] == pytest.approx((8.0, 16.0), abs=0.6)
    assert reasons["frozen"][0] == pytest.approx(24.0, abs=1.6) and reasons["frozen"][
        1
    ] == pytest.approx(32.0, abs=0.6)
    times = [t for s in samples_by_video(out)["vtest-dead"] for t in s.meta["pts"]]
    assert not [t for t in times if 8.5 < t < 15.5 or 25.5 < t < 31.5]
    assert len(times) == video["frames_stored"] < 72


def test_keep_dead_keeps_everything_but_still_reports(build, media):
    _, out = build([media("dead")], fps="2", keep_dead=True)
    video = load_manifest(out)["videos"][0]
    assert video["frames_stored"] == 72 and len(video["dead"]) == 2 and video["dead_kept"]


def test_changed_settings_are_refused_then_overwrite_rebuilds(build, sources):
    _, out = build([sources["bikes.mp4"]], fps="2")
    with pytest.raises(BuildError, match=r"other settings \(fps: 2 -> 3\)"):
        build([sources["bikes.mp4"]], out=out, fps="3")
    report = ShardBuilder(
        [sources["bikes.mp4"]], out, BuildSettings(fps="3"), overwrite=True, progress=False
    ).run()
    assert report.manifest["totals"]["frames"] == 30


def test_rerun_of_a_finished_build_does_nothing(build, sources):
    _, out = build([sources["bikes.mp4"]], fps="2")
    before = {n: os.path.getmtime(os.path.join(out, n)) for n in os.listdir(out)}
    report, _ = build([sources["bikes.mp4"]], out=out, fps="2")
    assert report.source_frames == 0
    assert before == {n: os.path.getmtime(os.path.join(out, n)) for n in os.listdir(out)}


def test_two_builds_cannot_share_an_output_directory(build, sources, tmp_path):
    import fcntl

    out = tmp_path / "shards"
    (out / ".work").mkdir(parents=True)
    with open(out / ".work" / "lock", "w") as held:  # another build holds the lock
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(BuildError, match="another build is running"):
            build([sources["bikes.mp4"]], out=str(out))
    report, _ = build([sources["bikes.mp4"]], out=str(out))  # free again: it goes ahead
    assert report.manifest["totals"]["frames"] == 40


def test_unwritable_output_is_one_clear_error(build, sources, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(BuildError, match="cannot write output directory"):
        build([sources["bikes.mp4"]], out=str(blocker / "shards"))


def test_mp4_segments_are_smaller_and_decode(build, sources):
    _, jpg = build([sources["vtest.avi"]], out=None, fps="2")
    _, mp4 = build([sources["vtest.avi"]], out=jpg + "-mp4", fps="2", frame_format="mp4")
    a, b = load_manifest(jpg)["totals"], load_manifest(mp4)["totals"]
    assert a["frames"] == b["frames"] and b["bytes"] < a["bytes"] / 3
    assert verify(mp4, progress=False) == []


def test_decord_backend_builds_the_same_frames(build, media):
    pytest.importorskip("decord")
    _, a = build([media("short_gop")], fps="2", unit_seconds=5)
    _, b = build([media("short_gop")], out=a + "-decord", fps="2", unit_seconds=5, backend="decord")
    assert load_manifest(a)["totals"]["frames"] == load_manifest(b)["totals"]["frames"] == 60


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="fps must be"):
        BuildSettings(fps="fast")
    with pytest.raises(ValueError, match="frame_format must be one of"):
        BuildSettings(frame_format="png")
    with pytest.raises(ValueError, match="unknown build settings: colour"):
        BuildSettings.from_json({"colour": 1})


def test_units_that_fail_are_reported_then_retried_on_rerun(build, media, sources, tmp_path):
    """A unit that cannot be read (here: the file vanished after planning) fails alone; the
    re-run with the file back finishes the job exactly as an uninterrupted build would."""
    import concurrent.futures as cf
    import shutil

    video = str(tmp_path / "walk.mp4")
    shutil.copy(media("short_gop"), video)
    settings = BuildSettings(fps="2", unit_seconds=5)
    _, reference = build(
        [video, sources["bikes.mp4"]], out=str(tmp_path / "ref"), fps="2", unit_seconds=5
    )

    out = str(tmp_path / "out")
    builder = ShardBuilder([video, sources["bikes.mp4"]], out, settings, workers=1, progress=False)
    builder.dir.prepare()
    with cf.ThreadPoolExecutor(1) as pool:
        builder._plan(pool)  # the plan is on disk, as after a kill
    os.rename(video, video + ".away")
    report = builder.run()
    failed = [p.problem for p in report.problems]
    assert len(failed) == 6 and all("re-run to retry" in p for p in failed)
    assert report.manifest["totals"]["frames"] == 20  # bikes alone, complete
    os.rename(video + ".away", video)
    report = ShardBuilder([video, sources["bikes.mp4"]], out, settings, progress=False).run()
    assert report.problems == []
    for name in [*shard_names(reference), "manifest.json"]:
        assert (
            open(os.path.join(out, name), "rb").read()
            == open(os.path.join(reference, name), "rb").read()
        )


def test_a_short_video_still_gives_every_worker_a_unit():
    from wtpipe.shards.build import unit_length
    from wtpipe.video.probe import probe
    from wtpipe.video.units import plan_units

    assert unit_length(300, 80, 2) == 40 and unit_length(300, 80, 16) == 10  # never below 10 s
    assert unit_length(5, 80, 2) == 5 and unit_length(300, 3600, 2) == 300
    sample = os.path.join(os.path.dirname(__file__), "..", "..", "wtpipe", "assets", "vtest.mp4")
    info = probe(sample)  # 80 s: one default 300-s unit would leave a second worker idle
    assert len(plan_units(info, "v", unit_length(300, info.duration_s, 2))) >= 2
