"""Step checkpoints: complete or absent, named by step, found through an atomic ``latest`` pointer.

A checkpoint is written into ``step-XXXXXXXX.tmp-PID/`` (the shared state by the main process,
each rank's RNG states by that rank), then renamed; ``latest`` is replaced atomically after the
rename, and older checkpoints are pruned only then. Loading uses ``weights_only=True``: only
tensors and plain containers are ever unpickled.

Every checkpoint lists its files' sizes and SHA-256 in ``checksums.json`` (written last, before
the rename). A run resumes from the newest checkpoint that matches its list and loads; one that
does not (truncated, bit-flipped, a file missing) is named in the log and set aside as
``corrupt-step-XXXXXXXX`` (never deleted), and the previous one is tried.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import re
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from wtpipe.atomic import TMP_MARK, replace_dir, write_json_atomic
from wtpipe.config import differences, to_dict
from wtpipe.engine.rundir import LATEST, STATE, completed, latest, step_name

log = logging.getLogger(__name__)
CHECKSUMS = "checksums.json"
SET_ASIDE = "corrupt-"


class ResumeError(Exception):
    """A checkpoint that cannot continue this run (another config, another world size)."""


class CorruptCheckpoint(Exception):
    """A checkpoint whose files do not match its checksums or do not load."""


class WriteError(Exception):
    """A checkpoint that could not be written (disk full, quota, file-size limit)."""


def rng_state() -> dict[str, Any]:
    """This process's RNG states as tensors and plain values (safe for ``weights_only`` loading)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
        "python_gauss": random.getstate()[2],
        "numpy": torch.from_numpy(keys.astype(np.int64)),
        "numpy_pos": int(pos),
        "numpy_gauss": [int(has_gauss), float(gauss)],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    has_gauss, gauss = state["numpy_gauss"]
    np.random.set_state(
        (
            "MT19937",
            state["numpy"].numpy().astype(np.uint32),
            state["numpy_pos"],
            int(has_gauss),
            gauss,
        )
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def tmp_dir(root: str, step: int, pid: int) -> str:
    return os.path.join(root, f"{step_name(step)}{TMP_MARK}{pid}")


def write_rank_rng(directory: str, rank: int) -> None:
    torch.save(rng_state(), os.path.join(directory, f"rng-rank{rank}.pt"))


def start(accelerator: Any, root: str, step: int) -> str:
    """All ranks: the temporary directory of checkpoint ``step`` (named after the main process's
    pid, so every rank writes into the same one), holding each rank's RNG state once this returns."""
    pid = torch.tensor(
        [os.getpid() if accelerator.is_main_process else 0], device=accelerator.device
    )
    directory = tmp_dir(root, step, int(accelerator.reduce(pid, "sum").item()))
    try:
        if accelerator.is_main_process:
            os.makedirs(directory, exist_ok=True)
        accelerator.wait_for_everyone()
        write_rank_rng(directory, accelerator.process_index)
        accelerator.wait_for_everyone()
    except KeyboardInterrupt:  # a second Ctrl-C: no temporary folder is left behind
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return directory


@contextlib.contextmanager
def writing(root: str, directory: str, step: int) -> Iterator[None]:
    """Turn a failed write into one :class:`WriteError` line and delete the half-written
    ``directory``: the space comes back, and the last complete checkpoint stays the one a re-run
    resumes from. A second Ctrl-C while it writes deletes it too and stays a KeyboardInterrupt
    (``torch.save`` reports the interrupted write as a RuntimeError: it is not a disk problem)."""
    try:
        yield
    except KeyboardInterrupt:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    except (OSError, RuntimeError) as err:
        shutil.rmtree(directory, ignore_errors=True)
        if _caused_by_interrupt(err):
            raise KeyboardInterrupt from None
        free = shutil.disk_usage(root).free / 2**30
        raise WriteError(
            f"cannot write checkpoint {os.path.join(root, step_name(step))}: {_reason(err)} "
            f"({free:.1f} GiB free there); earlier checkpoints are untouched: make room and "
            f"re-run the same command to resume"
        ) from err


def _caused_by_interrupt(err: BaseException) -> bool:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(err: BaseException) -> str:
    """The operating system's words (torch.save reports a failed write as a RuntimeError whose
    context holds the OSError)."""
    seen: BaseException | None = err
    while seen is not None and not isinstance(seen, OSError):
        seen = seen.__cause__ or seen.__context__
    return (seen.strerror or str(seen)) if isinstance(seen, OSError) else str(err)


def publish(root: str, directory: str, step: int, state: dict[str, Any], keep_last: int) -> str:
    """Main process: write the shared state into ``directory``, rename it final, point ``latest``, prune."""
    with open(
        os.path.join(directory, STATE), "wb"
    ) as handle:  # a Python file: failures keep their errno
        torch.save(state, handle)
    sums = {name: _digest(os.path.join(directory, name)) for name in sorted(os.listdir(directory))}
    write_json_atomic(os.path.join(directory, CHECKSUMS), json.dumps(sums, indent=1))
    final = os.path.join(root, step_name(step))
    if os.path.exists(final):
        shutil.rmtree(final)
    replace_dir(directory, final)
    write_json_atomic(os.path.join(root, LATEST), step_name(step))
    for old in completed(root)[:-keep_last] if keep_last > 0 else []:
        doomed = os.path.join(
            root, f"{old}{TMP_MARK}pruned"
        )  # renamed first: never half-deleted under its name
        replace_dir(os.path.join(root, old), doomed)
        shutil.rmtree(doomed)
    return final


def remove_partial(root: str) -> None:
    """Delete checkpoints a killed run left half-written."""
    if os.path.isdir(root):
        for name in os.listdir(root):
            if name.startswith("step-") and TMP_MARK in name:
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _digest(path: str) -> dict[str, Any]:
    with open(path, "rb") as handle:
        return {
            "bytes": os.fstat(handle.fileno()).st_size,
            "sha256": hashlib.file_digest(handle, "sha256").hexdigest(),
        }


def check(directory: str, only: tuple[str, ...] = ()) -> None:
    """Raise :class:`CorruptCheckpoint` unless every file listed in ``checksums.json`` (or, given
    ``only``, each of those) is intact.

    Checkpoints written before checksums existed are accepted if their state is there.
    """
    listing = os.path.join(directory, CHECKSUMS)
    if not os.path.exists(listing):
        if not os.path.exists(os.path.join(directory, STATE)):
            raise CorruptCheckpoint(f"no {STATE}")
        return
    try:
        with open(listing, encoding="utf-8") as handle:
            expected = json.load(handle)
    except (OSError, ValueError) as err:
        raise CorruptCheckpoint(f"{CHECKSUMS} unreadable ({err})") from None
    for name, want in expected.items():
        if only and name not in only:
            continue
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            raise CorruptCheckpoint(f"{name} is missing")
        got = _digest(path)
        if got["bytes"] != want["bytes"]:
            raise CorruptCheckpoint(
                f"{name} has {got['bytes']} bytes, {want['bytes']} written (truncated?)"
            )
        if got["sha256"] != want["sha256"]:
            raise CorruptCheckpoint(f"{name} does not match its SHA-256 (corrupted on disk?)")


def set_aside(directory: str) -> str:
    """Rename a bad checkpoint out of the way (kept for inspection); returns the new path."""
    root, name = os.path.split(directory)
    target, n = os.path.join(root, SET_ASIDE + name), 1
    while os.path.exists(target):
        n += 1
        target = os.path.join(root, f"{SET_ASIDE}{name}.{n}")
    replace_dir(directory, target)
    return target


def newest_intact(root: str) -> tuple[str, dict[str, Any]] | None:
    """Main process: (path, shared state) of the newest checkpoint that checks and loads.

    Bad ones on the way are logged and set aside, and ``latest`` is pointed at the one found
    (removed when none is left), so that the other ranks load the same step.
    """
    for name in reversed(completed(root)):
        path = os.path.join(root, name)
        try:
            check(path)
            state = load_state(path)
        except CorruptCheckpoint as err:
            log.warning(
                "checkpoint %s is damaged: %s; set aside as %s, trying the one before",
                path,
                err,
                set_aside(path),
            )
            continue
        write_json_atomic(os.path.join(root, LATEST), name)
        return path, state
    if os.path.exists(os.path.join(root, LATEST)):
        os.remove(os.path.join(root, LATEST))
    return None


def load_state(directory: str) -> dict[str, Any]:
    """A checkpoint's shared state; a file that does not unpickle is a :class:`CorruptCheckpoint`."""
    try:
        return torch.load(os.path.join(directory, STATE), map_location="cpu", weights_only=True)
    except (
        Exception
    ) as err:  # torch raises RuntimeError, EOFError, UnpicklingError... for bad bytes
        raise CorruptCheckpoint(f"{STATE} does not load: {_first_sentence(err)}") from None


def _first_sentence(err: BaseException) -> str:
    """The error's first sentence, whole (PyTorch's messages run to paragraphs), or its kind."""
    text = " ".join(str(err).split())
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".")
    return sentence if 0 < len(sentence) <= 160 else f"{type(err).__name__} while reading it"


