"""Segmentation fine-tuning end to end on the real sample set, from a wtpipe-train backbone:
the loss falls, validation beats the trivial predictor, and a SIGKILLed run with a damaged newest
checkpoint resumes bit-identical."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import torch

from tests.finetune.runs import seg_cmd
from tests.train.runs import ENV, damage, final_state, kill_at, run
from wtpipe.engine import rundir


@pytest.fixture(scope="module")
def seg_data(eval_data) -> str:
    return os.path.join(eval_data, "seg")


@pytest.mark.slow
def test_upernet_learns_and_beats_the_majority_class(seg_data, reference, tmp_path):
    out = str(tmp_path / "seg")
    result = run(
        seg_cmd(seg_data, reference, out, "optim.iters=40", "run.val_every=20", "--baseline")
    )
    rows = [
        line.split(",") for line in open(os.path.join(out, "scalars.csv")).read().splitlines()[1:]
    ]
    losses = [float(r[1]) for r in rows if r[1]]
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses
    final = json.load(open(os.path.join(out, "val", "step-00000040", "metrics.json")))
    trivial = float(result.stdout.split("trivial mIoU ")[1].split(",")[0])
    assert final["mIoU"] > trivial + 5, (final["mIoU"], trivial)
    assert json.load(open(os.path.join(out, "best", "metrics.json")))["mIoU"] >= final["mIoU"]
    assert os.path.getsize(os.path.join(out, "last", "model.safetensors")) > 1e6
    pictures = os.listdir(os.path.join(out, "val", "step-00000040", "pictures"))
    assert len(pictures) == 2 and {p.split("_")[0] for p in pictures} == {"box", "cup"}
    assert os.path.exists(os.path.join(out, "loss.png"))
    again = run(
        seg_cmd(seg_data, reference, out, "optim.iters=40", "run.val_every=20")
    )  # a finished run
    assert "nothing to do" in again.stdout and f"mIoU {final['mIoU']:.2f}" in again.stdout
    assert open(os.path.join(out, "scalars.csv")).read().count("\n40,") == 2  # nothing logged twice


@pytest.mark.slow
def test_linear_head_keeps_the_backbone_frozen(seg_data, reference, tmp_path):
    out = str(tmp_path / "linear")
    run(
        seg_cmd(
            seg_data,
            reference,
            out,
            "model.head=linear",
            "model.freeze_backbone=true",
            "optim.iters=4",
            "run.val_every=0",
        )
    )
    state = final_state(out)["model"]
    from safetensors.torch import load_file

    start = load_file(os.path.join(reference, "backbone.safetensors"))
    assert all(torch.equal(state[f"features.backbone.vit.{k}"], v) for k, v in start.items())
    assert not torch.equal(
        state["head.classifier.weight"], torch.zeros_like(state["head.classifier.weight"])
    )


@pytest.mark.slow
def test_sigkill_mid_finetune_then_rerun_is_bit_identical(seg_data, reference, tmp_path):
    whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
    run(seg_cmd(seg_data, reference, whole))
    for step in (4, 8):  # killed twice, somewhere after each checkpoint (validation at 6 included)
        kill_at(seg_cmd(seg_data, reference, killed), killed, step)
    newest = rundir.latest(os.path.join(killed, rundir.CHECKPOINTS))
    damage(
        newest, "bit flip"
    )  # and the newest checkpoint damaged: named, set aside, the one before used
    result = run(seg_cmd(seg_data, reference, killed))
    assert f"checkpoint {newest} is damaged" in result.stderr
    a, b = final_state(whole), final_state(killed)
    assert a["step"] == b["step"] == 12
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["best"] == b["best"]
    for name in ("last", "best"):
        assert json.load(open(os.path.join(whole, name, "metrics.json"))) == json.load(
            open(os.path.join(killed, name, "metrics.json"))
        )
    steps = [
        line.split(",")[0]
        for line in open(os.path.join(killed, "scalars.csv")).read().splitlines()[1:]
    ]
    assert steps == [
        line.split(",")[0]
        for line in open(os.path.join(whole, "scalars.csv")).read().splitlines()[1:]
    ]


def test_a_missing_layout_is_one_line(tmp_path):
    result = subprocess.run(
        seg_cmd(str(tmp_path), "random:vit_tiny_patch16_224", str(tmp_path / "o")),
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert result.returncode == 2
    assert "no such directory (ADE20K layout" in result.stderr and "Traceback" not in result.stderr
