"""The demo's stages, in order; each keeps its output and is skipped when re-run."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from wtpipe.config import load_config
from wtpipe.demo import media, sample_data
from wtpipe.demo.pictures import attention_sheets, metrics_png, report_pictures
from wtpipe.demo.report import CAPTIONS, write_report
from wtpipe.demo.result import (
    CLIP,
    FOLDERS,
    HEADLINE,
    RECIPE,
    REFERENCE,
    DemoResult,
    DemoStopped,
    describe,
    recipe_for,
    series_names,
    verdict,
)
from wtpipe.engine import rundir
from wtpipe.eval.suite import score
from wtpipe.shards.build import ShardBuilder
from wtpipe.shards.preview import contact_sheet
from wtpipe.shards.settings import BuildSettings
from wtpipe.train.config import TrainConfig
from wtpipe.train.trainer import Trainer

__all__ = [
    "CAPTIONS",
    "CLIP",
    "FOLDERS",
    "HEADLINE",
    "RECIPE",
    "REFERENCE",
    "DemoResult",
    "DemoStopped",
    "attention_sheets",
    "describe",
    "recipe_for",
    "reference_overrides",
    "run_demo",
    "series_names",
    "verdict",
    "write_report",
]
log = logging.getLogger(__name__)


def _shards(out: str) -> str:
    """The bundled clip as shards (a finished build is reused, an interrupted one resumes)."""
    folder = os.path.join(out, "shards")
    report = ShardBuilder([CLIP], folder, BuildSettings(), progress=True).run()
    if report.problems:
        raise RuntimeError(
            f"{folder}: the build reported problems: {'; '.join(map(str, report.problems))}"
        )
    sheet = os.path.join(out, "contact_sheet.png")
    if not os.path.exists(sheet):
        contact_sheet(folder, sheet)
    return folder


def _train(
    out: str, shards: str, recipe: str, overrides: list[str], folder: str
) -> tuple[TrainConfig, dict[str, Any]]:
    config = load_config(
        TrainConfig,
        recipe,
        [f"data.shards={shards}", f"run.output_dir={os.path.join(out, folder)}", *overrides],
    )
    result = Trainer(config).run()
    if result["stopped"]:
        raise DemoStopped(
            f"training stopped by {result['signal']} at step {result['step']} (saved)"
        )
    return config, result


def reference_overrides(overrides: list[str]) -> list[str]:
    """The reference's own overrides, then the user's except ``method.`` keys: those tune the
    trained run, while the reference stays DINO + KoLeo; one budget and architecture hold for both."""
    return [*REFERENCE[1], *(o for o in overrides if not o.startswith("method."))]


def run_demo(
    out: str,
    recipe: str = RECIPE,
    overrides: list[str] | None = None,
    device: str = "cpu",
    reference: bool = True,
) -> DemoResult:
    """Every stage of the demo; stages already done are reused. Raises :class:`DemoStopped`.

    ``overrides`` apply to the reference run too (:func:`reference_overrides`)."""
    started = time.monotonic()
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    overrides = list(overrides or [])
    log.info("demo 1/4: ingesting %s", CLIP)
    shards = _shards(out)
    log.info(
        "demo 2/4: pretraining (%s)%s",
        recipe,
        ", then the reference (DINO + KoLeo)" if reference else "",
    )
    runs = {"trained": (recipe, overrides)}
    if reference:
        runs["reference"] = (REFERENCE[0], reference_overrides(overrides))
    configs, train = {}, {}
    for name, (run_recipe, run_overrides) in runs.items():
        configs[name], train[name] = _train(out, shards, run_recipe, run_overrides, FOLDERS[name])
    log.info(
        "demo 3/4: evaluation data (real annotated images and clips, fetched once into %s)",
        media.cache_dir(),
    )
    data = sample_data.build()
    objects = os.path.join(data, "objects", "instances.json")
    tasks = {"knn": os.path.join(data, "scenes"), "discover": objects, "attention": objects}
    log.info("demo 4/4: scoring the trained backbones and random initialisation")
    trained = configs["trained"]
    weights = {
        **{name: os.path.join(out, FOLDERS[name], rundir.BACKBONE) for name in configs},
        "random": f"random:{trained.model.arch}:{trained.run.seed}",
    }
    metrics = {
        name: score(w, tasks, os.path.join(out, "eval", name), device)
        for name, w in weights.items()
    }
    metrics_png(metrics, series_names(configs), os.path.join(out, "metrics.png"))
    result = DemoResult(
        out,
        train,
        metrics,
        report_pictures(out, series_names(configs)),
        time.monotonic() - started,
        configs,
    )
    write_report(result)
    return result
