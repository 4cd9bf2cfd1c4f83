#!/usr/bin/env python3
"""DoRA vs DINO training steps on CPU, side by side in one run, each in a fresh process.

Same backbone and head (ViT-Ti/16 by default, out_dim 65536), the recipes' view sizes:
DoRA one 8-frame clip (224 px globals, 3 objects, 6 local crops of 112 px per frame);
DINO one frame (2 x 224 + 8 x 96). Prints step time and peak RSS of both, and for DoRA the
time of discovery + Sinkhorn + tracking + masks alone (teacher outputs given) vs the whole step.

Usage: python benchmarks/dora_step.py [--arch vit_small_patch16_224] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CODE = """
import json, sys, time, torch
sys.path.insert(0, {here!r})
from steps import peak_rss_mb, time_steps
from wtpipe.config import load_config
from wtpipe.methods.dino import DINOMethod
from wtpipe.methods.dora import DoRAMethod
from wtpipe.ops import objects
from wtpipe.train.config import TrainConfig
name, arch, steps = {name!r}, {arch!r}, {steps}
common = ["model.arch=" + arch, "model.out_dim=65536"]
if name == "dora":
    config = load_config(TrainConfig, None, common + ["method.name=dora", "data.clip_frames=8",
                         "data.local_crops=6", "data.local_size=112"])
    method = DoRAMethod(config)
    batch = (torch.randn(1, 8, 3, 224, 224), torch.randn(1, 8, 6, 3, 112, 112))
else:
    config = load_config(TrainConfig, None, common)
    method = DINOMethod(config)
    batch = [torch.randn(1, 3, 224, 224)] * 2 + [torch.randn(1, 3, 96, 96)] * 8
times = time_steps(method, batch, steps)
discovery = 0.0
if name == "dora":
    with torch.no_grad():
        backbone = method.teacher.backbone
        cls, patches, last = backbone.forward_with_attention(batch[0].flatten(0, 1))
        q = last.q.transpose(1, 2).flatten(2)[None]
        k = last.k.transpose(1, 2).flatten(2)[None]
        start = time.monotonic()
        for _ in range(steps):
            protos = objects.discover(last.cls_attn[:1, :3], q[:, 0])
            protos = objects.refine(protos, patches[:1], 0.05, 30)
            masks = objects.to_pixels(objects.binarise(objects.track(protos, k)), (14, 14), (224, 224))
        discovery = (time.monotonic() - start) / steps
print(json.dumps([min(times), discovery, peak_rss_mb()]))
"""


def measure(name: str, arch: str, steps: int) -> list[float]:
    code = CODE.format(name=name, arch=arch, steps=steps, here=os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vit_tiny_patch16_224")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    dino_step, _, dino_mem = measure("dino", args.arch, args.steps)
    dora_step, discovery, dora_mem = measure("dora", args.arch, args.steps)
    print(f"{args.arch}, CPU, one clip per step")
    print(f"DINO step {dino_step:7.2f} s   peak RSS {dino_mem:6.0f} MB")
    print(f"DoRA step {dora_step:7.2f} s   peak RSS {dora_mem:6.0f} MB   ({dora_step / dino_step:.1f} x DINO; "
          f"8 frames, 3 objects)")
    print(f"DoRA discovery + Sinkhorn + tracking + masks {discovery * 1000:7.1f} ms = "
          f"{100 * discovery / dora_step:.2f} % of the step")


if __name__ == "__main__":
    main()
