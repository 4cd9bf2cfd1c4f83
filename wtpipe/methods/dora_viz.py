"""Pictures of what DoRA sees: the tracked object masks over a clip, and every head's raw [CLS]
attention on frame 0, so a person can tell whether discovery and tracking work."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch
from PIL import Image, ImageDraw

from wtpipe.data.loader import ClipDataset, to_device
from wtpipe.viz.pictures import (
    COLOURS,
    TILE,
    heatmap,
    legend_row,
    overlay,
    save_png,
    stack_rows,
    tile,
    to_uint8,
)

if TYPE_CHECKING:
    from wtpipe.methods.dora import DoRAMethod


def mask_sheet(
    views: torch.Tensor, masks: torch.Tensor, attention: torch.Tensor, heads: list[int]
) -> Image.Image:
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
        sheet.paste(tile(overlay(to_uint8(views[t]), masks[t].cpu().numpy())), (t * size[1], 14))
        draw.text((t * size[1] + 2, 1), f"frame {t}", fill="black")
    for h in range(attention.shape[0]):
        x, y = h * size[1], size[0] + 28
        sheet.paste(tile(heatmap(attention[h].cpu(), view_size)), (x, y))
        used = h in heads
        draw.text(
            (x + 2, size[0] + 15),
            f"head {h}" + (f" -> object {heads.index(h)}" if used else ""),
            fill="black",
        )
        if used:
            colour = tuple(int(c) for c in COLOURS[heads.index(h) % len(COLOURS)])
            draw.rectangle([x, y, x + size[1] - 1, y + size[0] - 1], outline=colour, width=3)
    objects = masks.shape[1]
    key = legend_row(
        sheet.width,
        [
            *((COLOURS[o % len(COLOURS)], f"object {o}") for o in range(objects)),
            (
                None,
                "| top: tracked masks; bottom: frame 0's [CLS] attention per head, "
                "blue low, orange high",
            ),
        ],
    )
    return stack_rows(sheet, key)


@torch.no_grad()
def write_mask_pngs(
    method: DoRAMethod, dataset: ClipDataset, out_dir: str, clips: int = 4, prefix: str = "masks"
) -> list[str]:
    """One PNG per clip (clip i = sample i * stride, fixed seeds, so sheets are comparable over time).

    Runs under ``fork_rng`` so that drawing the heads does not move the training RNG.
    """
    os.makedirs(out_dir, exist_ok=True)
    device = next(method.teacher.parameters()).device
    stride = max(1, len(dataset) // clips)
    paths = []
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)
        for i in range(min(clips, len(dataset))):
            globals_, _ = to_device(
                method.collate([dataset[(i * stride, i)]]), device
            )  # rendered if planned
            found = method.masks(globals_)
            globals_ = globals_[0].cpu()
            sheet = mask_sheet(globals_, found.masks[0], found.attention[0], found.heads.tolist())
            paths.append(save_png(sheet, os.path.join(out_dir, f"{prefix}-clip{i}.png")))
    return paths
