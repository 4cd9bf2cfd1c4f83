"""An epoch as the official DoRA loader counts it: one clip start per source frame of the video."""

from __future__ import annotations

import json
import os

from wtpipe.config import load_config
from wtpipe.data.index import ShardIndex
from wtpipe.shards.build import ShardBuilder
from wtpipe.shards.settings import BuildSettings
from wtpipe.train.config import TrainConfig
from wtpipe.train.trainer import Trainer


def test_clip_starts_count_source_frames_as_the_official_loader(sources, tmp_path):
    """vtest.avi: 795 frames at 10 fps, stored at 4 fps in 4-s segments. The official dataset of a
    clip of T frames ``step`` source frames apart has ``frames - T * step`` starts; wtpipe's clips
    stay inside a segment, so it has fewer by about one clip span per segment, no more."""
    out = str(tmp_path / "shards")
    ShardBuilder(
        [sources["vtest.avi"]],
        out,
        BuildSettings(fps="4", short_side=96, segment_seconds=4),
        progress=False,
    ).run()
    index = ShardIndex.build(out)
    assert index.source_per_stored == 10 / 4
    segments = len(index.samples)
    for frames, gap in ((1, 1), (4, 2), (8, 4)):
        starts = index.clip_starts(frames, gap)
        official = 795 - frames * round(gap * 2.5)  # the same clip span in source frames
        assert (
            official - segments * (frames - 1) * gap * 2.5 - 2 * 2.5 <= starts <= official + 2.5
        ), (frames, gap)
    assert index.clip_starts(1, 1) == round(sum(len(s.frames) for s in index.samples) * 2.5)


def test_an_epoch_of_zero_steps_is_one_pass_over_the_clip_starts(train_shards, tmp_path):
    config = load_config(
        TrainConfig,
        None,
        [
            f"data.shards={train_shards}",
            f"run.output_dir={tmp_path / 'run'}",
            "model.arch=vit_tiny_patch16_224",
            "model.out_dim=64",
            "method.name=dora",
            "data.clip_frames=2",
            "data.batch_size=3",
            "optim.grad_accum=2",
            "optim.epochs=2",
            "optim.steps_per_epoch=0",
        ],
    )
    trainer = Trainer(config)
    starts = ShardIndex.build(train_shards).clip_starts(2, 1)
    manifest = json.load(open(os.path.join(train_shards, "manifest.json")))
    assert len(manifest["videos"]) == 2 and starts > sum(
        v["frames_stored"] for v in manifest["videos"]
    )
    assert trainer.steps_per_epoch == starts // 6 and trainer.total_steps == 2 * (starts // 6)
