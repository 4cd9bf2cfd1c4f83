#!/usr/bin/env python3
"""Training throughput on CPU, side by side in one run (ratios matter, not absolute times).

1. Loader: clips/s of one loader worker (index, read, JPEG decode, views, collate, IPC), vs the
   pure frame-decode rate of the same samples in-process (read + JPEG decode only). Printed for
   identity views (loader overhead alone; the project's target is >= 0.7) and for DINO's 10-crop augmentation.
2. Training steps (forward, backward, clipping, the method's hooks, its optimizer) of DINO and
   SwAV (single frames, so one table), time and peak RSS for the tiny configs and for ViT-S/16
   at each recipe's view sizes, each in a fresh process; SwAV's ratio is to DINO's row of the
   same size.

Usage: python benchmarks/train_step.py [SHARD_DIR]   (default: shards of the bundled sample clip)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from steps import bundled_shards

from wtpipe.data.index import ShardIndex
from wtpipe.data.loader import ClipDataset, decode_frames, make_loader, stack_shared

ROOT = os.path.join(os.path.dirname(__file__), "..")
BATCH, STEPS = 16, 12


class Identity:
    def __call__(self, frames):
        return frames


def collate_frames(items):
    """One shared-memory tensor per batch, as in training; stacked in memory order (HWC)."""
    return stack_shared([frames[0].permute(1, 2, 0) for frames in items]).permute(0, 3, 1, 2)


def pure_decode_rate(index: ShardIndex, draws: list[tuple[int, int]]) -> float:
    """The same frames decoded in this process by the same function, nothing else."""
    start = time.monotonic()
    for position, _ in draws:
        decode_frames(index.samples[position], [0])
    return len(draws) / (time.monotonic() - start)


def loader_rate(dataset: ClipDataset, collate) -> float:
    loader = make_loader(
        dataset, BATCH, seed=0, rank=0, start_step=0, num_workers=1, collate=collate
    )
    batches = iter(loader)
    next(batches)  # worker start-up is not throughput
    start = time.monotonic()
    for _ in range(STEPS):
        next(batches)
    return STEPS * BATCH / (time.monotonic() - start)


STEP_CODE = """
import json, sys, torch
sys.path.insert(0, {here!r})
from steps import peak_rss_mb, time_steps
from wtpipe.config import load_config
from wtpipe.methods import method_class
from wtpipe.train.config import TrainConfig
config = load_config(TrainConfig, {config!r}, {overrides!r})
method = method_class(config.method.name)(config)
d = config.data
torch.manual_seed(0)
batch = [torch.randn(d.batch_size, 3, d.global_size, d.global_size) for _ in range(2)]
batch += [torch.randn(d.batch_size, 3, d.local_size, d.local_size) for _ in range(d.local_crops)]
times = time_steps(method, batch, {steps}, config.optim.optimizer, config.optim.clip_grad)
print(json.dumps([min(times[1:]), peak_rss_mb()]))
"""


def step_time(config: str, overrides: list[str], steps: int) -> tuple[float, float]:
    code = STEP_CODE.format(
        config=config,
        overrides=overrides,
        steps=steps,
        here=os.path.dirname(os.path.abspath(__file__)),
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return tuple(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shards = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tmp, "shards")
        if len(sys.argv) == 1:
            bundled_shards(shards)
        index = ShardIndex.build(shards)
        sampler_draws = [(i % len(index.samples), 0) for i in range(BATCH * STEPS)]
        decode = pure_decode_rate(index, sampler_draws)
        from wtpipe.data.loader import collate_views
        from wtpipe.data.transforms import FirstFrameCrops, MultiCrop, MultiCropSpec

        plain = loader_rate(ClipDataset(index, 1, 1, Identity()), collate_frames)
        spec = MultiCropSpec(224, 96, 8)
        crops = loader_rate(
            ClipDataset(index, 1, 1, FirstFrameCrops(MultiCrop(spec))), collate_views
        )
    print(f"pure frame decode (in-process)        {decode:8.1f} frames/s   1.00")
    print(f"loader, 1 worker, identity views       {plain:8.1f} clips/s    {plain / decode:4.2f}")
    print(f"loader, 1 worker, DINO 2x224 + 8x96    {crops:8.1f} clips/s    {crops / decode:4.2f}")
    configs = os.path.join(ROOT, "configs")
    rows = [  # (method, size, recipe, overrides, steps)
        ("DINO", "tiny_cpu (ViT-Ti, batch 8, 96/48 px, 2 local)", "tiny_cpu.yaml", [], 4),
        ("SwAV", "tiny_cpu (ViT-Ti, batch 8, 96/48 px, 2 local)", "swav_tiny_cpu.yaml", [], 4),
        (
            "DINO",
            "ViT-S/16 recipe views (batch 8, 224/96 px, 8 local)",
            "dino_vits16_wt.yaml",
            [],
            3,
        ),
        (
            "SwAV",
            "ViT-S/16 recipe views (batch 8, 224/96 px, 6 local)",
            "swav_vits16_wt.yaml",
            [],
            3,
        ),
    ]
    dino: dict[str, float] = {}
    for method, size, recipe, overrides, steps in rows:
        seconds, peak = step_time(
            os.path.join(configs, recipe), [*overrides, "data.batch_size=8"], steps
        )
        key = size.split(" (")[0]
        dino.setdefault(key, seconds)
        print(
            f"{method} step {size:<52} {seconds:7.2f} s/step  {8 / seconds:6.2f} clips/s  "
            f"x DINO {seconds / dino[key]:5.2f}  peak RSS {peak:7.0f} MB"
        )


if __name__ == "__main__":
    main()
