"""wtpipe submit on a real two-node Slurm started on this machine (tools/slurm_local.sh): a 2-node
DDP run equals the same run under torchrun; preempted (scontrol requeue) and warned before the
time limit (SIGUSR2), it resumes in the same job id and still ends bit-identical."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from tests.finetune.runs import seg_args
from tests.train.runs import (
    ENV,
    TINY,
    assert_bit_identical,
    ddp_cmd,
    final_state,
    logged_steps,
    run,
    torchrun,
    wait_gone,
)

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
pytestmark = pytest.mark.slurm


def daemons() -> set[int]:
    """The pids of every munged, slurmctld and slurmd running on this machine."""
    found = subprocess.run(
        ["pgrep", "-x", "munged|slurmctld|slurmd"], capture_output=True, text=True
    ).stdout
    return {int(pid) for pid in found.split()}


@pytest.fixture(scope="module")
def slurm():
    """The local cluster, started if it can be; skipped (with the reason) where it cannot. At the
    end of the module every daemon it started, munged included, is stopped, and checked gone."""
    if os.geteuid() != 0:
        pytest.skip("the local Slurm needs root (tools/slurm_local.sh)")
    if shutil.which("slurmctld") is None:
        pytest.skip("Slurm is not installed (apt-get install slurmctld slurmd slurm-client munge)")
    script = os.path.join(ROOT, "tools", "slurm_local.sh")
    was_running = subprocess.run(["bash", script, "status"], capture_output=True).returncode == 0
    before = daemons()
    started = subprocess.run(["bash", script, "start"], capture_output=True, text=True, timeout=120)
    ours = daemons() - before
    if started.returncode != 0:
        subprocess.run(["bash", script, "stop"], capture_output=True)
        pytest.skip(f"the local Slurm did not start: {started.stderr.strip()[-500:]}")
    yield started.stdout
    if not was_running:
        subprocess.run(["bash", script, "stop"], capture_output=True)
        left = wait_gone(ours, timeout=30)
        assert not left, f"daemons started for these tests still run: {sorted(left)}"


def submit_cli(
    *args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = ROOT
) -> subprocess.CompletedProcess:
    """``wtpipe submit ARGS...``, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "wtpipe.cli.main", "submit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )


