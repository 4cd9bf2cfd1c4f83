"""Dead footage: long blank (black or flat) or frozen stretches that would poison training.

Measured on a small grey thumbnail of each stored frame, so it costs nothing next to decoding.
A frame is *blank* when its thumbnail barely varies, *frozen* when it barely differs from the
previous stored frame. Only runs lasting at least ``min_seconds`` count as dead: a short pause
or a fade is footage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THUMB_WIDTH = 64


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """Grey thumbnail about THUMB_WIDTH wide, uint8."""
    step = max(1, rgb.shape[1] // THUMB_WIDTH)
    return rgb[::step, ::step].mean(axis=2).astype(np.uint8)


def flatness(thumb: np.ndarray) -> float:
    """Standard deviation of grey levels: near 0 for black or flat frames."""
    return float(thumb.std())


def change(prev: np.ndarray | None, thumb: np.ndarray) -> float:
    """Mean absolute grey-level change from ``prev`` (inf when there is none or sizes differ)."""
    if prev is None or prev.shape != thumb.shape:
        return float("inf")
    return float(np.abs(thumb.astype(np.int16) - prev.astype(np.int16)).mean())


@dataclass(frozen=True)
class DeadThresholds:
    blank_std: float = 4.0
    frozen_change: float = 0.5
    min_seconds: float = 5.0


def dead_runs(
    times: list[float],
    flat: list[float],
    changes: list[float],
    period: float,
    limits: DeadThresholds,
) -> list[tuple[int, int, str]]:
    """Index ranges ``[i, j)`` of dead runs lasting ``>= limits.min_seconds``, with their reason.

    ``period`` is the stored frame spacing: a run of one frame lasts one period.
    """
    reasons = [
        "blank" if f < limits.blank_std else "frozen" if c < limits.frozen_change else ""
        for f, c in zip(flat, changes)
    ]
    runs: list[tuple[int, int, str]] = []
    i = 0
    while i < len(reasons):
        if not reasons[i]:
            i += 1
            continue
        j = i
        while j < len(reasons) and reasons[j]:
            j += 1
        if times[j - 1] - times[i] + period >= limits.min_seconds:
            kinds = sorted(set(reasons[i:j]))
            runs.append((i, j, "+".join(kinds)))
        i = j
    return runs
