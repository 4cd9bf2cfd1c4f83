"""Step checkpoints: complete or absent, named by step, found through an atomic ``latest`` pointer.

A checkpoint is written into ``step-XXXXXXXX.tmp-PID/`` (the shared state by the main process,
each rank's RNG states by that rank), then renamed; ``latest`` is replaced atomically after the
rename, and older checkpoints are pruned only then. Loading uses ``weights_only=True``: only
tensors and plain containers are ever unpickled.
"""

from __future__ import annotations

import os
import random
import shutil
from typing import Any

import numpy as np
import torch

from wtpipe.rundir import LATEST, STATE, completed, step_name
from wtpipe.shards.tarwriter import TMP_MARK, write_json_atomic


def rng_state() -> dict[str, Any]:
    """This process's RNG states as tensors and plain values (safe for ``weights_only`` loading)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_version": random.getstate()[0], "python_gauss": random.getstate()[2],
             "numpy": torch.from_numpy(keys.astype(np.int64)), "numpy_pos": int(pos),
             "numpy_gauss": [int(has_gauss), float(gauss)]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    has_gauss, gauss = state["numpy_gauss"]
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"],
                         int(has_gauss), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def tmp_dir(root: str, step: int, pid: int) -> str:
    return os.path.join(root, f"{step_name(step)}{TMP_MARK}{pid}")


def write_rank_rng(directory: str, rank: int) -> None:
    torch.save(rng_state(), os.path.join(directory, f"rng-rank{rank}.pt"))


def publish(root: str, directory: str, step: int, state: dict[str, Any], keep_last: int) -> str:
    """Main process: write the shared state into ``directory``, rename it final, point ``latest``, prune."""
    torch.save(state, os.path.join(directory, STATE))
    final = os.path.join(root, step_name(step))
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(directory, final)
    write_json_atomic(os.path.join(root, LATEST), step_name(step))
    for old in completed(root)[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(os.path.join(root, old))
    return final


def remove_partial(root: str) -> None:
    """Delete checkpoints a killed run left half-written."""
    if os.path.isdir(root):
        for name in os.listdir(root):
            if name.startswith("step-") and TMP_MARK in name:
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def load(path: str, rank: int | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(shared state, this rank's RNG states or None) of a checkpoint directory or its state.pt."""
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    state = torch.load(os.path.join(directory, STATE), map_location="cpu", weights_only=True)
    rng = None
    if rank is not None:
        rng_path = os.path.join(directory, f"rng-rank{rank}.pt")
        if os.path.exists(rng_path):
            rng = torch.load(rng_path, map_location="cpu", weights_only=True)
    return state, rng
