#!/usr/bin/env python3
"""DoRA training steps on CPU: the default against each lever, side by side in one run.

Every row runs in a fresh process (so peak RSS is its own) with the same weights and batch:
- ``official``: the official recipe's sizes, scaled to a CPU: ViT-S/16, 2 clips x 4 frames
  at 224 px, 6 local crops of 112 px per frame, out_dim 65536, 3 objects;
- ``tiny``: ``configs/dora_tiny_cpu.yaml`` (ViT-Ti, 4 clips x 4 frames at 96 px, 2 x 48 px).
Levers: ``model.grad_checkpointing`` (student blocks recomputed in backward); a DINO step of the
same backbone and head on as many images as DoRA has frames, with views of the same sizes
(2 globals + the local crops), is the reference. The last line times discovery + Sinkhorn +
tracking + masks alone.

Usage: python benchmarks/dora_step.py [--steps 3] [--only official|tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIGS = {
    "official": (
        None,
        [
            "model.arch=vit_small_patch16_224",
            "model.out_dim=65536",
            "data.batch_size=2",
            "data.clip_frames=4",
            "data.local_crops=6",
            "data.local_size=112",
            "data.global_size=224",
        ],
    ),
    "tiny": (os.path.join(HERE, "..", "configs", "dora_tiny_cpu.yaml"), []),
}

CODE = """
import json, sys, time, torch
sys.path.insert(0, {here!r})
from steps import peak_rss_mb, time_steps
from wtpipe.config import load_config
from wtpipe.methods.dino import DINOMethod
from wtpipe.methods.dora import DoRAMethod
from wtpipe.ops import objects
from wtpipe.train.config import TrainConfig
path, overrides, method_name, steps = {path!r}, {overrides!r}, {method!r}, {steps}
torch.manual_seed(0)
config = load_config(TrainConfig, path, overrides + ["method.name=" + method_name])
d = config.data
b, t, s, l, n = d.batch_size, d.clip_frames, d.global_size, d.local_size, d.local_crops
if method_name == "dora":
    method = DoRAMethod(config)
    batch = (torch.randn(b, t, 3, s, s), torch.randn(b, t, n, 3, l, l))
else:  # one image per DoRA frame, DINO's views at the same sizes: 2 globals + the local crops
    method = DINOMethod(config)
    batch = [torch.randn(b * t, 3, s, s)] * 2 + [torch.randn(b * t, 3, l, l)] * n
times = time_steps(method, batch, steps, config.optim.optimizer, config.optim.clip_grad)
discovery = 0.0
if method_name == "dora":
    with torch.no_grad():
        backbone = method.teacher.backbone
        cls, patches, last = backbone.forward_with_attention(batch[0].flatten(0, 1))
        grid = s // backbone.patch_size
        q = last.q.transpose(1, 2).flatten(2).reshape(b, t, grid * grid, -1)
        k = last.k.transpose(1, 2).flatten(2).reshape(b, t, grid * grid, -1)
        feats = patches.reshape(b, t, grid * grid, -1)[:, 0]
        start = time.monotonic()
        for _ in range(steps):
            tracks = objects.track_objects(last.cls_attn.reshape(b, t, -1, grid * grid)[:, 0, :3], q[:, 0], feats, k)
            objects.to_pixels(tracks.masks, (grid, grid), (s, s))
        discovery = (time.monotonic() - start) / steps
print(json.dumps([min(times), discovery, peak_rss_mb()]))
"""

ROWS = [
    ("DoRA, default", "dora", []),
    ("DoRA, model.grad_checkpointing=true", "dora", ["model.grad_checkpointing=true"]),
    ("DINO, same images and view sizes", "dino", []),
]


def measure(config: str, method: str, extra: list[str], steps: int) -> list[float]:
    path, overrides = CONFIGS[config]
    code = CODE.format(
        here=HERE, path=path, overrides=overrides + extra, method=method, steps=steps
    )
    env = {**os.environ, "PYTHONPATH": os.path.join(HERE, "..")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--only", choices=sorted(CONFIGS))
    args = parser.parse_args()
    for config in [args.only] if args.only else ["official", "tiny"]:
        print(f"\n{config} config, CPU ({os.cpu_count()} cores), best of {args.steps} steps")
        print(f"{'':40s} {'step':>8s} {'x default':>10s} {'peak RSS':>10s} {'x default':>10s}")
        base = None
        for label, method, extra in ROWS:
            step, discovery, rss = measure(config, method, extra, args.steps)
            base = base or (step, rss, discovery)
            print(
                f"{label:40s} {step:7.2f}s {step / base[0]:9.2f}x {rss:8.0f}MB {rss / base[1]:9.2f}x"
            )
        print(
            f"discovery + Sinkhorn + tracking + masks: {base[2] * 1000:.1f} ms = {100 * base[2] / base[0]:.2f} % "
            "of the default DoRA step"
        )


if __name__ == "__main__":
    main()
