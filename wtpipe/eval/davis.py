"""Semi-supervised video object segmentation by label propagation (DINO's ``eval_video_segmentation``).

Every frame is resized so that its short side is 480 px and its long side the largest multiple
of 64 below the aspect-kept length, normalised (note DINO's red std 0.228), and encoded by the
frozen backbone; its last-block patch tokens (after the final norm) are L2-normalised. The
first frame's annotation, shrunk by nearest-neighbour to the patch grid, is one-hot per label.
Each later frame takes its labels from a context of the first frame and the 7 previous ones:
affinity exp(cos / 0.1), limited to source patches within +-12 patches (rows and columns) of
the target patch, keeping for each target patch only the sources whose affinity is at least its
5th largest over the whole context, normalised to sum 1. The soft labels (not the argmax) go
into the context. For output, the labels are upsampled bilinearly by the patch size, each
channel is min-max scaled, and the argmax is resized to the frame by nearest-neighbour.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from wtpipe.models.vit import ViTBackbone

MEAN = (0.485, 0.456, 0.406)
STD = (0.228, 0.224, 0.225)  # DINO's video-segmentation script uses 0.228 for red


@dataclass
class PropagationConfig:
    n_last_frames: int = 7
    size_mask_neighborhood: int = 12
    topk: int = 5
    temperature: float = 0.1
    short_side: int = 480


def working_size(height: int, width: int, short_side: int = 480) -> tuple[int, int]:
    """(h, w) the network sees: short side ``short_side``, long side floored to a multiple of 64."""
    if height > width:
        return int((short_side * height / width) // 64 * 64), short_side
    return short_side, int((short_side * width / height) // 64 * 64)


def frame_tensor(rgb: np.ndarray, short_side: int = 480) -> torch.Tensor:
    """(H, W, 3) uint8 -> normalised (3, h, w) at the working size (bilinear, no antialiasing)."""
    size = working_size(*rgb.shape[:2], short_side)
    image = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div(255)
    if tuple(image.shape[-2:]) != size:
        image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]
    return (image - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def first_labels(annotation: np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """(H, W) label map -> one-hot (labels, h, w) on the patch grid, by nearest-neighbour shrinking."""
    small = np.asarray(
        Image.fromarray(annotation.astype(np.uint8)).resize((grid[1], grid[0]), Image.NEAREST)
    )
    small = torch.from_numpy(small.astype(np.int64))
    return F.one_hot(small, int(small.max()) + 1).permute(2, 0, 1).float()


def neighbourhood(grid: tuple[int, int], radius: int) -> torch.Tensor:
    """(P, P) 0/1: source patch within ``radius`` rows and columns of the target patch."""
    rows = torch.arange(grid[0]).repeat_interleave(grid[1])
    cols = torch.arange(grid[1]).repeat(grid[0])
    near = ((rows[:, None] - rows[None, :]).abs() <= radius) & (
        (cols[:, None] - cols[None, :]).abs() <= radius
    )
    return near.float()


@torch.no_grad()
def patch_features(backbone: ViTBackbone, frame: torch.Tensor) -> torch.Tensor:
    """(P, D) last-block patch tokens (after the final norm), L2-normalised."""
    tokens = backbone.vit.forward_features(frame[None].to(next(backbone.parameters()).device))
    return F.normalize(tokens[0, backbone.vit.num_prefix_tokens :].float(), dim=1)


def propagate(
    target: torch.Tensor,
    sources: list[torch.Tensor],
    labels: list[torch.Tensor],
    near: torch.Tensor | None,
    config: PropagationConfig,
) -> torch.Tensor:
    """Soft labels (C, P) of ``target`` (P, D) from context features (P, D) and soft labels (C, P)."""
    affinity = torch.exp(
        torch.stack(sources) @ target.T / config.temperature
    )  # (n, P source, P target)
    if near is not None:
        affinity = affinity * near  # symmetric, so source/target order does not matter
    affinity = affinity.flatten(0, 1)  # (n * P sources, P targets)
    kth = affinity.topk(config.topk, dim=0).values.min(dim=0).values
    affinity = torch.where(affinity < kth, torch.zeros_like(affinity), affinity)
    affinity = affinity / affinity.sum(0, keepdim=True)
    return torch.cat(labels, dim=1) @ affinity


def to_label_map(
    soft: torch.Tensor, grid: tuple[int, int], patch: int, size: tuple[int, int]
) -> np.ndarray:
    """Soft (C, P) labels -> (H, W) uint8 label map at the original frame size."""
    up = F.interpolate(
        soft.reshape(1, -1, *grid), scale_factor=patch, mode="bilinear", align_corners=False
    )[0]
    shifted = up - up.amin((1, 2), keepdim=True)
    scaled = torch.where(
        up.amax((1, 2), keepdim=True) > 0,
        shifted / shifted.amax((1, 2), keepdim=True).clamp_min(1e-30),
        up,
    )
    labels = scaled.argmax(0).to(torch.uint8).numpy()
    return np.asarray(Image.fromarray(labels).resize((size[1], size[0]), Image.NEAREST))


def segment_video(
    backbone: ViTBackbone,
    frames: Iterator[np.ndarray],
    annotation: np.ndarray,
    config: PropagationConfig | None = None,
) -> Iterator[np.ndarray]:
    """Yield a label map for every frame after the first (whose labels are ``annotation``)."""
    config = config or PropagationConfig()
    first = next(frames)
    size = first.shape[:2]
    tensor = frame_tensor(first, config.short_side)
    grid = (tensor.shape[1] // backbone.patch_size, tensor.shape[2] // backbone.patch_size)
    first_feat, first_seg = (
        patch_features(backbone, tensor).cpu(),
        first_labels(annotation, grid).flatten(1),
    )
    near = (
        neighbourhood(grid, config.size_mask_neighborhood)
        if config.size_mask_neighborhood > 0
        else None
    )
    recent: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=config.n_last_frames)
    for frame in frames:
        feat = patch_features(backbone, frame_tensor(frame, config.short_side)).cpu()
        soft = propagate(
            feat,
            [first_feat] + [f for f, _ in recent],
            [first_seg] + [s for _, s in recent],
            near,
            config,
        )
        recent.append((feat, soft))
        yield to_label_map(soft, grid, backbone.patch_size, size)
