"""Shared by the step benchmarks: time full training steps of a method (no data loading)."""

from __future__ import annotations

import time

import torch

from wtpipe.ops.ema import ema_update
from wtpipe.ops.grads import clip_per_parameter, decay_groups


def time_steps(method, batch, steps: int) -> list[float]:
    """Seconds of each step: forward, backward, per-parameter clipping, AdamW, EMA."""
    optimizer = torch.optim.AdamW(decay_groups(method.student), lr=1e-4)
    times = []
    for _ in range(steps):
        start = time.monotonic()
        loss, _ = method.loss(method.student, batch, epoch=1)
        loss.backward()
        clip_per_parameter(method.student, 3.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema_update(method.teacher, method.student, 0.996)
        times.append(time.monotonic() - start)
    return times


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    with open("/proc/self/status") as handle:
        line = next(row for row in handle if row.startswith("VmHWM"))
    return int(line.split()[1]) / 1024