def submit(shards: str, out: str, logs: str, *extra: str) -> str:
    result = submit_cli(
        "train",
        f"data.shards={shards}",
        f"run.output_dir={out}",
        *TINY,
        *extra,
        "--nodes",
        "2",
        "--cpu",
        "--cpus-per-task",
        "1",
        "--time",
        "10",
        "--logs",
        logs,
        env=ENV,
        cwd=None,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    first = result.stdout.splitlines()[0]
    assert first.startswith("submitted job ") and "scancel --signal=USR1" in result.stdout
    return first.split()[2].rstrip(":")


def squeue(job: str) -> str:
    """The job's state ("" once it has left the queue)."""
    return subprocess.run(
        ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True
    ).stdout.strip()


def wait_until(predicate, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def release(job: str) -> None:
    """Start a requeued job early: Slurm holds one for ``AuthInfo=cred_expire`` + 1 s (121 s by
    default), which would be most of this test's time. The hold is there because each node revokes
    the old run's credential when it kills that run, to the second, and refuses a launch whose
    credential is from that second or earlier ("Job credential revoked"). So wait until the nodes
    have finished the old run (idle), and start the job from the next second."""
    wait_until(lambda: squeue(job) == "PENDING")
    wait_until(
        lambda: (
            set(
                subprocess.run(
                    ["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True
                ).stdout.split()
            )
            == {"idle"}
        )
    )
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now+1"], check=True)


def rows(out: str) -> int:
    path = os.path.join(out, "scalars.csv")
    return len(open(path).read().splitlines()) - 1 if os.path.exists(path) else 0


def job_log(logs: str, job: str) -> str:
    folder = os.path.join(logs, job)
    return "".join(
        open(os.path.join(folder, n)).read()
        for n in sorted(os.listdir(folder))
        if n.endswith((".out", ".err"))
    )


def test_dry_run_prints_the_sbatch_script_for_the_options_given(tmp_path):
    result = submit_cli(
        "train",
        "--config",
        "configs/tiny_cpu.yaml",
        "--nodes",
        "3",
        "--gpus-per-node",
        "8",
        "--time",
        "120",
        "--partition",
        "gpu",
        "--account",
        "proj",
        "--qos",
        "high",
        "--mem",
        "64",
        "--constraint",
        "h100",
        "--signal-lead",
        "300",
        "--slurm",
        "exclude=n7",
        "--after",
        "1234",
        "--logs",
        str(tmp_path),
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    for line in (
        "--nodes=3",
        "--ntasks-per-node=8",
        "--gpus-per-node=8",
        "--time=120",
        "--partition=gpu",
        "--account=proj",
        "--qos=high",
        "--mem=64GB",
        "--constraint=h100",
        "--signal=USR2@300",
        "--exclude=n7",
        "--dependency=afterok:1234",
    ):
        assert f"#SBATCH {line}" in result.stdout, line
    assert not os.listdir(tmp_path)  # nothing submitted
    ingest = submit_cli(
        "ingest",
        "videos/",
        "--out",
        "shards/",
        "--array-size",
        "12",
        "--cpus-per-task",
        "6",
        "--fps",
        "2",
        "--logs",
        str(tmp_path),
        "--dry-run",
    )
    assert ingest.returncode == 0, ingest.stderr
    for line in (
        "--array=0-11%12",
        "--cpus-per-task=6",
        "--nodes=1",
        "--ntasks-per-node=1",
        "--job-name=wtpipe-units",
    ):
        assert f"#SBATCH {line}" in ingest.stdout, line
    assert "wtpipe shards assemble shards/" in ingest.stdout and not os.path.exists(
        os.path.join(ROOT, "shards")
    )
    bad = submit_cli("ingest", "videos/", "--out", "o", "--fps", "0", "--dry-run")
    assert bad.returncode == 2 and "fps must be positive" in bad.stderr


@pytest.mark.slow
def test_two_nodes_equal_torchrun_and_survive_preemption_and_the_time_limit(
    slurm, train_shards, tmp_path
):
    """The preempted and time-limited job ends bit-identical to torchrun on one machine, which is
    also what an uninterrupted two-node job must give (so that run is not repeated here)."""
    ref, out, logs = (str(tmp_path / n) for n in ("ref", "run", "logs"))
    slow = (
        "data.global_size=64",
        "run.checkpoint_every=100",
    )  # steps long enough to land signals in
    run(ddp_cmd(train_shards, ref, *slow))
    job = submit(train_shards, out, logs, *slow)
    wait_until(lambda: rows(out) >= 1)
    subprocess.run(["scontrol", "requeue", job], check=True)  # what preemption does
    release(job)
    wait_until(lambda: "resuming from" in job_log(logs, job) and rows(out) >= 3)
    subprocess.run(
        ["scancel", "--signal=USR2", job], check=True
    )  # the warning before the time limit
    wait_until(lambda: "requeueing job" in job_log(logs, job))
    release(job)
    wait_until(lambda: squeue(job) == "")
    text = job_log(logs, job)
    assert "requeueing job" in text and text.count("resuming from") >= 2, text[-3000:]
    assert_bit_identical(final_state(ref), final_state(out))
    assert logged_steps(out) == logged_steps(ref)
    assert os.path.exists(os.path.join(out, "backbone.safetensors"))

    killed = str(tmp_path / "killed")
    job = submit(
        train_shards, killed, logs, *slow, "run.checkpoint_every=2", "run.dist_timeout_minutes=1"
    )
    wait_until(lambda: rows(killed) >= 2)
    os.kill(task_pid(job, 1), 9)  # one rank dies: its peer must fail, not hang
    started = time.monotonic()
    wait_until(lambda: squeue(job) == "", timeout=120)
    assert time.monotonic() - started < 90
    job = submit(
        train_shards, killed, logs, *slow, "run.checkpoint_every=2", "run.dist_timeout_minutes=1"
    )
    wait_until(lambda: squeue(job) == "")
    assert "resuming from" in job_log(logs, job)
    assert_bit_identical(final_state(ref), final_state(killed))


@pytest.mark.slow
def test_a_seg_finetune_on_two_slurm_tasks_equals_torchrun(slurm, eval_data, reference, tmp_path):
    data, ref, out, logs = (
        os.path.join(eval_data, "seg"),
        str(tmp_path / "ref"),
        str(tmp_path / "run"),
        str(tmp_path / "logs"),
    )
    run(torchrun("wtpipe.cli.main", "eval", "seg", *seg_args(data, reference, ref)))
    result = submit_cli(
        "eval",
        "seg",
        *seg_args(data, reference, out),
        "--cpu",
        "--tasks-per-node",
        "2",
        "--cpus-per-task",
        "1",
        "--time",
        "10",
        "--logs",
        logs,
        env=ENV,
        cwd=None,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    job = result.stdout.split()[2].rstrip(":")
    wait_until(lambda: squeue(job) == "")
    assert "2 process(es)" in job_log(logs, job)
    a, b = final_state(ref), final_state(out)
    assert a["step"] == b["step"] == 12
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for name in ("last", "best"):
        assert json.load(open(os.path.join(ref, name, "metrics.json"))) == json.load(
            open(os.path.join(out, name, "metrics.json"))
        )


def task_pid(job: str, rank: int) -> int:
    """The pid of task ``rank`` of a running job (from the processes' environments)."""
    for name in os.listdir("/proc"):
        try:
            environ = open(f"/proc/{name}/environ", "rb").read().split(b"\0")
        except (OSError, ValueError):
            continue
        if (
            f"SLURM_JOB_ID={job}".encode() in environ
            and f"SLURM_PROCID={rank}".encode() in environ
            and any(
                b"submitit" in part
                for part in open(f"/proc/{name}/cmdline", "rb").read().split(b"\0")
            )
        ):
            return int(name)
    raise AssertionError(f"no task {rank} of job {job}")


def test_local_executor_runs_the_tiny_config_and_logs_into_the_run(train_shards, tmp_path):
    out, cwd = str(tmp_path / "run"), tmp_path / "cwd"
    cwd.mkdir()
    result = submit_cli(
        "train",
        "--config",
        os.path.abspath(os.path.join(ROOT, "configs", "tiny_cpu.yaml")),
        f"data.shards={train_shards}",
        f"run.output_dir={out}",
        "run.max_steps=4",
        "data.num_workers=0",
        "--local",
        "--cpu",
        env=ENV,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "finished" in result.stdout and final_state(out)["step"] == 4
    assert os.listdir(cwd) == [] and os.listdir(
        os.path.join(out, "slurm")
    )  # the logs are the run's


def no_slurm_env(tmp_path) -> dict[str, str]:
    """This environment with a PATH that holds the virtual environment's scripts and nothing else:
    no srun, no sbatch, as on a laptop."""
    path = os.path.dirname(sys.executable)
    assert shutil.which("srun", path=path) is None and shutil.which("sbatch", path=path) is None
    return {**ENV, "PATH": path, "HOME": str(tmp_path)}


@pytest.mark.parametrize(
    "args, shows",
    [
        (
            ["jobs/dora_vits16_wt.yaml"],
            "#SBATCH --output=/runs/dora_vits16_wt/slurm/%j/%j_0_log.out",
        ),
        (
            [
                "train",
                "--config",
                "configs/dino_vits16_wt.yaml",
                "data.shards=/x",
                "--nodes",
                "2",
                "--gpus-per-node",
                "8",
            ],
            "#SBATCH --output=runs/dino_vits16_wt/slurm/%j/%j_0_log.out",
        ),
        (
            ["ingest", "/data/videos", "--out", "/data/wt", "--array-size", "4"],
            "#SBATCH --output=/data/wt-slurm/%A_%a/%A_%a_0_log.out",
        ),
        (
            ["eval", "knn", "--weights", "/runs/x", "--data", "/d"],
            "#SBATCH --output=/runs/x/slurm/%j/%j_0_log.out",
        ),
        (
            ["eval", "seg", "--config", "configs/seg_tiny_cpu.yaml", "run.output_dir=/runs/seg"],
            "#SBATCH --output=/runs/seg/slurm/%j/%j_0_log.out",
        ),
        (
            ["export", "/runs/x/checkpoints/step-00000100"],
            "#SBATCH --output=/runs/x/slurm/%j/%j_0_log.out",
        ),
        (
            ["train", "--config", "configs/tiny_cpu.yaml", "data.shards=/x", "--local", "--cpu"],
            "# submitit's local executor, logs in runs/tiny_cpu/slurm/JOBID/, with:",
        ),
    ],
    ids=["job file", "train", "ingest", "eval knn", "eval seg", "export", "local"],
)
def test_dry_runs_need_no_slurm_and_log_into_the_jobs_output(tmp_path, args, shows):
    result = submit_cli(*args, "--dry-run", env=no_slurm_env(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and shows.replace("runs/", "") in result.stdout.replace(
        os.path.abspath(ROOT) + "/", ""
    ).replace("runs/", ""), result.stdout
    assert "# the job runs: wtpipe " in result.stdout or "# each array task runs" in result.stdout


@pytest.mark.skipif(
    shutil.which("srun") is None, reason="compares with submitit's own SLURM executor"
)
def test_the_dry_run_script_is_the_one_submitit_writes(tmp_path):
    from wtpipe.cluster.submit import Resources, executor, sbatch_script

    resources = Resources(
        nodes=2, gpus_per_node=8, mem_gb=64, partition="gpu", after="12", slurm={"exclude": "n1"}
    )
    ours = sbatch_script(str(tmp_path), resources)
    theirs = executor(str(tmp_path), resources)._executor._make_submission_file_text(
        "python -u -m submitit.core._submit ...", "DRY-RUN"
    )
    assert ours == theirs and "#SBATCH --dependency=afterok:12" in ours


def test_a_job_file_gives_the_resources_and_the_command_line_overrides_them():
    result = submit_cli("jobs/dora_vits16_wt.yaml", "--time", "60", "run.max_steps=10", "--dry-run")
    assert result.returncode == 0, result.stderr
    for line in (
        "--nodes=2",
        "--gpus-per-node=8",
        "--ntasks-per-node=8",
        "--cpus-per-task=10",
        "--time=60",
        "--signal=USR2@300",
        "--job-name=dora-vits16-wt",
    ):
        assert f"#SBATCH {line}" in result.stdout, line
    assert result.stdout.rstrip().endswith("run.mixed_precision=bf16 run.max_steps=10")
    assert submit_cli("jobs/dino_tiny_cpu.yaml", "--dry-run").returncode == 0
    for job in ("jobs/seg_upernet_ade20k.yaml", "jobs/det_maskrcnn_coco.yaml"):
        result = submit_cli(job, "--dry-run")
        assert result.returncode == 0 and "#SBATCH --gpus-per-node=8" in result.stdout, (
            result.stderr
        )
        assert f"# the job runs: wtpipe eval {job[5:8]} --config configs/" in result.stdout


def test_mistakes_are_refused_before_anything_waits_in_the_queue(tmp_path):
    typo = submit_cli("train", "--config", "configs/tiny_cpu.yaml", "optim.lrr=2", "--dry-run")
    assert (
        typo.returncode == 2
        and "not submitted" in typo.stderr
        and "did you mean optim.lr" in typo.stderr
    )
    flag = submit_cli("jobs/dino_tiny_cpu.yaml", "--nods", "2", "--dry-run")
    assert flag.returncode == 2 and "unrecognized arguments: --nods" in flag.stderr
    seg = submit_cli(
        "eval", "seg", "--config", "configs/seg_tiny_cpu.yaml", "optim.iter=5", "--dry-run"
    )
    assert (
        seg.returncode == 2
        and "not submitted: wtpipe eval seg unknown config key 'optim.iter'" in seg.stderr
    )
    bad = tmp_path / "job.yaml"
    bad.write_text("command: train\nresource: {}\n")
    refused = submit_cli(str(bad), "--dry-run")
    assert (
        refused.returncode == 2
        and "unknown config key 'resource' (did you mean resources?)" in refused.stderr
    )


def job_ids(stdout: str) -> list[str]:
    """The job ids a `wtpipe submit ingest` printed (the array's, then the assembly's)."""
    return [
        line.split()[3 if line.startswith("submitted array") else 2].rstrip(":")
        for line in stdout.splitlines()
        if line.startswith("submitted ")
    ]


@pytest.mark.slow
def test_ingestion_array_equals_a_local_build_and_resubmission_runs_only_failed_units(
    slurm, media, tmp_path
):
    inputs = [media("h264_4k"), media("short_gop")]
    settings = [
        "--fps",
        "4",
        "--unit-seconds",
        "0.5",
        "--segment-seconds",
        "4",
        "--min-shards",
        "3",
    ]
    reference, out, logs = (str(tmp_path / n) for n in ("ref", "out", "logs"))
    run(
        [
            sys.executable,
            "-m",
            "wtpipe.cli.main",
            "shards",
            "build",
            *inputs,
            "--out",
            reference,
            *settings,
            "--workers",
            "2",
            "--quiet",
        ]
    )
    blocked = os.path.join(out, ".work", "units", "bunny-h264-4k-u00002.tar")
    os.makedirs(blocked)  # that unit's frames cannot be written: its array task fails

    def submit_ingest() -> tuple[list[str], str]:
        result = submit_cli(
            "ingest",
            *inputs,
            "--out",
            out,
            *settings,
            "--array-size",
            "3",
            "--cpus-per-task",
            "1",
            "--time",
            "10",
            "--logs",
            logs,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        ids = job_ids(result.stdout)
        wait_until(lambda: all(squeue(j) == "" for j in ids))
        return ids, result.stdout

    ids, stdout = submit_ingest()
    assert len(ids) == 2 and "3 task(s) decoding" in stdout
    assembly = job_log(logs, ids[1])
    assert "bunny_h264_4k.mp4: 1.0-1.4s failed (IsADirectoryError" in assembly, assembly[-2000:]
    assert any("1 failed" in job_log(logs, f"{ids[0]}_{i}") for i in range(3))
    assert "IsADirectoryError" in open(os.path.join(out, "manifest.json")).read()

    os.rmdir(blocked)
    ids, stdout = submit_ingest()
    assert "1 task(s) decoding 1 of" in stdout  # only the failed unit runs again
    for name in [
        *sorted(n for n in os.listdir(reference) if n.startswith("shard-")),
        "manifest.json",
    ]:
        assert (
            open(os.path.join(out, name), "rb").read()
            == open(os.path.join(reference, name), "rb").read()
        ), name
    assert not os.path.exists(os.path.join(out, ".work"))
    assert submit_cli("ingest", *inputs, "--out", out, *settings, "--logs", logs).stdout.startswith(
        "nothing to submit"
    )


@pytest.mark.slow
def test_an_evaluation_waits_for_its_training_job(slurm, train_shards, eval_data, tmp_path):
    out, logs = str(tmp_path / "run"), str(tmp_path / "logs")
    train = submit(train_shards, out, logs)
    result = submit_cli(
        "eval",
        "knn",
        "--weights",
        out,
        "--data",
        f"{eval_data}/scenes",
        "ks=[5]",
        "--cpu",
        "--after",
        train,
        "--time",
        "10",
        "--logs",
        logs,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    evaluation = result.stdout.splitlines()[0].split()[2].rstrip(":")
    assert squeue(evaluation) == "PENDING"  # the run has no weights yet
    wait_until(lambda: squeue(train) == "" and squeue(evaluation) == "")
    report = json.load(open(os.path.join(out, "eval", "knn", "metrics.json")))
    assert (
        report["weights"]["step"] == final_state(out)["step"] == 12
        and report["metrics"]["top1_k5"] > 0
    )
