"""DoRA's object discovery and tracking on the teacher's last block (DESIGN.md section 4).

discover: k attention maps on frame 0 (k chosen heads, or k clusters of all heads) weight that
          frame's patch queries -> k prototypes.
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
def discover(attention: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Prototypes (B, k, D): each of k attention maps (B, k, P) weights the patch queries (B, P, D)."""
    weights = attention.float()
    weights = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return weights @ queries.float()


@torch.no_grad()
def cluster_heads(cls_attn: torch.Tensor, k: int, iterations: int = 10) -> torch.Tensor:
    """k attention maps (B, k, P) from all H heads (B, H, P): spherical k-means of the heads' maps
    (deterministic farthest-point start), each cluster's maps averaged. Uses every head instead of
    k random ones, so no object a head found is left out by chance."""
    maps = F.normalize(cls_attn.float(), dim=-1)
    batch, heads, _ = maps.shape
    chosen = [torch.zeros(batch, dtype=torch.long, device=maps.device)]
    for _ in range(1, k):  # farthest point: the head least similar to those already chosen
        centres = maps[torch.arange(batch)[:, None], torch.stack(chosen, 1)]
        similarity = (maps @ centres.transpose(1, 2)).max(dim=-1).values
        chosen.append(similarity.argmin(dim=-1))
    centres = maps[torch.arange(batch)[:, None], torch.stack(chosen, 1)]
    for _ in range(iterations):
        assign = F.one_hot((maps @ centres.transpose(1, 2)).argmax(dim=-1), k).float()  # (B, H, k)
        counts = assign.sum(dim=1)  # (B, k)
        updated = F.normalize(assign.transpose(1, 2) @ maps, dim=-1)
        centres = torch.where(counts[..., None] > 0, updated, centres)
    assign = F.one_hot((maps @ centres.transpose(1, 2)).argmax(dim=-1), k).float()
    return (assign.transpose(1, 2) @ cls_attn.float()) / assign.sum(dim=1)[..., None].clamp_min(1)


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
