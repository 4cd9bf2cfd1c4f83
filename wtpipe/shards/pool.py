"""The build's worker processes: spawned, dying with the driver, reporting decoded frames on a
queue the driver drains for its progress bar."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import queue
import signal
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from wtpipe.process import die_with_parent
from wtpipe.shards.outdir import BuildError
from wtpipe.shards.staging import StageJob, stage_unit
from wtpipe.video.probe import VideoInfo, probe
from wtpipe.video.units import Unit, plan_units

MIN_UNIT_SECONDS = 10.0
_PROGRESS: Any = None


def unit_length(unit_seconds: float, duration_s: float, workers: int) -> float:
    """``unit_seconds``, shortened (not below 10 s) so that a short video still gives every
    worker a unit. Unit boundaries never change the output (units join exactly)."""
    return min(unit_seconds, max(MIN_UNIT_SECONDS, duration_s / max(workers, 1)))


def _init_worker(progress: Any) -> None:
    global _PROGRESS
    die_with_parent()  # workers exit when the driver dies (SIGKILL included): no orphan races a re-run
    # SLURM's time-limit warning reaches every process of a job; the driver acts on it (requeue)
    # and the workers end with it, rather than dying first and leaving a broken pool behind.
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    _PROGRESS = progress


def probe_and_plan(
    path: str, video_id: str, unit_seconds: float, workers: int
) -> tuple[VideoInfo, list[Unit]]:
    """In a worker: probe one input and cut it into units."""
    info = probe(path)
    return info, plan_units(info, video_id, unit_length(unit_seconds, info.duration_s, workers))


def stage(job: StageJob) -> dict[str, Any]:
    """In a worker: decode one unit into its staged tar."""
    return stage_unit(job, _PROGRESS)


def drain(progress: Any) -> list[int]:
    """The frame counts the workers reported since the last call."""
    counts = []
    try:
        while True:
            counts.append(progress.get_nowait())
    except queue.Empty:
        return counts


@contextlib.contextmanager
def workers(count: int, out: str) -> Iterator[tuple[cf.Executor, Any]]:
    """A pool of ``count`` worker processes and the queue they report decoded frames on; a dead
    worker ends the build with one line about ``out``."""
    context = multiprocessing.get_context("spawn")
    progress = context.Queue()
    try:
        with cf.ProcessPoolExecutor(
            count, mp_context=context, initializer=_init_worker, initargs=(progress,)
        ) as pool:
            yield pool, progress
    except BrokenProcessPool:
        raise BuildError(
            f"{out}: a worker process died (killed, out of memory, or a decoder "
            "crash); finished units are kept: re-run the same command to continue"
        ) from None
