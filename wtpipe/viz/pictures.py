"""Picture pieces shared by training and evaluation: views back to pixels, tinted masks,
heat maps, boxes, tiles, and atomic PNG writes."""

from __future__ import annotations

import io
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from wtpipe.atomic import write_bytes_atomic
from wtpipe.data.transforms import MEAN, STD

COLOURS = np.array(
    [
        [230, 25, 75],
        [60, 180, 75],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
    ],
    dtype=np.float32,
)


def to_uint8(view: torch.Tensor) -> np.ndarray:
    """A normalised (3, H, W) view back to an (H, W, 3) picture."""
    mean, std = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]
    return ((view.float().cpu() * std + mean).clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()


def overlay(frame: np.ndarray, masks: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Tint each object's mask (k, H, W) in its own colour."""
    out = frame.astype(np.float32)
    for i, mask in enumerate(masks):
        colour = COLOURS[i % len(COLOURS)]
        out[mask] = (1 - alpha) * out[mask] + alpha * colour
    return out.astype(np.uint8)


def heatmap(attention: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A (h, w) attention map as an (H, W, 3) picture, min-max scaled."""
    up = F.interpolate(attention[None, None].float(), size=size, mode="nearest")[0, 0]
    up = (up - up.min()) / (up.max() - up.min()).clamp_min(1e-12)
    values = (up.numpy() * 255).astype(np.uint8)
    return np.stack([values, (values * 0.6).astype(np.uint8), 255 - values], axis=-1)


TILE = 192  # small training views are shown enlarged


def tile(picture: np.ndarray) -> Image.Image:
    image = Image.fromarray(picture)
    scale = max(1, TILE // max(image.size))
    return (
        image.resize((image.width * scale, image.height * scale), Image.NEAREST)
        if scale > 1
        else image
    )


def save_png(image: Image.Image, path: str) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_bytes_atomic(path, buffer.getvalue())
    return path


LEGEND = 16  # pixels of a legend row


def legend_row(width: int, items: list[tuple[tuple[int, int, int] | None, str]]) -> Image.Image:
    """A white row of ``(colour, text)`` items, each a colour swatch (none for plain text) and
    its words, left to right."""
    row = Image.new("RGB", (width, LEGEND), "white")
    draw = ImageDraw.Draw(row)
    x = 4
    for colour, text in items:
        if colour is not None:
            draw.rectangle([x, 4, x + 9, 13], fill=tuple(int(c) for c in colour))
            x += 13
        draw.text((x, 2), text, fill="black")
        x += int(draw.textlength(text)) + 14
    return row


def stack_rows(*images: Image.Image) -> Image.Image:
    """Images one below the other on white, left-aligned."""
    sheet = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), "white")
    y = 0
    for image in images:
        sheet.paste(image, (0, y))
        y += image.height
    return sheet


def draw_boxes(
    image: Image.Image,
    boxes: list[tuple[float, float, float, float]],
    colour: tuple[int, int, int],
    width: int = 3,
    label: str | None = None,
) -> Image.Image:
    """Outline (x1, y1, x2, y2) pixel boxes in place; ``label`` is written at the first one."""
    draw = ImageDraw.Draw(image)
    for box in boxes:
        draw.rectangle([float(v) for v in box], outline=colour, width=width)
    if label and boxes:
        draw.text((float(boxes[0][0]) + 3, float(boxes[0][1]) + 2), label, fill=colour)
    return image
