"""A contact sheet of frames sampled across a shard directory, to look at what was ingested."""

from __future__ import annotations

import io
import os

from PIL import Image, ImageDraw

from wtpipe.atomic import write_bytes_atomic
from wtpipe.shards.read import iter_samples, load_manifest

TILE_WIDTH = 240


def contact_sheet(directory: str, out_png: str, tiles: int = 24, columns: int = 6) -> int:
    """Write ``out_png`` with up to ``tiles`` frames spaced evenly over all stored frames.

    Tiles are ordered by video and time and labelled ``video @ seconds``; returns the tile count.
    """
    manifest = load_manifest(directory)
    total = manifest["totals"]["frames"]
    if total == 0:
        raise ValueError(f"{directory}: no frames to preview")
    step = max(1, total // tiles)
    picked = []
    seen = 0
    for entry in manifest["shards"]:
        for sample in iter_samples(os.path.join(directory, entry["name"])):
            count = sample.meta["frames"]
            wanted = [i for i in range(count) if (seen + i) % step == 0][: tiles - len(picked)]
            for i, frame in zip(wanted, sample.frames(wanted)):
                picked.append((sample.meta["video_id"], sample.meta["pts"][i], frame))
            seen += count
    picked.sort(key=lambda p: (p[0], p[1]))
    height = max(round(TILE_WIDTH * f.shape[0] / f.shape[1]) for _, _, f in picked)
    rows = (len(picked) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * TILE_WIDTH, rows * (height + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (video, t, frame) in enumerate(picked):
        image = Image.fromarray(frame)
        image.thumbnail((TILE_WIDTH, height))
        x, y = (i % columns) * TILE_WIDTH, (i // columns) * (height + 16)
        sheet.paste(image, (x, y))
        draw.text((x + 2, y + height + 2), f"{video} @ {t:.1f}s", fill="black")
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    write_bytes_atomic(out_png, buffer.getvalue())
    return len(picked)
