"""Discovery, Sinkhorn refinement and tracking on planted attention: the masks land on the objects."""

from __future__ import annotations

import torch

from wtpipe.ops.objects import (
    binarise,
    cluster_heads,
    discover,
    refine,
    to_pixels,
    track,
    track_objects,
)

GRID = (6, 6)
P, D = 36, 16


def square(top: int, left: int, size: int = 2) -> torch.Tensor:
    mask = torch.zeros(GRID, dtype=torch.bool)
    mask[top : top + size, left : left + size] = True
    return mask.flatten()


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a & b).sum().item() / max(1, (a | b).sum().item())


def softmax_like(weights: torch.Tensor) -> torch.Tensor:
    """Scale attention rows to what a softmax over [CLS] + patches leaves the patches (0.9 here)."""
    return 0.9 * weights / weights.sum(-1, keepdim=True)


def test_a_planted_object_is_discovered_and_tracked_as_it_moves():
    """Sinkhorn's uniform marginals give each of k prototypes 1/k of the patches: with k = 2, an
    object covering half the frame (a 4 x 8 band of an 8 x 8 grid) walks down it."""
    torch.manual_seed(0)
    grid, dim = (8, 8), 16
    obj, background = torch.zeros(dim), torch.zeros(dim)
    obj[0], background[1] = 4.0, 4.0

    def band(top: int) -> torch.Tensor:
        mask = torch.zeros(grid, dtype=torch.bool)
        mask[top : top + 4] = True
        return mask.flatten()

    tops = [0, 1, 2, 3, 4]
    keys = torch.stack([torch.where(band(top)[:, None], obj, background) for top in tops])
    keys = (keys + 0.02 * torch.randn_like(keys))[None]  # (1, T, P, D)
    cls_attn = torch.full((1, 2, 64), 0.1)
    cls_attn[0, 0, band(0)] = 5.0  # head 0 looks at the object in frame 0
    cls_attn[0, 1, ~band(0)] = 1.0  # head 1 at the background
    tracks = track_objects(softmax_like(cls_attn), keys[:, 0], keys[:, 0], keys)
    for t, top in enumerate(tops):
        assert iou(tracks.masks[0, t, 0], band(top)) == 1.0
        assert iou(tracks.masks[0, t, 1], ~band(top)) == 1.0


def test_refinement_separates_heads_that_share_objects():
    torch.manual_seed(1)
    parts = [
        torch.arange(P) < 12,
        (torch.arange(P) >= 12) & (torch.arange(P) < 24),
        torch.arange(P) >= 24,
    ]
    directions = torch.eye(D)[:3] * 3.0
    features = sum(
        torch.where(part[:, None], direction, torch.zeros(D))
        for part, direction in zip(parts, directions)
    )
    features = (features + 0.05 * torch.randn(P, D))[None]
    cls_attn = torch.zeros(1, 3, P)
    for head, mix in enumerate([(0.6, 0.4, 0.0), (0.4, 0.6, 0.0), (0.0, 0.1, 0.9)]):
        for part, weight in zip(parts, mix):
            cls_attn[0, head, part] = weight
    raw = discover(softmax_like(cls_attn), features)
    refined = refine(raw, features)

    def overlap(prototypes):
        masks = binarise(track(prototypes, features[:, None]))[0, 0]  # (k, P)
        return sum((masks[i] & masks[j]).sum().item() for i in range(3) for j in range(i + 1, 3))

    assert overlap(refined) < overlap(raw)
    masks = binarise(track(refined, features[:, None]))[0, 0]
    assert sorted(max(iou(m, part) for m in masks) for part in parts) == [1.0, 1.0, 1.0]


def test_masks_upsample_to_pixels():
    masks = square(2, 3)[None]
    pixels = to_pixels(masks, GRID, (96, 96))
    assert pixels.shape == (1, 96, 96) and pixels[0, 32:48, 48:64].all() and pixels.sum() == 32 * 32


def test_clustering_all_heads_groups_heads_that_look_at_the_same_object():
    torch.manual_seed(2)
    objects = [square(0, 0), square(3, 3), square(0, 4)]
    cls_attn = torch.full((1, 6, P), 0.01)
    for head, target in enumerate([0, 0, 1, 1, 2, 2]):  # six heads, two per object
        cls_attn[0, head, objects[target]] = 1.0 + 0.1 * torch.rand(4)
    maps = cluster_heads(cls_attn, 3)
    assert maps.shape == (1, 3, P)
    hits = [next(j for j in range(3) if objects[j][int(maps[0, i].argmax())]) for i in range(3)]
    assert sorted(hits) == [0, 1, 2]  # one map per object, none shared, none missed
