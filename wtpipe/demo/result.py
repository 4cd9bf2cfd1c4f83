"""What a demo run produced, and the names the report and the command line use for it."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from typing import Any

from wtpipe.engine import rundir
from wtpipe.methods import method_class
from wtpipe.train.config import TrainConfig

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
CLIP = os.path.join(ASSETS, "vtest.mp4")
# Each method's tiny CPU recipe, shipped in the package (links to configs/): the demo trains
# DoRA's unless ``method.name=`` names another method.
TINY_RECIPES = {
    "dino": os.path.join(ASSETS, "tiny_cpu.yaml"),
    "dora": os.path.join(ASSETS, "dora_tiny_cpu.yaml"),
    "swav": os.path.join(ASSETS, "swav_tiny_cpu.yaml"),
}
RECIPE = TINY_RECIPES["dora"]
# The reference run: DINO + DINOv2's KoLeo term, the tiny recipe that beats random initialisation here.
REFERENCE = (os.path.join(ASSETS, "tiny_cpu.yaml"), ["method.koleo=1.0"])
HEADLINE = (
    ("knn", "top1_k20", "k-NN top-1 (k=20), scenes"),  # (task, metric, label)
    ("discover", "corloc_tokencut", "CorLoc TokenCut"),
    ("discover", "corloc_lost", "CorLoc LOST"),
    ("attention", "jaccard", "[CLS] attention Jaccard"),
)
FOLDERS = {"trained": "run", "reference": "reference"}  # each trained run's folder under OUT


class DemoStopped(Exception):
    """Training was stopped by a signal; its checkpoint is saved and a re-run continues."""


@dataclass
class DemoResult:
    out: str
    train: dict[str, dict[str, Any]]  # run ("trained", ["reference"]) -> the trainer's result
    metrics: dict[
        str, dict[str, dict[str, float]]
    ]  # weights ("trained", ["reference",] "random") -> task -> metrics
    pictures: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    configs: dict[str, TrainConfig] = field(
        default_factory=dict
    )  # "trained" and, when run, "reference"


def _final_row(run: str) -> dict[str, float]:
    """The last logged scalars of the run (loss and monitors)."""
    with open(os.path.join(run, rundir.SCALARS), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {k: float(v) for k, v in rows[-1].items() if v not in ("", None)} if rows else {}


def recipe_for(overrides: list[str]) -> str:
    """The tiny recipe of the method a ``method.name=`` override names (DoRA's without one)."""
    names = [o.partition("=")[2] for o in overrides if o.startswith("method.name=")]
    name = names[-1] if names else "dora"
    if name not in TINY_RECIPES:
        raise ValueError(f"method.name={name}: the demo trains {', '.join(TINY_RECIPES)}")
    return TINY_RECIPES[name]


def method_name(config: TrainConfig) -> str:
    return method_class(config.method.name).display_name


def koleo(config: TrainConfig) -> float:
    """The KoLeo weight of a DINO or DoRA run (methods without the term: 0)."""
    return getattr(config.method, "koleo", 0.0)


def describe(config: TrainConfig) -> str:
    """What was trained, in one line: the method, its budget, and KoLeo when it is on."""
    data = config.data
    batch = (
        f"{data.batch_size} clips of {data.clip_frames} frames"
        if config.method.name == "dora"
        else f"{data.batch_size} images"
    )
    term = f", KoLeo {koleo(config):g}" if koleo(config) else ""
    o = config.optim
    steps = f"{o.epochs * o.steps_per_epoch} steps" if o.steps_per_epoch else f"{o.epochs} epochs"
    return f"{method_name(config)} ({config.model.arch}, {steps}, batch {batch}{term})"


def series_names(configs: dict[str, TrainConfig]) -> dict[str, str]:
    """Column names: "trained (DoRA)", "reference (DINO + KoLeo)", "random init"."""

    def method(config: TrainConfig) -> str:
        return method_name(config) + (" + KoLeo" if koleo(config) else "")

    return {
        **{name: f"{name} ({method(config)})" for name, config in configs.items()},
        "random": "random init",
    }


def verdict(metrics: dict[str, dict[str, dict[str, float]]], series: str = "trained") -> str:
    """Which headline metrics ``series`` wins, ties and loses against random initialisation."""
    said: dict[str, list[str]] = {"above": [], "level with": [], "below": []}
    for task, metric, label in HEADLINE:
        gap = metrics[series][task][metric] - metrics["random"][task][metric]
        where = "above" if gap > 1e-6 else "below" if gap < -1e-6 else "level with"
        said[where].append(label if where == "level with" else f"{label} ({gap:+.1f})")
    return "; ".join(
        f"{where} random init on {', '.join(names)}" for where, names in said.items() if names
    )
