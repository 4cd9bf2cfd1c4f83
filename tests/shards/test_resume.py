"""Kill a build with SIGKILL at random moments, re-run the same command: byte-identical result."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from ..conftest import shard_names


def command(inputs: list[str], out: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "wtpipe.cli.shards",
        "build",
        *inputs,
        "--out",
        out,
        "--quiet",
        "--fps",
        "4",
        "--unit-seconds",
        "2",
        "--segment-seconds",
        "4",
        "--min-shards",
        "3",
        "--workers",
        "2",
    ]


def run_to_end(cmd: list[str]) -> float:
    start = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return time.monotonic() - start


def run_and_kill(cmd: list[str], after: float) -> None:
    """Start the build in its own process group and SIGKILL the whole group after ``after`` s."""
    process = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        process.wait(timeout=after)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def contents(out: str) -> dict[str, bytes]:
    names = [*shard_names(out), "manifest.json"]
    return {n: open(os.path.join(out, n), "rb").read() for n in names}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, media, sources):
    inputs = [media("short_gop"), media("h264_4k"), media("dead"), sources["vtest.avi"]]
    out = str(tmp_path_factory.mktemp("ref") / "shards")
    seconds = run_to_end(command(inputs, out))
    return inputs, contents(out), seconds


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_killed_builds_resume_to_identical_shards(reference, tmp_path, seed):
    inputs, expected, seconds = reference
    out = str(tmp_path / "shards")
    rng = random.Random(seed)
    for _ in range(3):
        run_and_kill(command(inputs, out), rng.uniform(0.3, 0.9 * seconds))
    run_to_end(command(inputs, out))
    assert contents(out) == expected
    leftovers = [n for _, _, files in os.walk(out) for n in files if ".tmp-" in n]
    assert leftovers == [] and not os.path.exists(os.path.join(out, ".work"))


@pytest.mark.slow
def test_a_killed_build_leaves_nothing_that_looks_complete(reference, tmp_path):
    inputs, expected, seconds = reference
    out = str(tmp_path / "shards")
    run_and_kill(command(inputs, out), seconds * 0.6)
    for name in os.listdir(out):
        if name.startswith("shard-") and ".tmp-" not in name:
            assert open(os.path.join(out, name), "rb").read() == expected[name]
    if os.path.exists(os.path.join(out, "manifest.json")):
        assert contents(out) == expected


def worker_pids(parent: int) -> list[int]:
    children = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == parent:
                        children.append(int(pid))
            except (OSError, IndexError):
                continue
    return children


@pytest.mark.slow
def test_a_killed_worker_stops_the_build_clearly_and_a_rerun_finishes(reference, tmp_path):
    inputs, expected, seconds = reference
    out = str(tmp_path / "shards")
    process = subprocess.Popen(
        command(inputs, out),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while (
        os.path.exists(os.path.join(out, ".work", "plan.json")) is False
        and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    victims = [
        pid
        for pid in worker_pids(process.pid)
        if "resource_tracker" not in open(f"/proc/{pid}/cmdline").read()
    ]
    assert victims, "the build has worker processes while it stages units"
    os.kill(victims[0], signal.SIGKILL)  # the OOM killer's way
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2 and "a worker process died" in stderr and "re-run" in stderr
    run_to_end(command(inputs, out))
    assert contents(out) == expected