def load_rank_rng(directory: str, rank: int) -> dict[str, Any] | None:
    path = os.path.join(directory, f"rng-rank{rank}.pt")
    return torch.load(path, map_location="cpu", weights_only=True) if os.path.exists(path) else None


def load(path: str, rank: int | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(shared state, this rank's RNG states or None) of a checkpoint directory or its state.pt."""
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    state = load_state(directory)
    return state, None if rank is None else load_rank_rng(directory, rank)


def resume(
    accelerator: Any, root: str, config: Any
) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """All ranks: (path, shared state, this rank's RNG states) of the newest intact checkpoint
    under ``root``, or None for a fresh run. The main process removes half-written checkpoints and
    sets damaged ones aside; the others follow ``latest``. A checkpoint of another config (compared
    with ``config``'s own class, :func:`wtpipe.config.differences`) or world size is a
    :class:`ResumeError`."""
    found = None
    if accelerator.is_main_process:
        remove_partial(root)
        found = newest_intact(root)
    accelerator.wait_for_everyone()
    path = found[0] if found else latest(root)
    if path is None:
        return None
    state = found[1] if found else load_state(path)
    diffs = differences(config, state["config"])
    if diffs:
        raise ResumeError(
            f"{path} was written by a run with another config ({'; '.join(diffs)}); "
            "use another run.output_dir, or the same config to resume"
        )
    rng = load_rank_rng(path, accelerator.process_index)
    if rng is None:
        raise ResumeError(
            f"{path} holds no RNG state for rank {accelerator.process_index} (world size changed?)"
        )
    if accelerator.scaler is not None and "scaler" in state:
        accelerator.scaler.load_state_dict(state["scaler"])
    if accelerator.is_main_process:
        log.info("resuming from %s (step %d)", path, state["step"])
    return path, state, rng


def save(
    accelerator: Any,
    root: str,
    step: int,
    config: Any,
    optimizer: Any,
    parts: Callable[[], dict[str, Any]],
    alongside: Callable[[str], None] | None = None,
) -> None:
    """All ranks: checkpoint ``step``: every rank's RNG states; from the main process the step, the
    config, the optimizer's and the loss scaler's state and the loop's ``parts()`` (its networks),
    with ``alongside(directory)``'s files; then published at once."""
    directory = start(accelerator, root, step)
    if accelerator.is_main_process:
        with writing(root, directory, step):
            state = {
                "step": step,
                "config": to_dict(config),
                "optimizer": optimizer.state_dict(),
                **parts(),
            }
            if accelerator.scaler is not None:
                state["scaler"] = accelerator.scaler.state_dict()
            if alongside is not None:
                alongside(directory)
            publish(root, directory, step, state, config.run.keep_last)
    accelerator.wait_for_everyone()
