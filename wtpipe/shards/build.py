"""Ingestion driver: videos in, verified WebDataset shards and a manifest out, resumably.

Phases, each resumable on its own:
1. *plan*: probe every input and cut it into keyframe-aligned units (``.work/plan.json``);
2. *stage*: worker processes decode units in parallel (many per long video) into staged tars;
   a unit's JSON sidecar marks it done, so a re-run skips it;
3. *assemble*: dead footage is found over each video's whole timeline, segments are cut and
   dealt into shards by byte copy; each finished shard is logged, so a re-run skips it;
4. *manifest*: written last, atomically; then the staging area is removed.
The output depends only on the inputs and the settings, never on worker count or interruptions.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from wtpipe.process import available_cores
from wtpipe.shards import layout
from wtpipe.shards import pool as workers_pool
from wtpipe.shards.journal import ShardJournal
from wtpipe.shards.manifest import build_manifest, sample_header, video_entry
from wtpipe.shards.outdir import MANIFEST, WORK, BuildDir, BuildError
from wtpipe.shards.pool import unit_length
from wtpipe.shards.settings import BuildSettings
from wtpipe.shards.staging import StageJob, failure, is_staged, load_staged, mark_failed, unit_paths
from wtpipe.shards.writer import sample_members, write_shard
from wtpipe.video.grid import FrameGrid
from wtpipe.video.probe import ProbeError, VideoInfo
from wtpipe.video.units import Unit

__all__ = [
    "MANIFEST",
    "WORK",
    "BuildError",
    "BuildReport",
    "PlanReport",
    "Problem",
    "ShardBuilder",
    "unit_length",
]

VIDEO_EXTENSIONS = {
    ".mp4",
    ".mkv",
    ".webm",
    ".mov",
    ".avi",
    ".m4v",
    ".mts",
    ".m2ts",
    ".ts",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
    ".3gp",
    ".ogv",
}


@dataclass
class Problem:
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class BuildReport:
    out: str
    manifest: dict[str, Any]
    seconds: float = 0.0
    source_frames: int = 0
    resumed_units: int = 0
    problems: list[Problem] = field(default_factory=list)
    passed_over: list[str] = field(
        default_factory=list
    )  # files in input folders that are not videos


@dataclass
class PlanReport:
    """What planning found: a finished build (nothing to do), or the units still to decode."""

    finished: BuildReport | None = None
    units: int = 0
    todo: list[str] = field(default_factory=list)  # unit names not staged yet
    unreadable: list[Problem] = field(default_factory=list)  # inputs that could not be probed


def discover_inputs(paths: list[str]) -> tuple[list[str], list[str]]:
    """(files given directly plus video files found recursively, sorted, under directories;
    the files under those directories passed over because their extension is not a video's)."""
    found: list[str] = []
    passed_over: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    is_video = os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS
                    (found if is_video else passed_over).append(os.path.join(root, name))
        else:
            found.append(path)
    return [os.path.abspath(p) for p in dict.fromkeys(found)], passed_over


def video_ids(paths: list[str]) -> list[str]:
    """Short, unique, dot-free ids from file names (WebDataset keys split at the first dot)."""
    ids: list[str] = []
    for path in paths:
        base = re.sub(
            r"[^a-z0-9]+", "-", os.path.splitext(os.path.basename(path))[0].lower()
        ).strip("-")
        base = base or "video"
        candidate, n = base, 1
        while candidate in ids:
            n += 1
            candidate = f"{base}-{n}"
        ids.append(candidate)
    return ids


def _unit_problem(info: VideoInfo, unit: Unit, why: str) -> Problem:
    return Problem(
        info.path, f"{unit.start_s:.1f}-{unit.end_s:.1f}s failed ({why}); re-run to retry"
    )


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


class ShardBuilder:
    """One build of ``inputs`` into ``out``; :meth:`run` does it all and returns the report."""

    def __init__(
        self,
        inputs: list[str],
        out: str,
        settings: BuildSettings,
        workers: int | None = None,
        overwrite: bool = False,
        progress: bool = True,
    ) -> None:
        self.inputs, self.passed_over = discover_inputs(inputs)
        self.ids = video_ids(self.inputs)
        self.dir = BuildDir(out)
        self.out, self.staging = self.dir.out, self.dir.staging
        self.settings = settings
        self.cores = available_cores()
        self.workers = max(1, workers or self.cores)
        self.split = (
            self.workers
        )  # a short video is cut into this many units (>= 10 s) if it can be
        self.overwrite = overwrite
        self.show_progress = progress

    def _check_settings(self) -> None:
        """Refuse to mix outputs of different settings or inputs in one directory."""
        recorded = self.dir.recorded()
        if recorded is None:
            return
        old = BuildSettings.from_json(recorded["settings"])
        changes = old.differences(self.settings)
        if recorded["inputs"] != self.inputs:
            changes.append("the input videos differ")
        if changes:
            raise BuildError(
                f"{self.out} holds a build with other settings ({'; '.join(changes)}); "
                "re-run with the same settings to resume, or pass --overwrite"
            )

    # -- phase 1: plan -------------------------------------------------------------------
    def _plan(self, pool: cf.Executor) -> dict[str, Any]:
        plan: dict[str, Any] = {
            "settings": self.settings.to_json(),
            "inputs": self.inputs,
            "videos": {},
        }
        if os.path.exists(self.dir.plan_path):
            plan = self.dir.read_plan()
        todo = [
            (p, i)
            for p, i in zip(self.inputs, self.ids)
            if i not in plan["videos"] or "error" in plan["videos"][i]
        ]
        futures = {
            pool.submit(
                workers_pool.probe_and_plan, p, i, self.settings.unit_seconds, self.split
            ): (p, i)
            for p, i in todo
        }
        for future in tqdm(
            cf.as_completed(futures),
            total=len(futures),
            desc="probe",
            unit="video",
            disable=not self.show_progress or not futures,
            leave=False,
        ):
            path, vid = futures[future]
            try:
                info, units = future.result()
                plan["videos"][vid] = {
                    "info": info.to_json(),
                    "units": [u.to_json() for u in units],
                }
            except ProbeError as err:
                plan["videos"][vid] = {"path": path, "error": err.problem}
            except BrokenProcessPool:
                raise
            except Exception as err:  # noqa: BLE001 - any failure to read one input is reported, not fatal
                plan["videos"][vid] = {"path": path, "error": _one_line(err)}
        self.dir.write_plan(plan)
        return plan

    # -- phase 2: stage ------------------------------------------------------------------
    def _units(self, plan: dict[str, Any]) -> Iterator[tuple[VideoInfo, Unit]]:
        """Every planned unit of every readable video, in input order."""
        for vid in self.ids:
            entry = plan["videos"][vid]
            if "error" not in entry:
                info = VideoInfo.from_json(entry["info"])
                yield from ((info, Unit.from_json(u)) for u in entry["units"])

    def _stage_all(
        self,
        pool: cf.Executor,
        plan: dict[str, Any],
        progress: Any,
        report: BuildReport,
        only: set[str] | None = None,
    ) -> list[Problem]:
        """Stage every unit (of ``only``, if given) not staged yet; return the failures.
        A failure is also recorded next to the unit, for an assembly that runs elsewhere."""
        todo: list[tuple[VideoInfo, Unit]] = []
        for info, unit in self._units(plan):
            if only is not None and unit.name not in only:
                continue
            if is_staged(self.staging, unit):
                report.resumed_units += 1
            else:
                todo.append((info, unit))
        # Cores left over when there are fewer units than workers become decoder threads.
        threads = max(1, self.cores // max(1, min(self.workers, len(todo))))
        jobs = [
            StageJob(
                info,
                unit,
                self.staging,
                self.settings.short_side,
                self.settings.fps_out,
                self.settings.staged_quality,
                threads,
                self.settings.backend,
            )
            for info, unit in todo
        ]
        expected_frames = sum(round((u.end_s - u.start_s) * float(i.fps)) for i, u in todo)
        failures: list[Problem] = []
        if not jobs:
            return failures
        # Interleave videos so that every video makes progress and the pool stays busy.
        jobs.sort(key=lambda j: (j.unit.index, j.unit.video_id))
        bar = tqdm(
            total=expected_frames,
            desc="decode",
            unit="frame",
            unit_scale=True,
            disable=not self.show_progress,
            smoothing=0.1,
        )
        futures = {pool.submit(workers_pool.stage, job): job for job in jobs}
        pending = set(futures)
        done_units = 0
        while pending:
            finished, pending = cf.wait(pending, timeout=0.25, return_when=cf.FIRST_COMPLETED)
            for count in workers_pool.drain(progress):
                report.source_frames += count
                bar.update(count)
            for future in finished:
                job = futures[future]
                done_units += 1
                try:
                    future.result()
                except BrokenProcessPool:
                    raise
                except Exception as err:  # noqa: BLE001 - the unit is retried on the next run
                    mark_failed(self.staging, job.unit, _one_line(err))
                    failures.append(_unit_problem(job.info, job.unit, _one_line(err)))
            bar.set_postfix_str(
                f"units {done_units + report.resumed_units}/{len(jobs) + report.resumed_units}"
            )
        bar.close()
        return failures

    # -- phase 3: assemble ---------------------------------------------------------------
    def _video_segments(
        self, vid: str, entry: dict[str, Any], report: BuildReport
    ) -> tuple[list[layout.Segment], dict[str, Any]]:
        """Join a video's staged units, drop dead footage, cut segments; report what went wrong."""
        info = VideoInfo.from_json(entry["info"])
        units = [Unit.from_json(u) for u in entry["units"]]
        staged: list[tuple[str, dict[str, Any]]] = []
        decoded_frames = 0
        last_t = None
        for unit in units:
            if not is_staged(self.staging, unit):
                report.problems.append(
                    _unit_problem(info, unit, failure(self.staging, unit) or "not staged")
                )
                continue
            sidecar = load_staged(self.staging, unit)
            staged.append((unit_paths(self.staging, unit)[0], sidecar))
            decoded_frames += sidecar["source_frames"]
            if sidecar["decode_errors"]:
                report.problems.append(
                    Problem(
                        info.path,
                        f"{sidecar['decode_errors']} corrupt packet(s) skipped "
                        f"({sidecar['first_error']})",
                    )
                )
            last_t = sidecar["last_t"] if sidecar["last_t"] is not None else last_t
        period = 1.0 / float(self.settings.fps_out)
        refs, flat, changes = layout.join_units(staged)
        dead_mask, dead_ranges = layout.find_dead(
            refs, flat, changes, period, self.settings.dead_limits
        )
        if self.settings.keep_dead:
            dead_mask = [False] * len(refs)
        grid = FrameGrid(info.first_pts, info.time_base, self.settings.fps_out)
        segments = layout.cut_segments(
            vid, refs, dead_mask, grid.index, self.settings.segment_frames, period
        )
        if staged and not refs:
            report.problems.append(Problem(info.path, "no frame could be decoded"))
        decoded_end = (last_t or 0.0) + 1.0 / float(info.fps)
        if len(staged) == len(units) and decoded_end < info.duration_s - max(
            2.0, 0.05 * info.duration_s
        ):
            report.problems.append(
                Problem(
                    info.path,
                    f"frames end at {decoded_end:.1f}s but the header says "
                    f"{info.duration_s:.1f}s (truncated?)",
                )
            )
        video = video_entry(
            vid, info, self.settings, segments, dead_ranges, decoded_frames, decoded_end
        )
        return segments, video

    def _assemble(
        self, pool: cf.Executor, plan: dict[str, Any], report: BuildReport
    ) -> dict[str, Any]:
        segments: list[layout.Segment] = []
        videos = []
        for vid in self.ids:
            entry = plan["videos"][vid]
            if "error" in entry:
                report.problems.append(Problem(entry["path"], entry["error"]))
                continue
            video_segments, video = self._video_segments(vid, entry, report)
            segments.extend(video_segments)
            videos.append(video)
        headers = {
            vid: sample_header(VideoInfo.from_json(plan["videos"][vid]["info"]), self.settings)
            for vid in (v["id"] for v in videos)
        }
        shards = layout.assign_shards(
            segments,
            int(self.settings.shard_mb * 2**20),
            self.settings.min_shards,
            self.settings.seed,
        )
        layout_id = hashlib.sha256(
            json.dumps(
                [
                    self.settings.to_json(),
                    [[(s.key, len(s.frames)) for s in shard] for shard in shards],
                ],
            ).encode()
        ).hexdigest()
        journal = ShardJournal(os.path.join(self.dir.work, "shards.jsonl"), layout_id)
        entries = []
        total_frames = sum(len(s.frames) for s in segments)
        bar = tqdm(
            total=total_frames,
            desc="shards",
            unit="frame",
            unit_scale=True,
            disable=not self.show_progress or not total_frames,
            leave=False,
        )
        for index, shard in enumerate(shards):
            name = f"shard-{index:06d}.tar"
            path = os.path.join(self.out, name)
            record = journal.finished(name, path)
            if record is None:
                args = [(s, headers[s.video_id], self.settings.frame_format) for s in shard]
                if self.settings.frame_format == "jpg":
                    samples = (sample_members(*a) for a in args)
                else:
                    samples = pool.map(sample_members, *zip(*args))
                record = write_shard(path, samples)
                journal.add(record)
            entries.append(record)
            bar.update(record["frames"])
        bar.close()
        failed = [{"path": p.path, "problem": p.problem} for p in report.problems]
        return build_manifest(self.settings, self.inputs, entries, videos, failed)

    # -- driver --------------------------------------------------------------------------
    def run(self) -> BuildReport:
        """The whole build in this process: plan, stage, assemble."""
        start = time.monotonic()
        finished = self._start()
        if finished is not None:
            return finished
        with self.dir.lock():
            self.dir.tidy(self.overwrite)
            with workers_pool.workers(self.workers, self.out) as (pool, progress):
                plan = self._plan(pool)
                report = BuildReport(self.out, {})
                self._stage_all(pool, plan, progress, report)
                self._assemble_and_finish(pool, plan, report)
        report.seconds = time.monotonic() - start
        report.passed_over = self.passed_over
        return report

    # -- the phases as separate jobs (wtpipe submit ingest) ---------------------------------
    @classmethod
    def resume(cls, out: str, workers: int | None = None, progress: bool = False) -> ShardBuilder:
        """The builder of the plan in ``out`` (written by :meth:`plan`): inputs and settings from it."""
        path = os.path.join(os.path.abspath(out), WORK, "plan.json")
        try:
            with open(path, encoding="utf-8") as handle:
                plan = json.load(handle)
        except FileNotFoundError:
            raise BuildError(
                f"{path}: no build plan (it is made when the build is submitted)"
            ) from None
        except ValueError as err:
            raise BuildError(f"{path}: unreadable build plan ({err})") from None
        return cls(
            plan["inputs"],
            out,
            BuildSettings.from_json(plan["settings"]),
            workers,
            progress=progress,
        )

    def plan(self, split: int) -> PlanReport:
        """Phase 1 alone, for ``split`` decoding processes (array tasks x their workers)."""
        self.split = split
        finished = self._start()
        if finished is not None:
            return PlanReport(finished=finished)
        with self.dir.lock():
            self.dir.tidy(self.overwrite)
            with workers_pool.workers(self.workers, self.out) as (pool, _):
                plan = self._plan(pool)
        units = [u for _, u in self._units(plan)]
        return PlanReport(
            units=len(units),
            todo=[u.name for u in units if not is_staged(self.staging, u)],
            unreadable=[
                Problem(e["path"], e["error"]) for e in plan["videos"].values() if "error" in e
            ],
        )

    def stage(self, names: list[str]) -> tuple[int, list[Problem]]:
        """Phase 2 for some units (one array task; no lock, as tasks share the directory and each
        unit is written atomically): (units already staged, failures)."""
        plan = self.dir.read_plan()
        report = BuildReport(self.out, {})
        with workers_pool.workers(self.workers, self.out) as (pool, progress):
            failures = self._stage_all(pool, plan, progress, report, only=set(names))
        return report.resumed_units, failures

    def assemble(self) -> BuildReport:
        """Phase 3 over whatever is staged; units not staged are problems, as in :meth:`run`."""
        start = time.monotonic()
        with self.dir.lock():
            plan = self.dir.read_plan()
            report = BuildReport(self.out, {})
            with workers_pool.workers(self.workers, self.out) as (pool, _):
                self._assemble_and_finish(pool, plan, report)
        report.seconds = time.monotonic() - start
        return report

    # -- shared steps --------------------------------------------------------------------
    def _start(self) -> BuildReport | None:
        """Check the inputs and the output directory; the report of a finished build, if any."""
        if not self.inputs:
            extra = (
                f" ({len(self.passed_over)} other file(s) passed over: not video by extension)"
                if self.passed_over
                else ""
            )
            raise BuildError(f"no input videos given or found{extra}")
        self.dir.check_path()
        if not self.overwrite:
            self._check_settings()
            finished = self.dir.finished_manifest()
            if finished is not None:
                report = BuildReport(self.out, finished, passed_over=self.passed_over)
                report.problems = [Problem(f["path"], f["problem"]) for f in finished["failures"]]
                return report
        self.dir.prepare()
        return None

    def _assemble_and_finish(
        self, pool: cf.Executor, plan: dict[str, Any], report: BuildReport
    ) -> None:
        """Assemble, write the manifest last; remove the staging area only if nothing failed."""
        report.manifest = self._assemble(pool, plan, report)
        self.dir.write_manifest(report.manifest)
        if not report.problems:
            self.dir.retire_work()
