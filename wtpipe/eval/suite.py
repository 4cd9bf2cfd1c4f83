"""Several evaluation tasks on one set of weights, each scored once: the demo and the learning
benchmark re-run after an interruption without scoring the same weights twice."""

from __future__ import annotations

import json
import os
from typing import Any

from wtpipe.eval.settings import TASKS
from wtpipe.eval.tasks import run_task
from wtpipe.models.weights import load_backbone


def _done(path: str, source: str, step: int) -> dict[str, float] | None:
    """The metrics in ``path`` when they were scored on these weights (same file or seed, same step)."""
    try:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError):
        return None
    weights = report.get("weights", {})
    return (
        report["metrics"]
        if (weights.get("source"), weights.get("step")) == (source, step)
        else None
    )


def score(
    weights: str,
    data: dict[str, str],
    out: str,
    device: str = "cpu",
    settings: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, float]]:
    """Run each ``task -> data`` on ``weights`` into ``out/TASK/`` (skipping tasks already scored on
    the same weights); the metrics per task. ``settings``: per-task overrides of the defaults."""
    backbone, info = load_backbone(weights, device)
    backbone.eval()
    results = {}
    for task, root in data.items():
        folder = os.path.join(out, task)
        found = _done(os.path.join(folder, "metrics.json"), info.source, info.step)
        if found is None:
            config = TASKS[task](**(settings or {}).get(task, {}))
            found = run_task(task, backbone, info, root, folder, config)["metrics"]
        results[task] = found
    return results
