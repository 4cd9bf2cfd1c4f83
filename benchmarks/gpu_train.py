#!/usr/bin/env python3
"""Training throughput on one GPU: DINO and DoRA ViT-S/16 at the paper recipes, side by side in one run.

Every row is a real ``wtpipe train`` run (``wtpipe.train.trainer.Trainer``) in a fresh process on
the same shards, measured over the steps after a warm-up (worker start-up, cuDNN/compile): clips/s,
frames/s, the fraction of the step time spent waiting for the loader (the trainer's ``data_wait``:
the step ends with a host sync, so a wait is time the GPU has nothing to do), and peak GPU memory.
Rows: a reference-style configuration first (the official code's way: views made on the loader's
CPUs, fp16 with loss scaling, and for DoRA the student run on one frame of the batch at a time),
then wtpipe's choices: bf16, views rendered on the GPU or by the loader, 1/4/8 workers, JPEG
decoding by the workers or by nvJPEG, ``run.compile``. The last column is clips/s over the
reference-style row's.

Without CUDA it says so and exits 0. ``--cpu-check`` runs the rows at toy sizes on the CPU (all
but the compile row): it checks the plumbing, its figures mean nothing.

Usage: python benchmarks/gpu_train.py [--shards DIR] [--steps 60] [--warmup 20] [--only dino|dora]
       [--workers 1,4,8] [--batch N] [--out DIR] [--row-timeout S] [--cpu-check]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from steps import bundled_shards

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RECIPES = {"dino": "dino_vits16_wt.yaml", "dora": "dora_vits16_wt.yaml"}
TOY = [
    "model.arch=vit_tiny_patch16_224",
    "model.out_dim=64",
    "model.hidden_dim=64",
    "model.bottleneck_dim=32",
    "data.global_size=32",
    "data.local_size=16",
    "data.local_crops=2",
    "data.batch_size=2",
    "data.frame_gap=1",
    "run.mixed_precision=no",
]

RUN = """
import json, sys
from wtpipe.config import load_config
from wtpipe.train.config import TrainConfig
from wtpipe.train.trainer import Trainer
result = Trainer(load_config(TrainConfig, sys.argv[1], sys.argv[2:])).run()
print(json.dumps({"peak_gpu_gib": result["peak_gpu_gib"], "step": result["step"]}))
"""


def rows(
    method: str, workers: list[int], batch: int, compile_row: bool = True
) -> list[tuple[str, list[str]]]:
    """(label, overrides) of every configuration measured for ``method``."""
    most = max(workers)
    reference = ["data.augment_on=loader", "run.mixed_precision=fp16", f"data.num_workers={most}"]
    if method == "dora":
        reference.append(f"model.forward_chunk={batch}")  # one frame of each clip per student call
    found = [
        (
            "reference-style: loader views, fp16"
            + (", frame by frame" if method == "dora" else ""),
            reference,
        )
    ]
    for place in ("loader", "device"):
        found += [
            (
                f"bf16, views on the {place}, {n} worker(s)",
                [f"data.augment_on={place}", "data.decode_on=loader", f"data.num_workers={n}"],
            )
            for n in workers
        ]
    found.append(
        (
            f"bf16, JPEG decoded and views made on the GPU, {most} worker(s)",
            ["data.decode_on=device", f"data.num_workers={most}"],
        )
    )
    if compile_row:
        found.append(
            (
                f"bf16, views on the GPU, {most} worker(s), run.compile",
                [
                    "run.compile=true",
                    "data.augment_on=device",
                    "data.decode_on=loader",
                    f"data.num_workers={most}",
                ],
            )
        )
    return found


def measure(
    recipe: str, overrides: list[str], out: str, warmup: int, limit: float
) -> dict[str, float]:
    """One training run in a fresh process: steady-state clips/s and loader wait, and peak memory."""
    shutil.rmtree(
        out, ignore_errors=True
    )  # a row of an earlier run under --out would only resume, finished
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p),
    }
    try:
        result = subprocess.run(
            [sys.executable, "-c", RUN, recipe, *overrides, f"run.output_dir={out}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=limit,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"still running after {limit:.0f} s (--row-timeout)"}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "stderr.log"), "w", encoding="utf-8") as handle:
        handle.write(result.stderr)  # the run's logs, kept with its scalars.csv under --out
    if result.returncode != 0:
        return {
            "error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"
        }
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    with open(os.path.join(out, "scalars.csv"), newline="", encoding="utf-8") as handle:
        steady = [r for r in csv.DictReader(handle) if int(r["step"]) > warmup]
    if not steady:
        return {"error": f"no logged step after the warm-up of {warmup} steps"}
    return {
        "clips_per_s": sum(float(r["clips_per_s"]) for r in steady) / len(steady),
        "data_wait": sum(float(r["data_wait"]) for r in steady) / len(steady),
        "peak_gpu_gib": summary["peak_gpu_gib"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shards", help="a wtpipe-shards directory (default: the bundled clip's, built here)"
    )
    parser.add_argument("--steps", type=int, default=60, help="steps per row")
    parser.add_argument(
        "--warmup", type=int, default=20, help="first steps left out of the figures"
    )
    parser.add_argument("--only", choices=sorted(RECIPES))
    parser.add_argument("--workers", default="1,4,8", help="loader workers to compare")
    parser.add_argument("--batch", type=int, help="clips per step (default: the recipe's)")
    parser.add_argument(
        "--cpu-check", action="store_true", help="toy sizes on the CPU: plumbing only"
    )
    parser.add_argument(
        "--row-timeout", type=float, default=600, help="seconds a row may take before it is dropped"
    )
    parser.add_argument(
        "--out",
        help="keep each row's run directory (scalars.csv, stderr.log) here "
        "(default: a temporary directory)",
    )
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.cpu_check:
        print(
            "gpu_train.py: no CUDA device here; this benchmark measures GPU throughput (nothing to do)"
        )
        return 0
    workers = [int(n) for n in args.workers.split(",")]
    device = "CPU (toy sizes: plumbing check)" if args.cpu_check else torch.cuda.get_device_name()
    print(f"{device}; {args.steps} steps per row, figures over the steps after {args.warmup}")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.out or scratch
        shards = args.shards or bundled_shards(os.path.join(tmp, "shards"))
        for method in [args.only] if args.only else sorted(RECIPES):
            recipe = os.path.join(ROOT, "configs", RECIPES[method])
            base = [
                "run.log_every=10",
                f"run.max_steps={args.steps}",
                "run.checkpoint_every=1000000",
                "eval.every=0",
                f"data.shards={shards}",
                *(TOY if args.cpu_check else []),
                *([f"data.batch_size={args.batch}"] if args.batch else []),
            ]
            from wtpipe.config import load_config
            from wtpipe.train.config import TrainConfig

            config = load_config(TrainConfig, recipe, base)
            frames = config.data.clip_frames
            print(
                f"\n{method.upper()} {config.model.arch}, {config.data.batch_size} clips x {frames} frame(s) per step, "
                f"{config.data.global_size}/{config.data.local_size} px, {config.data.local_crops} local crops"
            )
            print(
                f"{'':62s} {'clips/s':>8s} {'frames/s':>9s} {'data wait':>10s} {'peak GiB':>9s} {'x ref':>6s}"
            )
            reference = None
            # --cpu-check leaves out the compile row: inductor on a CPU takes minutes and says nothing here
            for i, (label, overrides) in enumerate(
                rows(method, workers, config.data.batch_size, not args.cpu_check)
            ):
                if args.cpu_check:
                    overrides = [o for o in overrides if not o.startswith("run.mixed_precision")]
                got = measure(
                    recipe,
                    base + overrides,
                    os.path.join(tmp, f"{method}-{i}"),
                    args.warmup,
                    args.row_timeout,
                )
                if "error" in got:
                    print(f"{label:62s} failed: {got['error']}")
                    continue
                reference = (
                    got["clips_per_s"] if i == 0 else reference
                )  # None: the reference row failed
                peak = "-" if got["peak_gpu_gib"] is None else f"{got['peak_gpu_gib']:.1f}"
                ratio = f"{got['clips_per_s'] / reference:6.2f}" if reference else "     -"
                print(
                    f"{label:62s} {got['clips_per_s']:8.2f} {got['clips_per_s'] * frames:9.1f} "
                    f"{got['data_wait']:9.1%} {peak:>9s} {ratio}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
