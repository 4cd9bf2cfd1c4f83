"""Export the teacher backbone as ``backbone.safetensors`` in timm's key layout."""

from __future__ import annotations

import os

import torch
from safetensors.torch import load_file, save_file

from wtpipe.train import checkpoint

PREFIX = "backbone.vit."


def backbone_state(teacher_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm keys (``blocks.0.attn.qkv.weight``...) of a teacher ``BackboneWithHead`` state dict."""
    return {k[len(PREFIX):]: v.contiguous() for k, v in teacher_state.items() if k.startswith(PREFIX)}


def save_backbone(state: dict[str, torch.Tensor], path: str, arch: str) -> str:
    tmp = f"{path}.tmp-{os.getpid()}"
    save_file(state, tmp, metadata={"arch": arch, "format": "timm"})
    os.replace(tmp, path)
    return path


def export_checkpoint(path: str, out: str | None = None) -> str:
    """Export from a checkpoint directory, or from a run directory (its latest checkpoint)."""
    ckpt = path
    if os.path.isdir(os.path.join(path, "checkpoints")):
        ckpt = checkpoint.latest(os.path.join(path, "checkpoints"))
        if ckpt is None:
            raise FileNotFoundError(f"{path}: no finished checkpoint")
    state, _ = checkpoint.load(ckpt)
    out = out or os.path.join(os.path.dirname(os.path.abspath(ckpt)), "..", "backbone.safetensors")
    return save_backbone(backbone_state(state["teacher"]), os.path.normpath(out), state["config"]["model"]["arch"])


def load_backbone(path: str) -> dict[str, torch.Tensor]:
    return load_file(path)
