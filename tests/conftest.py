"""Shared fixtures: real test media (fetched from package repositories, transcoded with PyAV)."""

from __future__ import annotations

import os
from fractions import Fraction

import av
import pytest

from wtpipe.demo import media as testmedia
from wtpipe.shards.build import ShardBuilder
from wtpipe.shards.settings import BuildSettings


@pytest.fixture(autouse=True)
def fresh_accelerate():
    """Accelerate keeps one process-wide state (its precision among it): a Trainer made in a test
    would fix it for every later test on the same worker. Each test starts without one."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="session")
def sources() -> dict[str, str]:
    return testmedia.fetch_sources()


@pytest.fixture(scope="session")
def media(sources: dict[str, str]):
    """Derived clip by kind, e.g. ``media("h264_4k")``."""
    return testmedia.derived


@pytest.fixture(scope="session")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return testmedia.bad_files(str(tmp_path_factory.mktemp("bad")))


@pytest.fixture
def build(tmp_path):
    """Run a build in-process; returns (report, out dir)."""

    def run(inputs: list[str], out: str | None = None, workers: int = 2, **settings):
        out = out or str(tmp_path / "shards")
        report = ShardBuilder(
            inputs, out, BuildSettings(**settings), workers=workers, progress=False
        ).run()
        return report, out

    return run


def all_frame_times(path: str) -> list[Fraction]:
    """Every decoded frame's time from the first frame, by a plain sequential PyAV decode."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base
        pts = [f.pts for f in container.decode(stream) if f.pts is not None]
    return [(p - pts[0]) * time_base for p in pts]


def reference_grid_times(path: str, fps: Fraction) -> list[float]:
    """The frames a grid of ``fps`` should keep: for each grid point the first frame at or after it."""
    times = all_frame_times(path)
    kept: list[Fraction] = []
    k = 0
    for t in times:
        if k / fps <= t:
            kept.append(t)
            while k / fps <= t:
                k += 1
    return [float(t) for t in kept]


def shard_names(out: str) -> list[str]:
    return sorted(n for n in os.listdir(out) if n.startswith("shard-"))


@pytest.fixture(scope="session")
def train_shards(tmp_path_factory, sources) -> str:
    """Real shards for training tests: two real clips, small frames, several shards."""
    out = str(tmp_path_factory.mktemp("train") / "shards")
    settings = BuildSettings(fps="4", short_side=128, segment_seconds=4, min_shards=4)
    ShardBuilder([sources["vtest.avi"], sources["bikes.mp4"]], out, settings, progress=False).run()
    return out


@pytest.fixture(scope="session")
def eval_data(sources) -> str:
    """The real evaluation sample sets (ImageFolder, VOC + COCO boxes, DAVIS), built once and cached."""
    from wtpipe.demo import sample_data

    return sample_data.build()


@pytest.fixture(scope="session")
def reference_run(train_shards, tmp_path_factory):
    """An uninterrupted tiny DINO run (output dir, completed process) that interrupted ones must match."""
    from tests.train.runs import ENV, run, train_cmd

    out = str(tmp_path_factory.mktemp("ref") / "run")
    env = {
        **ENV,
        "MPLCONFIGDIR": str(tmp_path_factory.mktemp("mpl")),
    }  # matplotlib builds its font cache
    return out, run(train_cmd(train_shards, out), env)


@pytest.fixture(scope="session")
def reference(reference_run) -> str:
    return reference_run[0]
