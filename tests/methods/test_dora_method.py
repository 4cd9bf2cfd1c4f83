"""The DoRA plug-in on real shards: clip views, masks from the teacher, a training run that
resumes bit-exactly after SIGKILL."""

from __future__ import annotations

import pytest
import torch

from wtpipe.config import load_config
from wtpipe.data.index import ShardIndex
from wtpipe.data.loader import ClipDataset
from wtpipe.methods.dora import DoRAMethod
from wtpipe.train.config import TrainConfig

from ..train.runs import TINY, assert_bit_identical, ddp_cmd, final_state, kill_at, run, train_cmd

DORA = [
    "method.name=dora",
    "data.clip_frames=4",
    "data.frame_gap=2",
    "data.local_crops=2",
    "data.batch_size=2",
]


def test_clip_views_masks_and_loss(train_shards):
    config = load_config(TrainConfig, None, [f"data.shards={train_shards}", *TINY, *DORA])
    method = DoRAMethod(config)
    dataset = ClipDataset(ShardIndex.build(train_shards), 4, 2, method.views())
    batch = method.collate([dataset[(0, 1)], dataset[(3, 2)]])
    globals_, locals_ = batch
    assert globals_.shape == (2, 4, 3, 32, 32) and locals_.shape == (2, 4, 2, 3, 16, 16)
    logits, masks, heads, attention, tracks = method.masks(globals_)
    assert attention.shape == (2, 3, 2, 2)  # vit_tiny: 3 heads; 32 px = 2 x 2 patches
    assert (
        logits.shape == (4, 2, 64)
        and masks.shape == (2, 4, 3, 32, 32)
        and masks.dtype == torch.bool
    )
    assert len(set(heads.tolist())) == 3
    assert tracks.refined.shape == (2, 3, 192) and tracks.maps.shape == (2, 4, 3, 4)
    assert 0.05 < masks.float().mean() < 0.95  # each mask keeps part of the frame
    loss, logs = method.loss(method.student, batch, epoch=0)
    loss.backward()
    assert torch.isfinite(loss) and 0 < logs["mask_fraction"] < 1
    assert all(p.grad is None for p in method.teacher.parameters())
    assert method.student.backbone.vit.cls_token.grad is not None


@pytest.mark.slow
def test_dora_run_killed_and_resumed_is_bit_identical(train_shards, tmp_path):
    """The killed run decodes its JPEG frames and renders its views in the training process (a
    loader worker only plans them): it must still end bit-identical to the uninterrupted run
    whose workers decode and render."""
    ref, out = str(tmp_path / "ref"), str(tmp_path / "run")
    extra = [*DORA, "optim.epochs=1"]
    run(train_cmd(train_shards, ref, *extra, "data.augment_on=loader"))
    device = [*extra, "data.augment_on=device", "data.decode_on=device", "data.num_workers=1"]
    kill_at(train_cmd(train_shards, out, *device), out, 2)
    run(train_cmd(train_shards, out, *device))
    assert_bit_identical(final_state(ref), final_state(out))


@pytest.mark.slow
def test_two_process_ddp_dora_killed_and_resumed_is_bit_identical(train_shards, tmp_path):
    ref, out = str(tmp_path / "ref"), str(tmp_path / "run")
    extra = [*DORA, "optim.epochs=1"]
    run(ddp_cmd(train_shards, ref, *extra))
    kill_at(ddp_cmd(train_shards, out, *extra), out, 2)
    run(ddp_cmd(train_shards, out, *extra))
    assert_bit_identical(final_state(ref), final_state(out))


def test_clustered_heads_give_masks_too(train_shards):
    config = load_config(
        TrainConfig,
        None,
        [f"data.shards={train_shards}", *TINY, *DORA, "method.head_choice=clustered"],
    )
    method = DoRAMethod(config)
    dataset = ClipDataset(ShardIndex.build(train_shards), 4, 2, method.views())
    globals_, _ = method.collate([dataset[(0, 1)]])
    found = method.masks(globals_)
    assert found.masks.shape == (1, 4, 3, 32, 32) and found.heads.numel() == 0


