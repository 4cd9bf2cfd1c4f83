"""The layout of a run's directory: the one module that knows a path inside a run. The loops
write it, evaluation and the command line read it.

RUN/config.yaml                              the resolved config (pretraining and fine-tuning)
RUN/scalars.csv, RUN/tensorboard/, loss.png  the logged scalars and their curves
RUN/backbone.safetensors                     the final exported backbone (pretraining)
RUN/viz/, RUN/eval/, RUN/slurm/              pictures, evaluations during or after training, job logs
RUN/checkpoints/latest                       the newest step's name (replaced atomically)
RUN/checkpoints/step-XXXXXXXX/state.pt       full training state
RUN/checkpoints/step-XXXXXXXX/backbone.safetensors   that step's exported backbone
"""

from __future__ import annotations

import os

from wtpipe.atomic import TMP_MARK

CHECKPOINTS = "checkpoints"
LATEST = "latest"
BACKBONE = "backbone.safetensors"
STATE = "state.pt"
CONFIG = "config.yaml"
SCALARS = "scalars.csv"
TENSORBOARD = "tensorboard"
LOSS_CURVE = "loss.png"
PICTURES = "viz"
EVALUATIONS = "eval"
JOB_LOGS = "slurm"


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def completed(root: str) -> list[str]:
    """Finished checkpoints under ``root`` (a run's checkpoints dir), oldest first."""
    if not os.path.isdir(root):
        return []
    return sorted(n for n in os.listdir(root) if n.startswith("step-") and TMP_MARK not in n)


def latest(root: str) -> str | None:
    """Path of the newest complete checkpoint under ``root``, or None."""
    pointer = os.path.join(root, LATEST)
    if os.path.exists(pointer):
        with open(pointer, encoding="utf-8") as handle:
            path = os.path.join(root, handle.read().strip())
        if os.path.exists(os.path.join(path, STATE)):
            return path
    done = completed(root)
    return os.path.join(root, done[-1]) if done else None
