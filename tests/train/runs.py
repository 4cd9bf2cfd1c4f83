"""Running real training processes in tests: commands, kills as people and schedulers send them,
and bit-for-bit comparisons of the final state."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time

import torch

from wtpipe.engine import checkpoint, rundir

TINY = [
    "model.arch=vit_tiny_patch16_224",
    "model.out_dim=64",
    "model.hidden_dim=64",
    "model.bottleneck_dim=32",
    "data.global_size=32",
    "data.local_size=16",
    "data.local_crops=1",
    "data.batch_size=4",
    "data.num_workers=0",
    "optim.epochs=3",
    "optim.steps_per_epoch=4",
    "optim.warmup_epochs=1",
    "run.checkpoint_every=2",
    "run.log_every=2",
    "run.keep_last=2",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same threads in every run: the same float sums


def train_cmd(shards: str, out: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "wtpipe.cli.train",
        f"data.shards={shards}",
        f"run.output_dir={out}",
        *TINY,
        *extra,
    ]


def free_port() -> int:
    """A port no one listens on now: the tests run two at a time (pytest -n 2), so fixed
    rendezvous ports would collide."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(module: str, *args: str) -> list[str]:
    """``torchrun --nproc_per_node=2 -m MODULE ARGS...`` on a free port."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        "-m",
        module,
        *args,
    ]


def ddp_cmd(shards: str, out: str, *extra: str) -> list[str]:
    return torchrun(
        "wtpipe.cli.train", f"data.shards={shards}", f"run.output_dir={out}", *TINY, *extra
    )


def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env or ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc), torchrun's ranks in their own sessions included."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: set[int], timeout: float = 60) -> set[int]:
    """The processes of ``pids`` still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return {p for p in pids if alive(p)}


def start(cmd: list[str]) -> subprocess.Popen:
    """A run in a session of its own, as a shell job: its process group is what Ctrl-C reaches."""
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
    )


def wait_for(process: subprocess.Popen, path: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while process.poll() is None and not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


def kill_at(cmd: list[str], root: str, step: int, timeout: float = 120) -> None:
    """Start a run and SIGKILL its process group once checkpoint ``step`` exists (or it ends);
    then check that no process of the run survived (torchrun's ranks live in other sessions)."""
    process = start(cmd)
    wait_for(process, os.path.join(root, "checkpoints", rundir.step_name(step)), timeout)
    time.sleep(random.Random(step).uniform(0, 0.5))  # land anywhere in the following step(s)
    tree = descendants(process.pid)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    assert not wait_gone(tree), "processes of the killed run kept running"


def final_state(out: str) -> dict:
    state, _ = checkpoint.load(rundir.latest(os.path.join(out, "checkpoints")))
    return state


def assert_bit_identical(a: dict, b: dict) -> None:
    assert a["step"] == b["step"]
    assert {"student", "teacher", "method"} & set(a) == {"student", "teacher", "method"} & set(b)
    for part in {"student", "teacher", "method"} & set(a):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key}"
    for key, value in a["optimizer"]["state"].items():
        for name, tensor in value.items():
            assert torch.equal(tensor, b["optimizer"]["state"][key][name]), (
                f"optimizer {key}.{name}"
            )


def logged_steps(out: str) -> list[int]:
    with open(os.path.join(out, "scalars.csv")) as handle:
        return [int(line.split(",")[0]) for line in handle.read().splitlines()[1:]]


def damage(path: str, how: str) -> None:
    """Damage checkpoint ``path`` as a crash or a disk would: truncated, a bit flipped, a file missing."""
    state = os.path.join(path, rundir.STATE)
    if how == "truncated":
        with open(state, "r+b") as handle:
            handle.truncate(os.path.getsize(state) // 2)
    elif how == "bit flip":
        with open(state, "r+b") as handle:
            handle.seek(os.path.getsize(state) // 2)
            byte = handle.read(1)
            handle.seek(-1, os.SEEK_CUR)
            handle.write(bytes([byte[0] ^ 0x10]))
    else:
        os.remove(os.path.join(path, "rng-rank0.pt"))
