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


class ExportError(Exception):
    """Nothing to export, or a target that would be overwritten; the message names the path."""


def export_checkpoint(path: str, out: str | None = None, overwrite: bool = False) -> str:
    """Export from a checkpoint directory (default: into it), or from a run directory (its
    newest checkpoint; default: ``RUN/backbone.safetensors``). An existing ``out`` is replaced
    only with ``overwrite``; a checkpoint's own copy, written with it, is reported and kept."""
    if not os.path.exists(path):
        raise ExportError(f"{path}: no such file or directory")
    ckpt, default = path, None
    if os.path.isdir(os.path.join(path, rundir.CHECKPOINTS)):
        ckpt = rundir.latest(os.path.join(path, rundir.CHECKPOINTS))
        if ckpt is None:
            raise ExportError(f"{path}: the run has no finished checkpoint yet")
        default = os.path.join(path, rundir.BACKBONE)
    elif not os.path.exists(os.path.join(path, rundir.STATE)):
        raise ExportError(f"{path}: neither a run directory (with {rundir.CHECKPOINTS}/) "
                          f"nor a checkpoint directory (with {rundir.STATE})")
    target = out or default or os.path.join(ckpt, rundir.BACKBONE)
    if os.path.exists(target) and not overwrite:
        if out is None and default is None:
            return target  # the checkpoint's own copy, written from this very state
        raise ExportError(f"{target} exists; pass --overwrite to replace it, or --out another file")
    try:
        state = checkpoint.load_state(ckpt)
    except checkpoint.CorruptCheckpoint as err:
        raise ExportError(f"{ckpt}: {err}") from None
    return save_backbone(backbone_state(state["teacher"]), target, weights_info(state["config"], int(state["step"])))
