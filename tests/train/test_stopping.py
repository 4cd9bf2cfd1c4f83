"""Stopping as people and schedulers do it, on real runs: Ctrl-C and SIGTERM to the whole process
group (loader workers included), under torchrun, twice; damaged checkpoints; the thread budget."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from wtpipe.engine import rundir
from wtpipe.engine.resources import thread_budget

from .runs import (
    assert_bit_identical,
    damage,
    ddp_cmd,
    descendants,
    final_state,
    logged_steps,
    run,
    start,
    train_cmd,
    wait_gone,
)

WORKERS = (
    "data.num_workers=2"  # loader workers in the group: they must neither die nor hang the exit
)


def signal_group_after(process, out: str, rows: int, sig: int) -> None:
    """Send ``sig`` to the run's process group once scalars.csv has ``rows`` rows (steps done)."""
    scalars = os.path.join(out, "scalars.csv")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if os.path.exists(scalars) and len(open(scalars).read().splitlines()) > rows:
            break
        time.sleep(0.02)
    os.killpg(process.pid, sig)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_process_group_saves_and_the_rerun_is_bit_identical(
    reference, train_shards, tmp_path, sig
):
    out = str(tmp_path / "run")
    cmd = train_cmd(train_shards, out, WORKERS, "run.checkpoint_every=100")
    process = start(cmd)
    signal_group_after(process, out, 2, sig)
    _, stderr = process.communicate(timeout=120)
    name = signal.Signals(sig).name
    assert process.returncode == 0, stderr[-2000:]
    assert (
        f"stopped by {name} after step" in stderr and "re-run the same command to resume" in stderr
    )
    assert "Traceback" not in stderr and "DataLoader worker" not in stderr
    stopped_at = final_state(out)["step"]
    assert 4 <= stopped_at < 12
    run(cmd)
    assert_bit_identical(final_state(reference), final_state(out))
    assert logged_steps(out) == logged_steps(reference)


@pytest.mark.slow
def test_ctrl_c_twice_stops_at_once_without_a_traceback(train_shards, tmp_path):
    out = str(tmp_path / "run")
    cmd = train_cmd(
        train_shards, out, WORKERS, "data.global_size=128", "run.max_steps=8"
    )  # slower steps
    process = start(cmd)
    signal_group_after(process, out, 2, signal.SIGINT)  # step 4 logged: checkpoint 2 is written
    while (
        "saving at the end of this step" not in process.stderr.readline()
    ):  # the first one was seen
        pass
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert (
        "stopped without saving (Ctrl-C twice); re-run the same command" in stderr
        and "Traceback" not in stderr
    )
    result = run(cmd)
    assert "resuming from" in result.stderr and "finished step 8 of 8" in result.stdout


