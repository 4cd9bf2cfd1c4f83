"""AdamW parameter groups with layer-wise learning-rate decay over the ViT's blocks."""

from __future__ import annotations

from typing import Any

from torch import nn

from wtpipe.models.vit import ViTBackbone

NO_DECAY = ("cls_token", "pos_embed", "reg_token")


def layer_id(name: str, depth: int) -> int:
    """BEiT's numbering (its mmseg ``LayerDecayOptimizerConstructor``): the patch embedding and the
    prefix/position embeddings are layer 0, block i is i + 1, the final norm is depth + 1."""
    if name.startswith(("patch_embed", *NO_DECAY)):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return depth + 1


def layer_decay_groups(
    backbone: ViTBackbone, head: nn.Module, weight_decay: float, layer_decay: float
) -> list[dict[str, Any]]:
    """One group per (layer, decay or not): ``lr_scale = layer_decay ** (depth + 1 - layer)``, so
    block 12 of 12 trains at ``layer_decay`` times the head's rate and the patch embedding at
    ``layer_decay ** 13``; biases, norms and embeddings get no weight decay. Every module of
    ``head`` (all that is not the ViT) trains at full rate."""
    depth = len(backbone.vit.blocks)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}

    def add(param: nn.Parameter, layer: int, decay: bool) -> None:
        group = groups.setdefault(
            (layer, decay),
            {
                "params": [],
                "weight_decay": weight_decay if decay else 0.0,
                "lr_scale": layer_decay ** (depth + 1 - layer),
            },
        )
        group["params"].append(param)

    for name, param in backbone.vit.named_parameters():
        if param.requires_grad:
            add(param, layer_id(name, depth), param.ndim > 1 and not name.startswith(NO_DECAY))
    for param in head.parameters():
        if param.requires_grad:
            add(param, depth + 1, param.ndim > 1)
    return list(groups.values())
