"""DoRA's object discovery and tracking on the teacher's last block.

The conventions are the official DoRA_ICLR24 code's (its ``utils.MOT``), in both modes:

discover: k attention maps on frame 0 (k chosen heads, or k clusters of all heads), as the
          softmax left them (not renormalised), weight that frame's patch queries (all heads
          concatenated) into k prototypes: a plain sum over patches.
refine:   Sinkhorn-Knopp between the L2-normalised teacher patch outputs and the *raw*
          prototypes (their norms set how sharp the assignment is) gives each patch an
          assignment over the k objects that sums to 1; refined prototype = the assignment-
          weighted *sum* of the normalised patch features (norm about P / k). Heads that looked
          at the same object stop sharing it.
track:    cross-attention of the refined prototypes with every frame's patch keys (1/sqrt(D),
          softmax over patches) -> k maps per frame; the prototypes' scale is what makes these
          maps peaked (normalised or mean-scaled prototypes give nearly uniform maps).
binarise: each map, L2-normalised, thresholded at its mean: the sample's own mean by default,
          the mean over the whole batch when ``batch_wide`` (the official code).
All of it runs without gradients: masks select what the student sees, they are not learned.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from wtpipe.ops.sinkhorn import sinkhorn


@torch.no_grad()
def discover(attention: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Prototypes (B, k, D): each of k attention maps (B, k, P), as they are, weights the patch
    queries (B, P, D) in a plain sum (the maps' total mass, below 1 because [CLS] also attends to
    itself, is part of the official prototypes' scale)."""
    return attention.float() @ queries.float()


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
def refine(
    prototypes: torch.Tensor, features: torch.Tensor, epsilon: float = 0.05, iterations: int = 30
) -> torch.Tensor:
    """Sinkhorn-refined prototypes (B, k, D) from raw prototypes (B, k, D) and patch features (B, P, D)."""
    feats = F.normalize(features.float(), dim=-1)
    logits = feats @ prototypes.float().transpose(
        -1, -2
    )  # (B, P, k): raw prototypes, as the official code
    assignment = sinkhorn(logits, epsilon, iterations)  # each patch's row sums to 1
    return assignment.transpose(-1, -2) @ feats  # a sum over patches, not a mean


@torch.no_grad()
def track(prototypes: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Attention maps (B, T, k, P) of prototypes (B, k, D) over every frame's patch keys (B, T, P, D)."""
    scale = 1.0 / math.sqrt(keys.shape[-1])
    logits = torch.einsum("bkd,btpd->btkp", prototypes.float(), keys.float()) * scale
    return logits.softmax(dim=-1)


@torch.no_grad()
def binarise(maps: torch.Tensor, batch_wide: bool = False) -> torch.Tensor:
    """Masks (same shape, bool) of maps (B, ..., P): each map, L2-normalised, above its own mean, or
    above the mean of that frame and object's maps over the whole batch when ``batch_wide``."""
    normed = F.normalize(maps, dim=-1)
    dims = (0, -1) if batch_wide else (-1,)
    return normed > normed.mean(dim=dims, keepdim=True)


def to_pixels(masks: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Patch masks (..., P) on a ``grid`` (h, w) -> pixel masks (..., H, W) by nearest upsampling."""
    lead = masks.shape[:-1]
    patches = masks.reshape(-1, 1, *grid).float()
    pixels = F.interpolate(patches, size=size, mode="nearest")
    return pixels.reshape(*lead, *size).bool()


class Tracks(NamedTuple):
    """Every intermediate of one discovery-and-tracking pass (for parity tests and pictures)."""

    prototypes: torch.Tensor  # (B, k, D) from the chosen attention maps
    refined: torch.Tensor  # (B, k, D) after Sinkhorn
    maps: torch.Tensor  # (B, T, k, P) tracked attention
    masks: torch.Tensor  # (B, T, k, P) bool


@torch.no_grad()
def track_objects(
    attention: torch.Tensor,
    queries: torch.Tensor,
    features: torch.Tensor,
    keys: torch.Tensor,
    epsilon: float = 0.05,
    iterations: int = 30,
    batch_wide: bool = False,
) -> Tracks:
    """Discover on frame 0 and track through the clip: k attention maps (B, k, P) and frame 0's patch
    queries (B, P, D) and teacher outputs (B, P, D'), every frame's patch keys (B, T, P, D)."""
    prototypes = discover(attention, queries)
    refined = refine(prototypes, features, epsilon, iterations)
    maps = track(refined, keys)
    return Tracks(prototypes, refined, maps, binarise(maps, batch_wide))
