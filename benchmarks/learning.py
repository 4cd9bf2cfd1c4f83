#!/usr/bin/env python3
"""Does it learn? Random init vs DINO vs DoRA vs SwAV at the same compute budget, frozen-feature scores.

Pretrains DINO (configs/tiny_cpu.yaml), DoRA (configs/dora_tiny_cpu.yaml) and, when asked, SwAV
(configs/swav_tiny_cpu.yaml) on the real scene clips of the test media (`wtpipe.demo.media`) from
the same seeds, for the same number of steps with the same frames per step and the same view
sizes; then scores each method's exported backbone (the teacher for DINO and DoRA), and
the same architecture at random initialisation (the floor), with k-NN on held-out time ranges of
the scene classes, CorLoc (TokenCut, LOST) and the [CLS] attention-mask Jaccard on the annotated
images, and DAVIS J&F on the real sequences. Prints mean +- std over seeds, then each method's
change from the random init of the same seed (its own starting weights), seed by seed. Everything
is kept under --out, so a re-run after an interruption continues (training resumes, scored
weights are not scored again).

Usage: python benchmarks/learning.py [--seeds 3] [--steps 100] [--out DIR] [--device cpu|cuda]
                                    [--methods dino,dora,swav] [KEY=VALUE ...]
  --device cuda: ViT-S/16 in bf16 for --steps steps; DINO at 224/96 px, DoRA with the paper
                 recipe's views and head (configs/dora_vits16_wt.yaml: 300-px clip pre-crop,
                 bilinear crops, 6 unflipped 112-px local crops, 65536 prototypes, its loss).
  KEY=VALUE: recipe overrides for both methods (e.g. optim.lr=0.01), after the budget's own.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPES = {
    "dino": os.path.join(HERE, "..", "configs", "tiny_cpu.yaml"),
    "dora": os.path.join(HERE, "..", "configs", "dora_tiny_cpu.yaml"),
    "swav": os.path.join(HERE, "..", "configs", "swav_tiny_cpu.yaml"),
}
LABELS = {"random": "random init", "dino": "DINO", "dora": "DoRA", "swav": "SwAV"}
FRAMES_PER_STEP = 16  # DINO, SwAV: 16 images; DoRA: 4 clips x 4 frames
# The paper recipe's views and head for DoRA on a GPU (its learning settings stay the budget's).
PAPER_DORA = [
    "data.clip_precrop=300",
    "data.clip_precrop_scale=[0.2,1.0]",
    "data.global_interpolation=bilinear",
    "data.local_size=112",
    "data.local_crops=6",
    "data.local_flip=false",
    "model.out_dim=65536",
    "model.hidden_dim=2048",
    "model.bottleneck_dim=256",
    "model.norm_last_layer=false",
    "method.faithful=true",
]
COLUMNS = (
    ("knn", "top1_k20", "k-NN top-1"),
    ("discover", "corloc_tokencut", "CorLoc TokenCut"),
    ("discover", "corloc_lost", "CorLoc LOST"),
    ("attention", "jaccard", "attention J"),
    ("davis", "J&F", "DAVIS J&F"),
)


def overrides(method: str, seed: int, steps: int, shards: str, out: str, device: str) -> list[str]:
    """The same budget for both methods: steps, frames per step, view sizes, seed."""
    common = [
        f"data.shards={shards}",
        f"run.output_dir={out}",
        f"run.seed={seed}",
        "optim.steps_per_epoch=10",
        f"optim.epochs={max(1, steps // 10)}",
        "run.checkpoint_every=50",
        "run.viz_every=0",
    ]
    if method != "dora":  # single-frame methods
        common.append(f"data.batch_size={FRAMES_PER_STEP}")
    else:
        common += [f"data.batch_size={FRAMES_PER_STEP // 4}", "data.clip_frames=4"]
    if device == "cuda":
        common += [
            "model.arch=vit_small_patch16_224",
            "data.global_size=224",
            "data.local_size=96",
            "run.mixed_precision=bf16",
            *(PAPER_DORA if method == "dora" else []),
        ]
    return common


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", default=os.path.join("benchmarks", "out", "learning"))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--methods", default="dino,dora", help="comma-separated: dino, dora, swav")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides for both methods"
    )
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(RECIPES))
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)} (choose from {', '.join(RECIPES)})")
    logging.basicConfig(level=logging.WARNING)

    import torch

    from wtpipe.config import load_config
    from wtpipe.demo import media as testmedia
    from wtpipe.demo import sample_data
    from wtpipe.demo.sample_data import SCENE_CLIPS
    from wtpipe.eval.suite import score
    from wtpipe.shards.build import ShardBuilder
    from wtpipe.shards.settings import BuildSettings
    from wtpipe.train.config import TrainConfig
    from wtpipe.train.trainer import Trainer

    if args.device == "cuda" and not torch.cuda.is_available():
        print("learning.py: --device cuda asked, but CUDA is not available here")
        return 0
    started = time.monotonic()
    sources = testmedia.fetch_sources()
    shards = os.path.join(args.out, "shards")
    ShardBuilder(
        [sources[c] for c in SCENE_CLIPS], shards, BuildSettings(min_shards=2), progress=False
    ).run()
    data = sample_data.build()
    objects = os.path.join(data, "objects", "instances.json")
    tasks = {
        "knn": os.path.join(data, "scenes"),
        "discover": objects,
        "attention": objects,
        "davis": os.path.join(data, "davis"),
    }
    settings = {
        "davis": {"short_side": 240},
        "discover": {"pictures": 0},
        "attention": {"pictures": 0},
        "knn": {"cache_dir": ""},
    }
    # each budget and set of overrides trains into its own directories; shards and random-init scores are shared
    variant = f"-{args.steps}steps" + (
        "-" + hashlib.sha1(" ".join(args.overrides).encode()).hexdigest()[:8]
        if args.overrides
        else ""
    )
    results: dict[str, list[dict[str, dict[str, float]]]] = {
        "random": [],
        **{m: [] for m in methods},
    }
    seconds: dict[str, float] = {m: 0.0 for m in methods}
    for seed in range(args.seeds):
        arch = "vit_small_patch16_224" if args.device == "cuda" else "vit_tiny_patch16_224"
        results["random"].append(
            score(
                f"random:{arch}:{seed}",
                tasks,
                os.path.join(args.out, f"random-{seed}"),
                args.device,
                settings,
            )
        )
        for method in methods:
            run = os.path.join(args.out, f"{method}-{seed}{variant}")
            config = load_config(
                TrainConfig,
                RECIPES[method],
                overrides(method, seed, args.steps, shards, run, args.device) + args.overrides,
            )
            t0 = time.monotonic()
            summary = Trainer(config).run()
            seconds[method] += time.monotonic() - t0
            if summary["collapsed"]:
                print(f"{method} seed {seed}: collapsed ({', '.join(summary['collapsed'])})")
            results[method].append(
                score(run, tasks, os.path.join(run, "eval"), args.device, settings)
            )
            print(
                f"{method} seed {seed}: loss {last_loss(run):.3f} "
                + ", ".join(f"{label} {results[method][-1][t][m]:.1f}" for t, m, label in COLUMNS),
                flush=True,
            )

    print(
        f"\n{args.seeds} seed(s), {args.steps} steps, {FRAMES_PER_STEP} frames/step, "
        f"{len(SCENE_CLIPS)} clips; training "
        + ", ".join(f"{seconds[m]:.0f} s {m}" for m in methods)
        + "; "
        f"total {time.monotonic() - started:.0f} s"
    )
    print("\n".join(tables(results)))
    return 0


def tables(results: dict[str, list[dict[str, dict[str, float]]]]) -> list[str]:
    """Markdown: each row's mean +- std over seeds, then each method's change from the random-init row
    of the same seed. That row is the run's own starting backbone (same seed, same construction), so the
    change is paired: it removes the spread between initialisations, which is as large as the effects."""

    def row(name: str, cells: list[str]) -> str:
        return f"| {LABELS[name]} | " + " | ".join(cells) + " |"

    header = [
        "| weights | " + " | ".join(label for _, _, label in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    lines = list(header)
    for name, runs in results.items():
        lines.append(row(name, [spread([r[t][m] for r in runs]) for t, m, _ in COLUMNS]))
    lines += [
        "",
        "Change from the same seed's random init (mean ± std; seeds above / level / below):",
        *header,
    ]
    for name, runs in results.items():
        if name == "random":
            continue
        cells = []
        for task, metric, _ in COLUMNS:
            deltas = [
                r[task][metric] - base[task][metric] for r, base in zip(runs, results["random"])
            ]
            signs = [(d > 1e-9) - (d < -1e-9) for d in deltas]
            cells.append(
                spread(deltas, signed=True)
                + f" ({signs.count(1)}/{signs.count(0)}/{signs.count(-1)})"
            )
        lines.append(row(name, cells))
    return lines


def spread(values: list[float], signed: bool = False) -> str:
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{'+' if signed else ''}.1f} ± {deviation:.1f}"


def last_loss(run: str) -> float:
    """The run's last logged loss (the trainer's summary has none for a run finished earlier)."""
    with open(os.path.join(run, "scalars.csv"), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return float(rows[-1]["loss"]) if rows else float("nan")


if __name__ == "__main__":
    sys.exit(main())
