#!/usr/bin/env python3
"""The trainer's thread budget against PyTorch's default, on the demo's DINO run (one run each).

Trains configs/tiny_cpu.yaml (2 loader workers) on the bundled clip for --steps steps twice,
from fresh output folders: once with as many intra-op threads as cores (PyTorch's default,
what wtpipe did before the budget) and once with the budget (``run.threads=0``: cores minus
loader workers). OMP_NUM_THREADS is unset for both. Prints seconds per step and the ratio.

--busy N adds N processes spinning on the CPU meanwhile, as on a shared machine or a node
whose other jobs overrun their cores.

Usage: python benchmarks/threads.py [--steps 20] [--busy 1]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

from wtpipe.process import available_cores

ASSET = os.path.join(os.path.dirname(__file__), "..", "wtpipe", "assets", "vtest.mp4")
CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "tiny_cpu.yaml")


def seconds_per_step(shards: str, out: str, steps: int, threads: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wtpipe.cli.main",
            "train",
            "--config",
            CONFIG,
            f"data.shards={shards}",
            f"run.output_dir={out}",
            f"run.max_steps={steps}",
            f"run.threads={threads}",
            f"run.checkpoint_every={steps}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    done, seconds = re.search(r"(\d+) steps in ([\d.]+) s", result.stdout).groups()
    return float(seconds) / int(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes running meanwhile")
    args = parser.parse_args()
    cores = available_cores()
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)
    ]
    try:
        default, budget = measure(args.steps, cores)
    finally:
        for spinner in spinners:
            spinner.kill()
    print(
        f"{cores} cores, {args.busy} busy process(es), 2 loader workers, tiny_cpu.yaml, {args.steps} steps each"
    )
    print(f"PyTorch default ({cores} intra-op threads)  {default:6.2f} s/step  1.00 x")
    print(
        f"wtpipe budget ({max(1, cores - 2)} intra-op thread(s))  {budget:6.2f} s/step  "
        f"{default / budget:4.2f} x the default's speed"
    )


def measure(steps: int, cores: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        shards = os.path.join(tmp, "shards")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "wtpipe.cli.main",
                "shards",
                "build",
                ASSET,
                "--out",
                shards,
                "--quiet",
            ],
            check=True,
            capture_output=True,
        )
        return (
            seconds_per_step(shards, os.path.join(tmp, "default"), steps, cores),
            seconds_per_step(shards, os.path.join(tmp, "budget"), steps, 0),
        )


if __name__ == "__main__":
    main()
