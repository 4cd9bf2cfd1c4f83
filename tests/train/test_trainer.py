"""wtpipe-train end to end on real shards: DDP, exact resume after SIGKILL, export, clear refusals."""

from __future__ import annotations

import os
import random
import resource
import signal
import subprocess
import sys
import time

import pytest
import timm
import torch
from safetensors.torch import load_file as load_backbone

from wtpipe.engine import rundir

from .runs import (
    ENV,
    TINY,
    assert_bit_identical,
    ddp_cmd,
    final_state,
    kill_at,
    logged_steps,
    run,
    train_cmd,
)


def test_a_run_leaves_what_a_person_wants(reference):
    names = set(os.listdir(reference))
    assert {
        "config.yaml",
        "scalars.csv",
        "loss.png",
        "backbone.safetensors",
        "tensorboard",
        "checkpoints",
    } <= names
    rows = open(os.path.join(reference, "scalars.csv")).read().splitlines()
    assert rows[0].startswith("step,epoch,loss,lr") and len(rows) == 1 + 6
    import csv

    last = list(csv.DictReader(open(os.path.join(reference, "scalars.csv"))))[-1]
    for name in (
        "teacher_entropy",
        "dims_used",
        "feature_std",
        "feature_rank",
    ):  # the collapse monitors
        assert 0 < float(last[name]) <= 1.05, name
    assert float(last["kl"]) > 0 and float(last["center_norm"]) > 0
    assert (
        0 < float(last["data_wait"]) < 1
    )  # loading in-process (num_workers=0): the step waits for it
    assert sorted(os.listdir(os.path.join(reference, "checkpoints"))) == [
        "latest",
        "step-00000010",
        "step-00000012",
    ]
    assert any(
        f.startswith("events.out.tfevents")
        for f in os.listdir(os.path.join(reference, "tensorboard"))
    )
    saved = open(os.path.join(reference, "config.yaml")).read()
    assert (
        "teacher_temp" in saved and "sinkhorn" not in saved and "num_objects" not in saved
    )  # DINO: no DoRA keys


def test_a_run_says_what_it_did_and_where_things_are(reference_run):
    out, result = reference_run
    assert "1/12" in result.stderr  # the bar moves every step, not every log_every
    assert "font" not in result.stderr.lower()  # no matplotlib font-cache chatter
    assert (
        "finished step 12 of 12" in result.stdout
        and "waiting for data), last loss" in result.stdout
    )
    for name in (
        "backbone.safetensors",
        "loss.png",
        "scalars.csv",
        "config.yaml",
        "checkpoints/step-00000012",
    ):
        assert os.path.join(out, name) in result.stdout, name
    assert "1 intra-op threads" in result.stderr  # OMP_NUM_THREADS=1 is honoured


