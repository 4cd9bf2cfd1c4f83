#!/usr/bin/env python3
"""Step time and peak memory of the fine-tuning jobs at the paper recipes' sizes.

For ViT-S/16 (random weights: the cost does not depend on them): the ADE20K recipes (512-px crops,
2 images per device; linear head on a frozen backbone, and UperNet) and the COCO Mask R-CNN recipe
(short side 640-800, long side up to 1333, 2 images per device). Batches come from the real
sample sets through each task's own training pipeline, resized by it to the recipe's sizes; each
step is forward, backward and the AdamW update. The baseline in the same run is the bare backbone
(forward, backward and update of the ViT alone on the same pixels), so each head's cost reads as
a ratio. Each case runs in its own process; peak memory is that process's resident peak on CPU
(and the rise over the model's, i.e. activations + gradients + optimizer state), or
``torch.cuda.max_memory_allocated`` on a GPU (bf16 autocast there, as the recipes set).

Usage: python benchmarks/finetune_step.py [--device cpu|cuda] [--steps 2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
CASES = {  # name: (recipe, the baseline it is compared with)
    "backbone 512x512": ("configs/seg_upernet_ade20k.yaml", ""),
    "seg linear (frozen)": ("configs/seg_linear_ade20k.yaml", "backbone 512x512"),
    "seg UperNet": ("configs/seg_upernet_ade20k.yaml", "backbone 512x512"),
    "backbone det sizes": ("configs/det_maskrcnn_coco.yaml", ""),
    "det Mask R-CNN": ("configs/det_maskrcnn_coco.yaml", "backbone det sizes"),
}
ARCH = "vit_small_patch16_224"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(case: str, device: str, steps: int) -> dict[str, float]:
    """One case in this process: a warm-up step, then ``steps`` timed ones."""
    import torch

    from wtpipe.config import load_config
    from wtpipe.data.loader import to_device
    from wtpipe.demo import sample_data
    from wtpipe.finetune import config_class, make_task
    from wtpipe.finetune.loop import model_and_optimizer
    from wtpipe.models.vit import ViTBackbone

    recipe = CASES[case][0]
    kind = "det" if "det" in recipe else "seg"
    root = os.path.join(sample_data.build(), kind)
    config = load_config(
        config_class(kind),
        os.path.join(ROOT, recipe),
        [f"data.root={root}", f"model.weights=random:{ARCH}"],
    )
    task = make_task(kind, config)
    torch.manual_seed(0)
    backbone = ViTBackbone(ARCH, drop_path_rate=config.model.drop_path_rate)
    model, optimizer = model_and_optimizer(config, task, backbone)
    dataset = task.dataset()
    batches = [
        to_device(
            task.collate([dataset[(2 * s + i, s)] for i in range(config.data.batch_size)]), device
        )
        for s in range(steps + 1)
    ]
    if (
        kind == "det"
    ):  # the pixels Mask R-CNN's transform feeds the backbone (resized, padded to 32)
        transform = task.build(ViTBackbone(ARCH))[0].transform
        pixels = [transform(list(images))[0].tensors for images, _ in batches]
    else:
        pixels = [images for images, _ in batches]
    size = "x".join(str(d) for d in pixels[0].shape[-2:])
    if case.startswith("backbone"):
        model, optimizer = backbone, torch.optim.AdamW(backbone.parameters(), lr=1e-4)
        batches = [(p, None) for p in pixels]
    model.to(device).train()
    cuda = device.startswith("cuda")
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if cuda
        else torch.autocast("cpu", enabled=False)
    )

    def step(batch) -> None:
        with autocast:
            if case.startswith("backbone"):
                loss = model(batch[0]).float().pow(2).mean()
            else:
                loss = task.loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    built = rss_mb()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    step(batches[0])
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for batch in batches[1:]:
        step(batch)
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / steps
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else rss_mb()
    return {
        "step_s": seconds,
        "peak_mb": peak,
        "rise_mb": peak - (0 if cuda else built),
        "size": size,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--steps", type=int, default=2, help="timed steps per case (after one warm-up step)"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="intra-op threads (default: all cores)"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("no CUDA device here; run with --device cpu")
            return 0
    if args.case:
        import torch

        torch.set_num_threads(args.threads or os.cpu_count() or 1)
        print(json.dumps(measure(args.case, args.device, args.steps)))
        return 0
    results = {}
    print(
        f"ViT-S/16 fine-tuning steps on {args.device}, 2 images per step, {args.steps} timed step(s) per case"
    )
    for case in CASES:
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--case",
                case,
                "--device",
                args.device,
                "--steps",
                str(args.steps),
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if done.returncode != 0:
            print(f"{case}: failed\n{done.stderr[-2000:]}")
            return 1
        results[case] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  measured {case} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    memory = "peak GPU MiB" if args.device.startswith("cuda") else "peak RSS MiB (rise)"
    print(f"{'case':22} {'input':>10} {'step s':>8} {'x base':>7}  {memory}")
    for case, (_, base) in CASES.items():
        r = results[case]
        ratio = f"{r['step_s'] / results[base]['step_s']:.2f}" if base else "1.00"
        rise = "" if args.device.startswith("cuda") else f" ({r['rise_mb']:.0f})"
        print(f"{case:22} {r['size']:>10} {r['step_s']:8.2f} {ratio:>7}  {r['peak_mb']:.0f}{rise}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
