#!/usr/bin/env python3
"""Views on the loader or on the training device: what a loader worker pays per clip, in one run.

For DINO (one frame, 2 x 224 + 8 x 96 crops) and DoRA (a clip of 8 frames, each with a 224-px
global view sharing the clip's crop and 6 local crops of 96 px; and the paper recipe's views: a
300-px pre-crop of the clip, bilinear, 6 unflipped local crops of 112 px), on shards of the bundled real
clip: the worker CPU time per clip (read + JPEG decode + views, single-threaded, as a worker runs)
with the pixel work in the worker (``data.augment_on=loader``) and with only the random
parameters drawn there (``device``); the frames-only cost (read + decode) is the floor. Then the
same batch's pixel work where the device path puts it (on this machine's device: ``--device``),
one loader worker's clips/s for DINO's views either way, and JPEG decoding by Pillow against
torchvision (the loader's decoder).

Usage: python benchmarks/views.py [SHARD_DIR] [--device cpu|cuda] [--clips 24]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch
from steps import bundled_shards

from wtpipe.data.index import ShardIndex
from wtpipe.data.loader import ClipDataset, collate_views, make_loader, to_device
from wtpipe.data.transforms import (
    ClipViews,
    FirstFrameCrops,
    MultiCrop,
    MultiCropSpec,
    PlannedClips,
    PlannedCrops,
)

DINO_SPEC, DORA_SPEC = MultiCropSpec(224, 96, 8), MultiCropSpec(224, 96, 6)
PAPER_SPEC = MultiCropSpec(
    224, 112, 6, local_flip=False, bilinear=True, precrop=300
)  # configs/dora_vits16_wt.yaml
DORA_FRAMES, BATCH, STEPS = 8, 16, 8


class Frames:
    """Identity views: what reading and decoding the clip costs."""

    def __call__(self, frames: list[torch.Tensor]) -> list[torch.Tensor]:
        return frames


def cpu_ms_per_clip(dataset: ClipDataset, clips: int) -> float:
    """Worker CPU milliseconds per clip, measured in this (single-threaded) process."""
    dataset[(0, 0)]  # warm caches
    start = time.process_time()
    for i in range(clips):
        dataset[(i % len(dataset), i)]
    return 1000 * (time.process_time() - start) / clips


def render_ms(items: list, collate, device: str) -> float:
    """Milliseconds of the training process to render one collated batch of planned views."""
    batch = collate(items)
    to_device(batch, device)  # warm-up (kernels, allocator)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    to_device(batch, device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - start)


def decode_ms(index: ShardIndex, frames: int = 200) -> tuple[float, float]:
    """Milliseconds per frame: Pillow + numpy (the loader's decoder before) vs torchvision's."""
    import io

    import numpy as np
    from PIL import Image

    from wtpipe.data.frames import decode
    from wtpipe.shards.read import read_span

    payloads = [read_span(ref.shard, ref.frames[0]) for ref in index.samples[:frames]]
    timings = []
    for fn in (lambda p: np.array(Image.open(io.BytesIO(p)).convert("RGB")), decode):
        start = time.process_time()
        for payload in payloads:
            fn(payload)
        timings.append(1000 * (time.process_time() - start) / len(payloads))
    return timings[0], timings[1]


def loader_clips_per_s(dataset: ClipDataset, collate) -> float:
    batches = iter(
        make_loader(dataset, BATCH, seed=0, rank=0, start_step=0, num_workers=1, collate=collate)
    )
    next(batches)  # worker start-up is not throughput
    start = time.monotonic()
    for _ in range(STEPS):
        next(batches)
    return STEPS * BATCH / (time.monotonic() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "shards", nargs="?", help="a wtpipe shards directory (default: the bundled clip's)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clips", type=int, default=24)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a loader worker
    with tempfile.TemporaryDirectory() as tmp:
        shards = args.shards or os.path.join(tmp, "shards")
        if not args.shards:
            bundled_shards(shards)
        index = ShardIndex.build(shards)
        height, width = ClipDataset(index, 1, 1, Frames())[(0, 0)][0].shape[-2:]
        print(f"frames {width}x{height} from {shards}; worker CPU per clip, single-threaded")
        rows = []
        for name, frames, loader_views, device_views, collate in (
            (
                "DINO  1 frame, 2x224 + 8x96",
                1,
                FirstFrameCrops(MultiCrop(DINO_SPEC)),
                FirstFrameCrops(MultiCrop(DINO_SPEC), planned=True),
                PlannedCrops.cat,
            ),
            (
                f"DoRA  {DORA_FRAMES} frames, 224 + 6x96 each",
                DORA_FRAMES,
                ClipViews(DORA_SPEC),
                ClipViews(DORA_SPEC, planned=True),
                PlannedClips.cat,
            ),
            (
                f"DoRA  {DORA_FRAMES} frames, paper: 300 pre-crop",
                DORA_FRAMES,
                ClipViews(PAPER_SPEC),
                ClipViews(PAPER_SPEC, planned=True),
                PlannedClips.cat,
            ),
        ):
            floor = cpu_ms_per_clip(ClipDataset(index, frames, 1, Frames()), args.clips)
            loader = cpu_ms_per_clip(ClipDataset(index, frames, 1, loader_views), args.clips)
            planned = ClipDataset(index, frames, 1, device_views)
            device = cpu_ms_per_clip(planned, args.clips)
            render = (
                render_ms([planned[(i, i)] for i in range(BATCH)], collate, args.device) / BATCH
            )
            rows.append((name, floor, loader, device, render))
        dino = FirstFrameCrops(MultiCrop(DINO_SPEC))
        pil, tv = decode_ms(index)
        rate_loader = loader_clips_per_s(ClipDataset(index, 1, 1, dino), collate_views)
        rate_device = loader_clips_per_s(
            ClipDataset(index, 1, 1, FirstFrameCrops(MultiCrop(DINO_SPEC), True)), PlannedCrops.cat
        )
    print(
        f"{'clip':36} {'decode only':>12} {'views on loader':>16} {'on device':>10} {'x less':>7}"
        f" {'render on ' + args.device:>16}"
    )
    for name, floor, loader, device, render in rows:
        print(
            f"{name:36} {floor:9.1f} ms {loader:13.1f} ms {device:7.1f} ms {loader / device:7.1f}"
            f" {render:10.1f} ms/clip"
        )
    print(f"JPEG decode per frame: Pillow {pil:.2f} ms, torchvision {tv:.2f} ms ({pil / tv:.1f}x)")
    print(
        f"one loader worker, DINO views: {rate_loader:.1f} clips/s rendering, {rate_device:.1f} clips/s planning "
        f"({rate_device / rate_loader:.1f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
