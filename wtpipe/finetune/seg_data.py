"""ADE20K-layout segmentation data and the mmseg-style pipelines of the iBOT/BEiT protocol.

Layout: ``ROOT/images/{training,validation}/NAME.jpg`` and ``ROOT/annotations/{same}/NAME.png``
(label indices; with ``reduce_zero_label`` value 0 is "other" and becomes ignored, 1..C become
0..C-1). Training: random rescale of the base scale by 0.5-2.0, a random crop (re-drawn up to 10
times while one class covers over 75 % of it, as mmseg's ``cat_max_ratio``), a horizontal flip and
photometric distortion, all from a per-sample generator so a batch is a function of (seed, step).
Validation: the image at the base scale, predicted by sliding windows of the crop size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance

from wtpipe.eval.datasets import LayoutError, read_labels, read_rgb
from wtpipe.eval.features import MEAN, STD
from wtpipe.finetune.seg_metrics import IGNORE

SPLITS = {"train": "training", "val": "validation"}


@dataclass(frozen=True)
class SegPipeline:
    crop: int = 512
    base_scale: tuple[int, int] = (2048, 512)  # mmseg's img_scale: (long side cap, short side)
    ratio_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    reduce_zero_label: bool = True


def pairs(root: str, split: str) -> list[tuple[str, str]]:
    """(image, annotation) paths of a split; an image without its annotation is a layout error."""
    images = os.path.join(root, "images", SPLITS[split])
    notes = os.path.join(root, "annotations", SPLITS[split])
    for folder in (images, notes):
        if not os.path.isdir(folder):
            raise LayoutError(
                f"{folder}: no such directory (ADE20K layout: images/ and annotations/ with "
                "training/ and validation/)"
            )
    found = []
    for name in sorted(os.listdir(images)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        note = os.path.join(notes, f"{stem}.png")
        if not os.path.exists(note):
            raise LayoutError(f"{os.path.join(images, name)}: no annotation {note}")
        found.append((os.path.join(images, name), note))
    if not found:
        raise LayoutError(f"{images}: no images")
    return found


def reduce_labels(labels: np.ndarray, reduce_zero_label: bool) -> np.ndarray:
    if not reduce_zero_label:
        return labels
    out = labels.astype(np.int16) - 1
    out[labels == 0] = IGNORE
    out[labels == IGNORE] = IGNORE
    return out.astype(np.uint8)


def rescale_size(width: int, height: int, scale: tuple[int, int]) -> tuple[int, int]:
    """mmcv's keep-ratio rescale: the largest size whose long side <= max(scale) and short side <= min(scale)."""
    factor = min(max(scale) / max(width, height), min(scale) / min(width, height))
    return round(width * factor), round(height * factor)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    image = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div(255)
    return (image - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def _photometric(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast, saturation (each with probability 1/2), as mmseg's PhotoMetricDistortion
    in spirit; hue is left out (PIL has no cheap exact hue shift)."""
    for enhance, spread in (
        (ImageEnhance.Brightness, 32 / 255),
        (ImageEnhance.Contrast, 0.5),
        (ImageEnhance.Color, 0.5),
    ):
        if rng.random() < 0.5:
            image = enhance(image).enhance(float(rng.uniform(1 - spread, 1 + spread)))
    return image


def train_sample(
    rgb: np.ndarray, labels: np.ndarray, pipe: SegPipeline, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmented (3, crop, crop) image and (crop, crop) int64 labels; padding is ignored."""
    image, notes = (
        Image.fromarray(rgb),
        Image.fromarray(reduce_labels(labels, pipe.reduce_zero_label)),
    )
    ratio = rng.uniform(*pipe.ratio_range)
    size = rescale_size(
        image.width,
        image.height,
        (round(pipe.base_scale[0] * ratio), round(pipe.base_scale[1] * ratio)),
    )
    image, notes = image.resize(size, Image.BILINEAR), notes.resize(size, Image.NEAREST)
    label_array = np.asarray(notes)
    for _ in range(10):
        top = int(rng.integers(0, max(size[1] - pipe.crop, 0) + 1))
        left = int(rng.integers(0, max(size[0] - pipe.crop, 0) + 1))
        window = label_array[top : top + pipe.crop, left : left + pipe.crop]
        counts = np.bincount(window[window != IGNORE].ravel())
        if len(counts) > 1 and counts.max() / counts.sum() < pipe.cat_max_ratio:
            break
    box = (left, top, left + min(pipe.crop, size[0]), top + min(pipe.crop, size[1]))
    image, notes = image.crop(box), notes.crop(box)
    if rng.random() < 0.5:
        image, notes = (
            image.transpose(Image.FLIP_LEFT_RIGHT),
            notes.transpose(Image.FLIP_LEFT_RIGHT),
        )
    image = _photometric(image, rng)
    x = to_tensor(np.asarray(image))
    y = torch.from_numpy(np.asarray(notes).astype(np.int64))
    pad = (0, pipe.crop - x.shape[2], 0, pipe.crop - x.shape[1])
    return F.pad(x, pad), F.pad(y, pad, value=IGNORE)


def val_sample(
    rgb: np.ndarray, labels: np.ndarray, pipe: SegPipeline
) -> tuple[torch.Tensor, torch.Tensor]:
    """The image at the base scale and the labels at their own size (scores are taken there)."""
    image = Image.fromarray(rgb)
    image = image.resize(rescale_size(image.width, image.height, pipe.base_scale), Image.BILINEAR)
    return to_tensor(np.asarray(image)), torch.from_numpy(
        reduce_labels(labels, pipe.reduce_zero_label).astype(np.int64)
    )


def load_pair(image_path: str, label_path: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The image and its labels, or None if either is unreadable or their sizes differ."""
    rgb = read_rgb(image_path)
    if rgb is None:
        return None
    try:
        labels = read_labels(label_path)
    except (OSError, LayoutError):
        return None
    return (rgb, labels) if labels.shape == rgb.shape[:2] else None


@torch.no_grad()
def slide_logits(
    model: torch.nn.Module, image: torch.Tensor, num_classes: int, crop: int, stride: int
) -> torch.Tensor:
    """mmseg's slide inference: windows of ``crop`` every ``stride`` pixels (the last one flush with
    the border), logits summed and divided by how many windows saw each pixel. (C, H, W)."""
    _, height, width = image.shape
    rows = max(height - crop + stride - 1, 0) // stride + 1
    cols = max(width - crop + stride - 1, 0) // stride + 1
    total = image.new_zeros(num_classes, height, width)
    seen = image.new_zeros(1, height, width)
    for r in range(rows):
        for c in range(cols):
            y1, x1 = min(r * stride, max(height - crop, 0)), min(c * stride, max(width - crop, 0))
            y2, x2 = min(y1 + crop, height), min(x1 + crop, width)
            total[:, y1:y2, x1:x2] += model(image[None, :, y1:y2, x1:x2])[0]
            seen[:, y1:y2, x1:x2] += 1
    return total / seen
