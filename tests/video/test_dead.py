"""Dead footage: long blank or frozen runs are found; short pauses are footage."""

from __future__ import annotations

import numpy as np

from wtpipe.video import dead


def test_blank_and_frozen_runs_are_found_with_their_reason():
    times = [i * 0.5 for i in range(40)]
    flat = [30.0] * 10 + [1.0] * 12 + [30.0] * 18
    changes = [5.0] * 25 + [0.1] * 12 + [5.0] * 3
    runs = dead.dead_runs(times, flat, changes, 0.5, dead.DeadThresholds(min_seconds=5))
    assert runs == [(10, 22, "blank"), (25, 37, "frozen")]


def test_short_runs_are_footage():
    times = [i * 0.5 for i in range(20)]
    flat = [30.0] * 5 + [1.0] * 4 + [30.0] * 11  # 2 s of black: a tunnel, not dead footage
    assert dead.dead_runs(times, flat, [5.0] * 20, 0.5, dead.DeadThresholds(min_seconds=5)) == []


def test_measures_on_real_pixels():
    rng = np.random.default_rng(0)
    textured = rng.integers(0, 256, (180, 320, 3), dtype=np.uint8)
    black = np.zeros_like(textured)
    assert dead.flatness(dead.thumbnail(black)) == 0.0
    assert dead.flatness(dead.thumbnail(textured)) > 20
    assert dead.change(dead.thumbnail(textured), dead.thumbnail(textured)) == 0.0
    assert dead.change(None, dead.thumbnail(textured)) == float("inf")
