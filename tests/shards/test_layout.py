"""Segments from staged frames, and shards from segments: deterministic, mixed, nothing lost."""

from __future__ import annotations

from wtpipe.shards.layout import FrameRef, assign_shards, cut_segments


def refs(times: list[float]) -> list[FrameRef]:
    return [FrameRef("u.tar", 1000 * i, 100, round(t * 4), t) for i, t in enumerate(times)]


def grid_index(pts: int) -> int:
    return pts


def test_segments_are_cut_at_length_dead_footage_and_gaps():
    times = [i / 4 for i in range(20)] + [10 + i / 4 for i in range(6)]  # a 5 s gap after frame 19
    frames = refs(times)
    dead = [False] * len(frames)
    dead[5:8] = [True] * 3
    segments = cut_segments("walk", frames, dead, grid_index, segment_frames=8, period=0.25)
    assert [len(s.frames) for s in segments] == [5, 8, 4, 6]
    assert [s.key for s in segments] == [
        "walk_00000000",
        "walk_00000008",
        "walk_00000016",
        "walk_00000040",
    ]
    assert sum(len(s.frames) for s in segments) == len(frames) - 3


def test_shards_are_a_seeded_round_robin_of_shuffled_segments():
    frames = refs([i / 4 for i in range(400)])
    segments = cut_segments("a", frames[:200], [False] * 200, grid_index, 10, 0.25)
    segments += cut_segments("b", frames[200:], [False] * 200, grid_index, 10, 0.25)
    shards = assign_shards(segments, shard_bytes=10_000, min_shards=2, seed=0)
    assert len(shards) == 4  # 40 000 bytes of frames at 10 000 per shard
    assert sorted(s.key for shard in shards for s in shard) == sorted(s.key for s in segments)
    assert all({s.video_id for s in shard} == {"a", "b"} for shard in shards)
    assert assign_shards(list(reversed(segments)), 10_000, 2, seed=0) == shards
    assert assign_shards(segments, 10_000, 2, seed=1) != shards
    assert len(assign_shards(segments, 10**9, min_shards=8, seed=0)) == 8
