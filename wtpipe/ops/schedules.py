"""Schedules as pure functions of the global step, so resuming or changing the world size
never shifts them (a prepared LR scheduler steps once per process per optimizer step)."""

from __future__ import annotations

import math


def cosine(
    step: int,
    total_steps: int,
    base: float,
    final: float,
    warmup_steps: int = 0,
    warmup_start: float = 0.0,
) -> float:
    """DINO's schedule: linear warm-up from ``warmup_start`` to ``base``, then a half cosine to ``final``.

    Equals ``dino.utils.cosine_scheduler(...)[step]``; steps past the end stay at ``final``.
    """
    if (
        step < warmup_steps
    ):  # np.linspace(warmup_start, base, warmup_steps): a single step is its start
        return (
            warmup_start
            if warmup_steps == 1
            else warmup_start + (base - warmup_start) * step / (warmup_steps - 1)
        )
    span = total_steps - warmup_steps
    if span <= 0 or step >= total_steps:
        return final
    progress = (step - warmup_steps) / span
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * progress))


def linear_warmup_then_constant(epoch: int, start: float, end: float, warmup_epochs: int) -> float:
    """DINO's teacher temperature: linear from ``start`` to ``end`` over ``warmup_epochs``, then ``end``."""
    if epoch >= warmup_epochs:
        return end
    if warmup_epochs == 1:
        return start
    return start + (end - start) * epoch / (warmup_epochs - 1)


def poly(
    step: int,
    total_steps: int,
    base: float,
    final: float = 0.0,
    power: float = 1.0,
    warmup_steps: int = 0,
    warmup_ratio: float = 1e-6,
) -> float:
    """mmcv's poly schedule with its linear warm-up, as the BEiT/iBOT ADE20K recipes use it:
    ``(base - final) * (1 - step / total) ** power + final``, scaled during the warm-up by
    ``1 - (1 - step / warmup) * (1 - warmup_ratio)``."""
    decayed = (base - final) * (1 - min(step, total_steps) / total_steps) ** power + final
    if step < warmup_steps:
        return decayed * (1 - (1 - step / warmup_steps) * (1 - warmup_ratio))
    return decayed