def test_exported_backbone_loads_into_timm_with_the_teacher_features(reference):
    model = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=0, dynamic_img_size=True
    )
    model.load_state_dict(load_backbone(os.path.join(reference, "backbone.safetensors")))
    from wtpipe.config import load_config
    from wtpipe.methods.dino import DINOMethod
    from wtpipe.models.vit import ViTBackbone
    from wtpipe.train.config import TrainConfig

    method = DINOMethod(load_config(TrainConfig, os.path.join(reference, "config.yaml")))
    method.teacher.load_state_dict(final_state(reference)["teacher"])
    teacher = method.backbone().eval()
    x = torch.randn(2, 3, 224, 224)
    small = torch.randn(2, 3, 32, 48)  # another grid: timm resizes position embeddings its own way
    timm_resize = ViTBackbone("vit_tiny_patch16_224", pos_interpolation="timm").eval()
    timm_resize.load_state_dict(teacher.state_dict())
    with torch.no_grad():
        assert torch.equal(model.eval()(x), teacher(x))
        assert torch.equal(model(small), timm_resize(small))
        assert not torch.allclose(model(small), teacher(small), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_then_rerun_is_bit_identical(reference, train_shards, tmp_path, seed):
    out = str(tmp_path / "run")
    cmd = train_cmd(train_shards, out)
    for step in sorted(random.Random(seed).sample([2, 4, 6, 8, 10], 2)):
        kill_at(cmd, out, step)
    run(cmd)
    assert_bit_identical(final_state(reference), final_state(out))
    assert logged_steps(out) == logged_steps(
        reference
    )  # every row once, the resumed step's included


@pytest.mark.slow
@pytest.mark.parametrize("where", ["data.augment_on=device", "data.decode_on=device"])
def test_views_rendered_in_the_training_process_give_the_same_run(
    reference, train_shards, tmp_path, where
):
    """Views planned by a loader worker (from decoded frames, or from JPEG bytes the training
    process decodes) and rendered in the training process: the same run, bit for bit."""
    out = str(tmp_path / "run")
    run(train_cmd(train_shards, out, where, "data.num_workers=1"))
    assert_bit_identical(final_state(reference), final_state(out))


@pytest.mark.slow
def test_a_compiled_student_computes_the_same_losses(train_shards, tmp_path):
    """run.compile: torch.compile (inductor) of the student's ViT, the same numbers to float tolerance
    (global views only: one input shape, one compilation)."""
    import csv

    def losses(*extra: str) -> tuple[dict[int, float], dict]:
        out = str(tmp_path / str(len(extra)))
        run(train_cmd(train_shards, out, "data.local_crops=0", "run.max_steps=4", *extra))
        rows = csv.DictReader(open(os.path.join(out, "scalars.csv")))
        return {int(r["step"]): float(r["loss"]) for r in rows}, final_state(out)["student"]

    (compiled, state), (eager, eager_state) = losses("run.compile=true"), losses()
    assert sorted(compiled) == [2, 4]
    for step, loss in compiled.items():
        assert loss == pytest.approx(eager[step], rel=1e-4), step
    assert set(state) == set(eager_state)  # the checkpoint keeps its keys


@pytest.mark.slow
def test_two_process_ddp_killed_and_resumed_is_bit_identical(train_shards, tmp_path):
    ref, out = str(tmp_path / "ref"), str(tmp_path / "run")
    run(ddp_cmd(train_shards, ref, "data.num_workers=1"))
    kill_at(
        ddp_cmd(train_shards, out, "data.num_workers=1"), out, 4
    )  # checks that the ranks died too
    run(ddp_cmd(train_shards, out, "data.num_workers=1"))
    a, b = final_state(ref), final_state(out)
    assert_bit_identical(a, b)
    assert logged_steps(out) == logged_steps(ref)
    rng = [
        f
        for f in os.listdir(rundir.latest(os.path.join(out, "checkpoints")))
        if f.startswith("rng")
    ]
    assert sorted(rng) == ["rng-rank0.pt", "rng-rank1.pt"]


@pytest.mark.slow
def test_sigterm_saves_at_the_next_step_and_the_rerun_finishes(reference, train_shards, tmp_path):
    out = str(tmp_path / "run")
    cmd = train_cmd(train_shards, out, "run.checkpoint_every=100")
    process = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV
    )
    scalars = os.path.join(out, "scalars.csv")
    while (
        not os.path.exists(scalars) or len(open(scalars).readlines()) < 3
    ):  # 2 log rows: step 4 done
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0 and "stopped by SIGTERM" in stderr
    stopped_at = final_state(out)["step"]
    assert 4 <= stopped_at < 12 and not os.path.exists(os.path.join(out, "backbone.safetensors"))
    run(cmd)
    assert_bit_identical(final_state(reference), final_state(out))


def test_resuming_with_another_config_is_refused(reference, train_shards, tmp_path):
    import shutil

    out = str(tmp_path / "run")
    shutil.copytree(reference, out)
    result = subprocess.run(
        train_cmd(train_shards, out, "optim.lr=0.1"), capture_output=True, text=True
    )
    assert result.returncode == 2 and "optim.lr: 0.0005 -> 0.1" in result.stderr


def test_a_key_added_since_a_checkpoint_counts_as_its_default():
    """A checkpoint written before ``method.koleo`` existed resumes with it at 0 (what the older
    code computed), and is refused with it on."""
    from wtpipe.config import differences, to_dict
    from wtpipe.train.config import TrainConfig

    saved = to_dict(TrainConfig())
    del saved["method"]["koleo"]
    assert differences(TrainConfig(), saved) == []
    current = TrainConfig()
    current.method.koleo = 0.1
    assert differences(current, saved) == ["method.koleo: 0.0 -> 0.1"]


