"""DoRA's object discovery and tracking on the teacher's last block (DESIGN.md section 4).

discover: k heads' [CLS] attention on frame 0 weights that frame's patch queries -> k prototypes.
refine:   Sinkhorn-Knopp with uniform marginals assigns patches to prototypes, so two heads that
          looked at the same object stop sharing it; refined prototype = plan-weighted mean of
          the L2-normalised patch features.
track:    cross-attention of the prototypes with every frame's patch keys (1/sqrt(d), softmax
          over patches) -> k maps per frame.
binarise: each map, L2-normalised, thresholded at its own mean -> k masks per frame.
All of it runs without gradients: masks select what the student sees, they are not learned.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from wtpipe.ops.sinkhorn import sinkhorn


@torch.no_grad()
def discover(cls_attn: torch.Tensor, queries: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
    """Prototypes (B, k, D) from [CLS] attention (B, H, P) of ``heads`` over patch queries (B, P, D)."""
    weights = cls_attn[:, heads].float()
    weights = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return weights @ queries.float()


@torch.no_grad()
def refine(prototypes: torch.Tensor, features: torch.Tensor, epsilon: float = 0.05,
           iterations: int = 30) -> torch.Tensor:
    """Sinkhorn-refined prototypes (B, k, D) from prototypes (B, k, D) and patch features (B, P, D)."""
    feats = F.normalize(features.float(), dim=-1)
    logits = feats @ F.normalize(prototypes.float(), dim=-1).transpose(-1, -2)  # (B, P, k) cosines
    plan = sinkhorn(logits, epsilon, iterations)
    k = prototypes.shape[-2]
    return (plan.transpose(-1, -2) * k) @ feats  # each plan column sums to 1/k: a weighted mean


@torch.no_grad()
def track(prototypes: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Attention maps (B, T, k, P) of prototypes (B, k, D) over every frame's patch keys (B, T, P, D)."""
    scale = 1.0 / math.sqrt(keys.shape[-1])
    logits = torch.einsum("bkd,btpd->btkp", prototypes.float(), keys.float()) * scale
    return logits.softmax(dim=-1)


@torch.no_grad()
def binarise(maps: torch.Tensor) -> torch.Tensor:
    """Masks (same shape, bool): each map, L2-normalised, above its own mean (per sample, per object)."""
    normed = F.normalize(maps, dim=-1)
    return normed > normed.mean(dim=-1, keepdim=True)


def to_pixels(masks: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Patch masks (..., P) on a ``grid`` (h, w) -> pixel masks (..., H, W) by nearest upsampling."""
    lead = masks.shape[:-1]
    patches = masks.reshape(-1, 1, *grid).float()
    pixels = F.interpolate(patches, size=size, mode="nearest")
    return pixels.reshape(*lead, *size).bool()