def test_training_and_wtpipe_viz_write_mask_pictures(train_shards, tmp_path):
    import os
    import subprocess
    import sys

    from PIL import Image

    out = str(tmp_path / "run")
    run(train_cmd(train_shards, out, *DORA, "run.max_steps=2", "run.viz_every=1"))
    assert sorted(os.listdir(os.path.join(out, "viz"))) == [
        "step00000001-clip0.png",
        "step00000001-clip1.png",
        "step00000002-clip0.png",
        "step00000002-clip1.png",
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wtpipe.cli.viz",
            "masks",
            out,
            train_shards,
            "--out",
            str(tmp_path / "viz"),
            "--clips",
            "3",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    sheet = Image.open(tmp_path / "viz" / "step00000002-clip0.png")
    assert sheet.size[0] >= 4 * 192  # four frames, enlarged for a person to see
    dino = str(tmp_path / "dino")
    run(train_cmd(train_shards, dino, "run.max_steps=1"))
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "wtpipe.cli.viz",
            "masks",
            dino,
            train_shards,
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "need a DoRA run" in refused.stderr


def test_gradient_checkpointing_gives_bit_identical_loss_and_gradients(train_shards):
    """Recomputing the student's blocks in backward (drop-path included) changes memory, not numbers."""
    results = []
    for flag in (False, True):
        config = load_config(
            TrainConfig,
            None,
            [
                f"data.shards={train_shards}",
                *TINY,
                *DORA,
                f"model.grad_checkpointing={str(flag).lower()}",
            ],
        )
        torch.manual_seed(0)
        method = DoRAMethod(config)
        assert (
            method.student.backbone.vit.grad_checkpointing is flag
            and config.model.drop_path_rate > 0
        )
        dataset = ClipDataset(ShardIndex.build(train_shards), 4, 2, method.views())
        batch = method.collate([dataset[(0, 1)], dataset[(3, 2)]])
        torch.manual_seed(1)
        loss, _ = method.loss(method.student, batch, epoch=0)
        loss.backward()
        results.append(
            (
                loss.detach(),
                [p.grad.clone() for p in method.student.parameters() if p.grad is not None],
            )
        )
    (plain_loss, plain), (ckpt_loss, ckpt) = results
    assert torch.equal(plain_loss, ckpt_loss) and len(plain) == len(ckpt) > 100
    assert all(torch.equal(a, b) for a, b in zip(plain, ckpt))


def test_koleo_adds_its_term_over_each_frames_masked_views(train_shards):
    """``method.koleo``: the loss grows by weight x the mean over frames of KoLeo over that frame's
    masked views (3 objects x 2 clips); 0 leaves the loss as DoRA computes it."""
    from wtpipe.ops.koleo import koleo_loss

    losses = {}
    for weight in (0.0, 0.5):
        config = load_config(
            TrainConfig,
            None,
            [f"data.shards={train_shards}", *TINY, *DORA, f"method.koleo={weight}"],
        )
        torch.manual_seed(0)
        method = DoRAMethod(config)
        dataset = ClipDataset(ShardIndex.build(train_shards), 4, 2, method.views())
        batch = method.collate([dataset[(0, 1)], dataset[(3, 2)]])
        torch.manual_seed(1)
        losses[weight], logs = method.loss(method.student, batch, epoch=0)
    features = method.student.features.detach().reshape(3, 2, 4, -1)  # (object, clip, frame, D)
    expected = torch.stack([koleo_loss(features[:, :, t].flatten(0, 1)) for t in range(4)]).mean()
    assert logs["koleo"].item() == pytest.approx(
        0.5 * expected.item(), rel=1e-5
    )  # the weighted term
    assert (losses[0.5] - losses[0.0]).item() == pytest.approx(0.5 * expected.item(), rel=1e-4)
    losses[0.5].backward()
    assert method.student.backbone.vit.cls_token.grad is not None
