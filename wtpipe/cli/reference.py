"""The configuration reference (``docs/configuration.md``), generated from the config classes:
the same help text as ``--print-config``, so the page cannot drift from the code.
``python tools/config_reference.py`` writes it; ``tests/test_docs.py`` checks it is current."""

from __future__ import annotations

import dataclasses
from typing import Any

from wtpipe.cluster.submit import JobFile
from wtpipe.config import reference_table
from wtpipe.eval.settings import TASKS
from wtpipe.finetune.config import DetConfig, SegConfig
from wtpipe.methods import METHODS
from wtpipe.methods import config as method_configs
from wtpipe.train.config import TrainConfig

INTRO = """# Configuration reference

Every key of every config wtpipe reads, with its default and its meaning. This page is generated
from the config classes by `python tools/config_reference.py` (the same help text that
`--print-config` prints next to each key), and a test fails when it differs from what the code
generates.

A config is a YAML file (`--config FILE`) plus dotted `key=value` overrides on the command line,
before or after the options: `optim.lr=0.002`, `data.global_scale=[0.14,1.0]`,
`method.name=swav`. A key the config does not have is refused with a did-you-mean, a value of the
wrong type or an unknown choice with the key's name; YAML is read with `safe_load`, never
evaluated; `~` and `$VARS` are expanded in paths. `wtpipe train --config FILE --print-config`
prints the resolved config, every key with its help, as YAML that `--config` reads back.

A run resumes from its checkpoints only under the same config, except for the keys marked *may
change on resume* (they change how a run executes or is observed, not what it computes).
"""


def _sections(config: Any, heading: str, skip: tuple[str, ...] = ()) -> list[str]:
    lines: list[str] = []
    for item in dataclasses.fields(config):
        if item.name not in skip:
            lines += [
                "",
                f"{heading} `{item.name}`",
                "",
                *reference_table(getattr(config, item.name)),
            ]
    return lines


def markdown() -> str:
    """The whole page."""
    lines = [INTRO, "## Pretraining: `wtpipe train`"]
    lines += _sections(TrainConfig(), "###", skip=("method",))
    lines += [
        "",
        "### `method`",
        "",
        "`method.name` chooses the method and, with it, the keys the section has.",
    ]
    for name, (_, config_class) in METHODS.items():
        method = getattr(method_configs, config_class)()
        lines += ["", f"#### `method.name: {name}`", "", *reference_table(method)]
    lines += ["", "## Fine-tuning for segmentation: `wtpipe eval seg`"]
    lines += _sections(SegConfig(), "###")
    lines += ["", "## Fine-tuning for detection: `wtpipe eval det`"]
    lines += _sections(DetConfig(), "###")
    lines += [
        "",
        "## Evaluation tasks: `wtpipe eval TASK ... key=value`",
        "",
        "Each task's settings, as `key=value` arguments after the task's options.",
    ]
    for task, settings in TASKS.items():
        lines += ["", f"### `{task}`", "", *reference_table(settings())]
    lines += [
        "",
        "## Slurm job files: `jobs/*.yaml`",
        "",
        "What `wtpipe submit JOB.yaml` reads; the command line's options override `resources`.",
        "",
        *reference_table(JobFile()),
    ]
    return "\n".join(lines) + "\n"
