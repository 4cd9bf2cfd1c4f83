"""The training stream: batches are a function of (seed, rank, step); bad shards are skipped."""

from __future__ import annotations

import os
import random
import shutil

import pytest
import torch

from wtpipe.data.clips import clip_indices
from wtpipe.data.index import ShardIndex
from wtpipe.data.loader import ClipDataset, StepBatchSampler, collate_views, make_loader
from wtpipe.data.transforms import MultiCrop, MultiCropSpec
from wtpipe.shards.read import load_manifest

SPEC = MultiCropSpec(global_size=64, local_size=32, local_crops=2)


def dino_views(frames):
    return MultiCrop(SPEC)(frames[0])


def first_batches(loader, count):
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == count:
            return out
    return out


def test_index_covers_every_sample(train_shards):
    index = ShardIndex.build(train_shards)
    assert len(index.samples) == load_manifest(train_shards)["totals"]["samples"]
    assert index.skipped == []


def test_truncated_and_missing_shards_are_skipped_and_counted(train_shards, tmp_path, caplog):
    copy = str(tmp_path / "copy")
    shutil.copytree(train_shards, copy)
    names = sorted(n for n in os.listdir(copy) if n.startswith("shard-"))
    with open(os.path.join(copy, names[0]), "r+b") as handle:
        handle.truncate(os.path.getsize(os.path.join(copy, names[0])) // 2)
    os.remove(os.path.join(copy, names[1]))
    index = ShardIndex.build(copy)
    assert len(index.skipped) == 2 and index.skipped[0].startswith(names[0])
    assert "skipping shard" in caplog.text
    batch = next(iter(make_loader(ClipDataset(index, 1, 1, dino_views), 4, 0, 0, 0, 0)))
    assert len(batch) == 4 and batch[0].shape == (4, 3, 64, 64)


def test_batches_depend_only_on_seed_rank_and_step():
    sampler = StepBatchSampler(100, 8, seed=3, rank=1)
    resumed = StepBatchSampler(100, 8, seed=3, rank=1, start_step=5)
    assert next(iter(resumed)) == sampler.batch(5)
    assert sampler.batch(5) != StepBatchSampler(100, 8, seed=3, rank=0).batch(5)


def test_workers_and_resume_give_bit_identical_batches(train_shards):
    dataset = ClipDataset(ShardIndex.build(train_shards), 1, 1, dino_views)
    plain = first_batches(make_loader(dataset, 3, 7, 0, 0, num_workers=0), 4)
    workers = first_batches(make_loader(dataset, 3, 7, 0, 0, num_workers=2), 4)
    resumed = first_batches(make_loader(dataset, 3, 7, 0, start_step=2, num_workers=2), 2)
    for a, b in zip(plain, workers):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    for a, b in zip(plain[2:], resumed):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(plain[0][0], plain[1][0])


def test_augmentation_does_not_touch_the_training_rng(train_shards):
    dataset = ClipDataset(ShardIndex.build(train_shards), 1, 1, dino_views)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    dataset[(0, 123)]
    assert torch.equal(torch.rand(3), expected)


def test_multicrop_views():
    views = MultiCrop(MultiCropSpec(local_crops=3))(
        torch.randint(0, 255, (3, 180, 320), dtype=torch.uint8)
    )
    assert [tuple(v.shape) for v in views] == [(3, 224, 224)] * 2 + [(3, 96, 96)] * 3
    assert collate_views([views, views])[0].shape == (2, 3, 224, 224)


@pytest.mark.parametrize("frames, length, gap", [(64, 8, 4), (10, 8, 4), (1, 8, 4), (64, 1, 1)])
def test_clips_fit_in_the_segment(frames, length, gap):
    for seed in range(20):
        picks = clip_indices(frames, length, gap, random.Random(seed))
        assert (
            len(picks) == length and all(0 <= p < frames for p in picks) and picks == sorted(picks)
        )
        if (length - 1) * gap < frames:
            assert all(b - a == gap for a, b in zip(picks, picks[1:]))


def test_every_rank_gets_a_batch_at_every_step():
    ranks = [StepBatchSampler(37, 5, seed=0, rank=r) for r in range(3)]
    streams = [iter(s) for s in ranks]
    for _ in range(50):  # 50 steps over a 37-sample index: no epoch end, no rank runs dry
        assert [len(next(s)) for s in streams] == [5, 5, 5]