def wait_for_save(process, root: str, mid_write: bool) -> bool:
    """Poll (every millisecond) until the stop's checkpoint is being written: its temporary folder
    exists, or (``mid_write``) its state.pt has bytes but the rename has not happened."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        for name in os.listdir(root) if os.path.isdir(root) else []:
            if ".tmp-" in name:
                state = os.path.join(root, name, rundir.STATE)
                if not mid_write or (os.path.exists(state) and os.path.getsize(state) > 0):
                    return True
        time.sleep(0.001)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["as the save starts", "mid-write"])
def test_a_second_ctrl_c_during_the_save_stops_without_saving(train_shards, tmp_path, moment):
    """The second SIGINT lands while the first one's checkpoint is written (a 65536-prototype head
    makes it some 270 MB): exit 130, the one line, nothing half-written under a final name."""
    out = str(tmp_path / "run")
    root = os.path.join(out, "checkpoints")
    process = start(
        train_cmd(
            train_shards,
            out,
            "model.out_dim=65536",
            "model.bottleneck_dim=256",
            "run.checkpoint_every=1000",
            "run.log_every=1",
            "optim.epochs=100",
        )
    )
    signal_group_after(process, out, 2, signal.SIGINT)
    assert wait_for_save(process, root, moment == "mid-write"), "the save was not seen in progress"
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "stopped without saving (Ctrl-C twice)" in stderr, stderr[-2000:]
    assert "cannot write checkpoint" not in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert os.listdir(root) == [], os.listdir(root)  # no final step, no temporary left, no latest


@pytest.mark.slow
def test_torchrun_ranks_stop_together_on_ctrl_c_and_on_a_scheduler_sigterm(train_shards, tmp_path):
    """Ctrl-C reaches torchrun's group (the ranks are in sessions of their own: torchrun forwards
    it); a scheduler's SIGTERM reaches every process of the job. Each time every rank saves the
    same step, every process ends, and the resumed run matches an uninterrupted one."""
    ref, out = str(tmp_path / "ref"), str(tmp_path / "run")
    extra = ("data.num_workers=1", "run.checkpoint_every=100")
    run(ddp_cmd(train_shards, ref, *extra))
    steps = []
    for sig, whole_tree, rows in ((signal.SIGINT, False, 1), (signal.SIGTERM, True, 4)):
        process = start(ddp_cmd(train_shards, out, *extra))
        scalars = os.path.join(out, "scalars.csv")
        while process.poll() is None and not (
            os.path.exists(scalars) and len(open(scalars).read().splitlines()) > rows
        ):
            time.sleep(0.02)
        tree = descendants(process.pid)
        os.killpg(process.pid, sig)
        if whole_tree:
            for pid in tree:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        _, stderr = process.communicate(timeout=120)
        assert not wait_gone(tree), "a rank or loader worker outlived the run"
        assert "stopped by" in stderr and "DataLoader worker" not in stderr, stderr[-3000:]
        state = final_state(out)
        rng = [
            f
            for f in os.listdir(rundir.latest(os.path.join(out, "checkpoints")))
            if f.startswith("rng")
        ]
        assert sorted(rng) == ["rng-rank0.pt", "rng-rank1.pt"]
        steps.append(state["step"])
    assert steps[0] < steps[1] < 12
    run(ddp_cmd(train_shards, out, *extra))
    assert_bit_identical(final_state(ref), final_state(out))
    assert logged_steps(out) == logged_steps(ref)


@pytest.mark.parametrize("how", ["truncated", "bit flip", "missing file"])
def test_a_damaged_latest_checkpoint_is_named_set_aside_and_the_previous_one_used(
    reference, train_shards, tmp_path, how
):
    out = str(tmp_path / "run")
    shutil.copytree(reference, out)
    os.remove(os.path.join(out, rundir.BACKBONE))
    root = os.path.join(out, rundir.CHECKPOINTS)
    damage(os.path.join(root, "step-00000012"), how)
    result = run(train_cmd(train_shards, out))
    bad = os.path.join(root, "step-00000012")
    assert (
        f"checkpoint {bad} is damaged" in result.stderr and "corrupt-step-00000012" in result.stderr
    )
    assert "resuming from" in result.stderr and "step 10)" in result.stderr
    assert os.path.isdir(
        os.path.join(root, "corrupt-step-00000012")
    )  # kept for a person to look at
    assert_bit_identical(final_state(reference), final_state(out))
    assert logged_steps(out) == logged_steps(reference)


def test_when_every_checkpoint_is_damaged_the_run_starts_over(reference, train_shards, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(reference, out)
    root = os.path.join(out, rundir.CHECKPOINTS)
    for name in ("step-00000010", "step-00000012"):
        damage(os.path.join(root, name), "truncated")
    result = run(train_cmd(train_shards, out, "run.max_steps=2"))
    assert result.stderr.count("is damaged") == 2 and "resuming from" not in result.stderr
    assert sorted(os.listdir(root)) == [
        "corrupt-step-00000010",
        "corrupt-step-00000012",
        "latest",
        "step-00000002",
    ]


def test_thread_budget(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert thread_budget(0, 2, 1, cores=2) == 1  # never 0
    assert thread_budget(0, 4, 1, cores=16) == 12
    assert thread_budget(0, 4, 2, cores=16) == 4  # two ranks share the node
    assert thread_budget(3, 4, 1, cores=16) == 3  # asked for
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert thread_budget(0, 4, 1, cores=16) == 5
