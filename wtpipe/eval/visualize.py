"""Pictures of what DoRA sees: the tracked object masks over a clip, and every head's raw [CLS]
attention on frame 0, so a person can tell whether discovery and tracking work."""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from wtpipe.data.transforms import MEAN, STD
from wtpipe.shards.tarwriter import write_bytes_atomic

COLOURS = np.array([[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                    [70, 240, 240], [240, 50, 230], [210, 245, 60]], dtype=np.float32)


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


def _tile(picture: np.ndarray) -> Image.Image:
    image = Image.fromarray(picture)
    scale = max(1, TILE // max(image.size))
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST) if scale > 1 else image


def mask_sheet(views: torch.Tensor, masks: torch.Tensor, attention: torch.Tensor, heads: list[int]) -> Image.Image:
    """Row 1: the clip's frames with object masks; row 2: every head's attention on frame 0
    (the heads used for discovery are outlined). ``views`` (T, 3, S, S), ``masks`` (T, k, S, S),
    ``attention`` (H, h, w)."""
    frames, view_size = views.shape[0], tuple(views.shape[-2:])
    scale = max(1, TILE // max(view_size))
    size = (view_size[0] * scale, view_size[1] * scale)
    columns = max(frames, attention.shape[0])
    sheet = Image.new("RGB", (columns * size[1], 2 * size[0] + 28), "white")
    draw = ImageDraw.Draw(sheet)
    for t in range(frames):
        sheet.paste(_tile(overlay(to_uint8(views[t]), masks[t].cpu().numpy())), (t * size[1], 14))
        draw.text((t * size[1] + 2, 1), f"frame {t}", fill="black")
    for h in range(attention.shape[0]):
        x, y = h * size[1], size[0] + 28
        sheet.paste(_tile(heatmap(attention[h].cpu(), view_size)), (x, y))
        used = h in heads
        draw.text((x + 2, size[0] + 15), f"head {h}" + (f" -> object {heads.index(h)}" if used else ""), fill="black")
        if used:
            colour = tuple(int(c) for c in COLOURS[heads.index(h) % len(COLOURS)])
            draw.rectangle([x, y, x + size[1] - 1, y + size[0] - 1], outline=colour, width=3)
    return sheet


def save_png(image: Image.Image, path: str) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_bytes_atomic(path, buffer.getvalue())
    return path
