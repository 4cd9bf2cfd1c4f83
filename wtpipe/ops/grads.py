"""Gradient handling from the DINO recipe: per-parameter clipping, a frozen last layer early on,
and weight decay only on matrices."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def clip_per_parameter(model: nn.Module, max_norm: float) -> list[float]:
    """Scale each parameter's gradient to norm ``<= max_norm`` on its own (not a global norm).

    Returns the norms before clipping, for logging.
    """
    norms = []
    for param in model.parameters():
        if param.grad is None:
            continue
        norm = param.grad.norm(2).item()
        norms.append(norm)
        coef = max_norm / (norm + 1e-6)
        if coef < 1:
            param.grad.mul_(coef)
    return norms


def drop_last_layer_grads(model: nn.Module, epoch: int, freeze_epochs: int) -> None:
    """During the first ``freeze_epochs`` the head's last layer gets no update (its grad is dropped)."""
    if epoch >= freeze_epochs:
        return
    for name, param in model.named_parameters():
        if "last_layer" in name:
            param.grad = None


def decay_groups(model: nn.Module) -> list[dict]:
    """Two optimizer groups: weight decay for matrices, none for biases and 1-D parameters."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if name.endswith(".bias") or param.ndim == 1 else decay).append(param)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