def test_bad_configs_are_named(train_shards):
    result = subprocess.run(
        train_cmd(train_shards, "/tmp/unused", "optim.lrr=1"), capture_output=True, text=True
    )
    assert (
        result.returncode == 2
        and "unknown config key 'optim.lrr' (did you mean optim.lr?)" in result.stderr
    )
    result = subprocess.run(
        [sys.executable, "-m", "wtpipe.cli.train", "model.arch=vit_huge"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "vit_huge" in result.stderr


def test_jpeg_decoding_goes_where_the_views_are_rendered():
    """decode_on=auto: nvJPEG only where CUDA renders the views; an explicit choice is kept, and
    decoding on the device with views on the loader is refused."""
    from wtpipe.data.config import DataConfig

    cuda = torch.cuda.is_available()
    assert DataConfig().decodes_on_device() is cuda and DataConfig().views_on_device() is cuda
    assert not DataConfig(augment_on="loader").decodes_on_device()
    assert not DataConfig(augment_on="device", decode_on="loader").decodes_on_device()
    explicit = DataConfig(augment_on="auto", decode_on="device")
    assert explicit.decodes_on_device() and explicit.views_on_device()
    with pytest.raises(ValueError, match="decode_on=device needs the views"):
        DataConfig(augment_on="loader", decode_on="device")


def test_bf16_autocast_gradient_accumulation_and_a_corrupt_shard(train_shards, tmp_path, caplog):
    """One short run covering bf16 on CPU, two micro-batches per step, and a truncated shard."""
    import shutil

    from wtpipe.config import load_config
    from wtpipe.train.config import TrainConfig
    from wtpipe.train.trainer import Trainer

    shards = str(tmp_path / "shards")
    shutil.copytree(train_shards, shards)
    victim = sorted(n for n in os.listdir(shards) if n.startswith("shard-"))[0]
    with open(os.path.join(shards, victim), "r+b") as handle:
        handle.truncate(4096)
    config = load_config(
        TrainConfig,
        None,
        [
            f"data.shards={shards}",
            f"run.output_dir={tmp_path / 'run'}",
            *TINY,
            "run.mixed_precision=bf16",
            "optim.grad_accum=2",
            "run.max_steps=2",
        ],
    )
    trainer = Trainer(config)
    assert trainer.base_lr == pytest.approx(0.0005 * 4 * 2 / 256)  # lr scales with the global batch
    result = trainer.run()
    assert result["step"] == 2 and result["skipped_shards"][0].startswith(victim)
    assert "skipping shard" in caplog.text
    rows = open(tmp_path / "run" / "scalars.csv").read().splitlines()
    assert float(rows[-1].split(",")[2]) > 0


def test_export_command_writes_timm_safetensors(reference, tmp_path):
    out = str(tmp_path / "b.safetensors")
    result = subprocess.run(
        [sys.executable, "-m", "wtpipe.cli.export", reference, "--out", out],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (
        load_backbone(out).keys()
        == load_backbone(os.path.join(reference, "backbone.safetensors")).keys()
    )
    missing = subprocess.run(
        [sys.executable, "-m", "wtpipe.cli.export", str(tmp_path)], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "wtpipe-export:" in missing.stderr


@pytest.mark.slow
def test_accelerate_launch_runs_it(train_shards, tmp_path):
    out = str(tmp_path / "run")
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    run(
        [
            launcher,
            "launch",
            "--cpu",
            "--num_processes",
            "1",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "wtpipe.cli.train",
            f"data.shards={train_shards}",
            f"run.output_dir={out}",
            *TINY,
            "run.max_steps=2",
        ]
    )
    assert final_state(out)["step"] == 2


def test_recipes_load():
    from wtpipe.config import load_config
    from wtpipe.train.config import TrainConfig

    root = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
    dora = load_config(TrainConfig, os.path.join(root, "dora_vits16_wt.yaml"))
    assert (dora.method.name, dora.data.clip_frames, dora.data.local_crops, dora.model.out_dim) == (
        "dora",
        8,
        6,
        65536,
    )
    assert (
        load_config(TrainConfig, os.path.join(root, "dino_vits16_wt.yaml")).method.teacher_temp
        == 0.07
    )
    assert (
        load_config(TrainConfig, os.path.join(root, "tiny_cpu.yaml")).model.arch
        == "vit_tiny_patch16_224"
    )
    assert load_config(TrainConfig, os.path.join(root, "dora_tiny_cpu.yaml")).method.name == "dora"


def test_a_collapsed_run_is_named_with_the_remedies(train_shards, tmp_path):
    """A teacher at temperature 10 says nothing (uniform output): the log and the summary say so."""
    out = str(tmp_path / "run")
    result = run(
        train_cmd(train_shards, out, "method.teacher_temp=10", "method.warmup_teacher_temp=10")
    )
    assert "the run has collapsed: the teacher's output is uniform" in result.stderr
    assert "lower method.teacher_temp" in result.stderr
    assert "warning: the run collapsed (uniform)" in result.stdout


def _file_size_limit() -> None:
    """A 4 MB cap on every file the run writes, failing a write (EFBIG) as a full disk would."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))


def test_a_checkpoint_that_cannot_be_written_is_one_line_and_leaves_nothing_half_written(
    train_shards, tmp_path
):
    out = str(tmp_path / "run")
    failed = subprocess.run(
        train_cmd(train_shards, out),
        capture_output=True,
        text=True,
        env=ENV,
        preexec_fn=_file_size_limit,
    )
    assert failed.returncode == 1, failed.stderr[-2000:]
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"wtpipe-train: cannot write checkpoint {out}/checkpoints/step-00000002: File too large"
    )
    assert "re-run the same command" in last and "Traceback" not in failed.stderr
    assert not [
        name for name in os.listdir(os.path.join(out, "checkpoints")) if name.startswith("step-")
    ]
    assert "finished step 12 of 12" in run(train_cmd(train_shards, out)).stdout


def test_a_healthy_run_raises_no_collapse_warning(reference_run):
    assert "collapsed" not in reference_run[1].stderr + reference_run[1].stdout
