"""Gradient handling from the DINO recipe: per-parameter clipping, a frozen last layer early on,
and weight decay only on matrices."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def clip_per_parameter(model: nn.Module, max_norm: float) -> torch.Tensor:
    """Scale each parameter's gradient to norm ``<= max_norm`` on its own (not a global norm), as
    DINO's ``clip_gradients`` (coefficient ``max_norm / (norm + 1e-6)`` in float32, applied when
    below 1), without a host sync: every norm and coefficient stays on the device.

    Returns the norms before clipping (a device tensor, for logging).
    """
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(0)
    norms = torch.stack(torch._foreach_norm(grads, 2))
    coefs = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # x 1.0 leaves a gradient bit-identical
    torch._foreach_mul_(grads, list(coefs.unbind()))
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
