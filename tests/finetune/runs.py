"""The small segmentation fine-tune the tests run (seconds on CPU), as a command line."""

from __future__ import annotations

import sys

SMALL = [
    "data.num_classes=3",
    "data.crop=64",
    "data.base_scale=[256,80]",
    "data.batch_size=2",
    "data.num_workers=1",
    "data.slide_stride=48",
    "model.channels=16",
    "optim.iters=12",
    "optim.lr=0.002",
    "optim.warmup_iters=2",
    "run.checkpoint_every=4",
    "run.log_every=2",
    "run.val_every=6",
    "run.pictures=2",
]


def seg_args(data: str, weights: str, out: str, *extra: str) -> list[str]:
    """``wtpipe eval seg``'s arguments (after ``eval seg``) for the small run."""
    return [
        f"data.root={data}",
        f"model.weights={weights}",
        f"run.output_dir={out}",
        *SMALL,
        *extra,
    ]


def seg_cmd(data: str, weights: str, out: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "wtpipe.cli.main",
        "eval",
        "seg",
        *seg_args(data, weights, out, *extra),
    ]
