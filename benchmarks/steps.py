"""Shared by the benchmarks: shards of the bundled clip, and full training steps of a method
timed (no data loading)."""

from __future__ import annotations

import os
import time

from wtpipe.ops.grads import clip_per_parameter, decay_groups
from wtpipe.train.trainer import make_optimizer


def time_steps(
    method, batch, steps: int, optimizer: str = "adamw", clip: float = 3.0
) -> list[float]:
    """Seconds of each step as the trainer takes it: forward, backward, per-parameter clipping
    (``clip`` > 0), the method's hooks (DINO's last-layer freeze and EMA teacher, SwAV's
    prototype freeze), the recipe's optimizer (``optim.optimizer``)."""
    optimizer = make_optimizer(optimizer, decay_groups(method.student))
    for group in optimizer.param_groups:
        group["lr"] = 1e-4
    times = []
    for step in range(steps):
        start = time.monotonic()
        loss, _ = method.loss(method.student, batch, epoch=1)
        loss.backward()
        if clip > 0:
            clip_per_parameter(method.student, clip)
        method.after_backward(method.student, 1, step)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        method.after_step(method.student, step, steps)
        times.append(time.monotonic() - start)
    return times


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    with open("/proc/self/status") as handle:
        line = next(row for row in handle if row.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def bundled_shards(directory: str) -> str:
    """Shards of the bundled clip at the ingestion defaults (short side 320, JPEG 90)."""
    from wtpipe.shards.build import ShardBuilder
    from wtpipe.shards.settings import BuildSettings

    clip = os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "wtpipe", "assets", "vtest.mp4"
    )
    ShardBuilder([clip], directory, BuildSettings(), progress=False).run()
    return directory
