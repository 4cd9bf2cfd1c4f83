"""Ingestion cut into cluster jobs (plan, stage some units, assemble) equals one local build;
a unit that fails is named by the assembly and only it runs again."""

from __future__ import annotations

import os

from wtpipe.cluster.ingest import unit_groups
from wtpipe.shards.build import ShardBuilder
from wtpipe.shards.settings import BuildSettings

from ..conftest import shard_names


def contents(out: str) -> dict[str, bytes]:
    return {
        n: open(os.path.join(out, n), "rb").read() for n in [*shard_names(out), "manifest.json"]
    }


def test_units_are_dealt_round_robin_to_at_most_one_task_each():
    names = [f"a-u{i}" for i in range(5)]
    assert unit_groups(names, 2) == [["a-u0", "a-u2", "a-u4"], ["a-u1", "a-u3"]]
    assert unit_groups(names, 9) == [[n] for n in names]
    assert unit_groups([], 3) == [[]]


def test_phases_as_jobs_equal_one_build_and_resubmission_runs_only_the_failed_unit(
    build, media, sources, tmp_path
):
    inputs = [media("short_gop"), sources["bikes.mp4"]]
    settings = BuildSettings(fps="2", unit_seconds=5, min_shards=2)
    _, reference = build(inputs, out=str(tmp_path / "ref"), fps="2", unit_seconds=5, min_shards=2)
    out = str(tmp_path / "out")

    def plan():
        return ShardBuilder(inputs, out, settings, workers=1, progress=False).plan(split=4)

    first = plan()
    assert first.finished is None and first.unreadable == [] and len(first.todo) == first.units >= 4
    blocked = first.todo[1]
    os.mkdir(
        os.path.join(out, ".work", "units", f"{blocked}.tar")
    )  # this unit's frames cannot be written
    failures = [
        ShardBuilder.resume(out, workers=1).stage(group)[1] for group in unit_groups(first.todo, 3)
    ]
    assert [len(f) for f in failures] == [0, 1, 0] and "IsADirectoryError" in failures[1][0].problem
    report = ShardBuilder.resume(
        out, workers=1
    ).assemble()  # another process: it reads the recorded reason
    assert len(report.problems) == 1 and report.problems[0].path == inputs[0]
    assert "IsADirectoryError" in report.problems[0].problem and report.manifest["failures"]
    assert os.path.isdir(os.path.join(out, ".work"))  # kept for the retry

    os.rmdir(os.path.join(out, ".work", "units", f"{blocked}.tar"))
    second = plan()
    assert second.todo == [blocked]
    assert ShardBuilder.resume(out).stage(second.todo) == (0, [])
    assert ShardBuilder.resume(out).assemble().problems == []
    assert contents(out) == contents(reference) and not os.path.exists(os.path.join(out, ".work"))
    assert plan().finished is not None
