"""Export a checkpoint's teacher backbone as ``backbone.safetensors`` (timm keys, wtpipe metadata)."""

from __future__ import annotations

import os

import torch

from wtpipe import rundir
from wtpipe.models.weights import WeightsInfo, info_for, save_backbone
from wtpipe.train import checkpoint

PREFIX = "backbone.vit."


def backbone_state(teacher_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm keys (``blocks.0.attn.qkv.weight``...) of a teacher ``BackboneWithHead`` state dict."""
    return {k[len(PREFIX):]: v for k, v in teacher_state.items() if k.startswith(PREFIX)}


def weights_info(config: dict, step: int) -> WeightsInfo:
    """What evaluation needs to rebuild the backbone, from a run's saved config."""
    model = config["model"]
    return info_for(model["arch"], model.get("pos_interpolation", "dino"), step)


def export_checkpoint(path: str, out: str | None = None) -> str:
    """Export from a checkpoint directory (default: next to its state), or from a run directory
    (its latest checkpoint; default: ``RUN/backbone.safetensors``)."""
    ckpt = path
    if os.path.isdir(os.path.join(path, rundir.CHECKPOINTS)):
        ckpt = rundir.latest(os.path.join(path, rundir.CHECKPOINTS))
        if ckpt is None:
            raise FileNotFoundError(f"{path}: no finished checkpoint")
        out = out or os.path.join(path, rundir.BACKBONE)
    if not os.path.exists(os.path.join(ckpt, rundir.STATE)):
        raise FileNotFoundError(f"{path}: neither a run directory nor a checkpoint directory (no {rundir.STATE})")
    state, _ = checkpoint.load(ckpt)
    out = out or os.path.join(ckpt, rundir.BACKBONE)
    return save_backbone(backbone_state(state["teacher"]), out, weights_info(state["config"], int(state["step"])))
