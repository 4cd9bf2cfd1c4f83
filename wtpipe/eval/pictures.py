"""Evaluation pictures: confusion matrices, discovery overlays, attention masks, DAVIS strips."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from wtpipe.atomic import replacing
from wtpipe.eval.datasets import davis_palette
from wtpipe.viz.pictures import (
    COLOURS,
    draw_boxes,
    legend_row,
    overlay,
    save_png,
    stack_rows,
)

TRUTH, TOKENCUT, LOST = (230, 25, 75), (60, 200, 75), (0, 130, 230)


def confusion_png(
    truth: torch.Tensor, predicted: torch.Tensor, classes: list[str], path: str, title: str
) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(classes)
    matrix = torch.zeros(count, count, dtype=torch.long)
    matrix.index_put_(
        (truth.long(), predicted.long()), torch.ones(len(truth), dtype=torch.long), accumulate=True
    )
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * count, 0.8 + 0.6 * count))
    ax.imshow(matrix.numpy(), cmap="Blues")
    for i in range(count):
        for j in range(count):
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(count), classes, rotation=45, ha="right")
    ax.set_yticks(range(count), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return path


def _heat(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) values -> (H, W, 3), min-max scaled, nearest upsampling, dark blue to yellow."""
    scaled = (values - values.min()) / max(float(values.max() - values.min()), 1e-12)
    up = np.asarray(
        Image.fromarray((scaled * 255).astype(np.uint8)).resize((size[1], size[0]), Image.NEAREST)
    )
    return np.stack([up, up, (255 - up) // 2 + 60], axis=-1).astype(np.uint8)


def discovery_png(
    rgb: np.ndarray, truth: np.ndarray, found: dict, attention: np.ndarray, patch: int, path: str
) -> str:
    """Panels: the image with true (red), TokenCut (green) and LOST (blue) boxes; the mean [CLS]
    attention; TokenCut's eigenvector with its chosen component outlined; LOST's seed expansion.
    A legend row below says which colour is which (labels inside the boxes would overlap)."""
    size = rgb.shape[:2]
    padded = (attention.shape[1] * patch, attention.shape[2] * patch)
    panels = [Image.fromarray(rgb)]
    draw_boxes(panels[0], [tuple(b) for b in truth], TRUTH, 2)
    colours = {"tokencut": TOKENCUT, "lost": LOST}
    names = {"tokencut": "TokenCut", "lost": "LOST"}
    for method, (_, box) in found.items():
        draw_boxes(panels[0], [box], colours[method], 3)
    panels.append(Image.fromarray(_heat(attention.mean(0), padded)[: size[0], : size[1]]))
    for method, (result, _) in found.items():
        heat = _heat(result.score, padded)
        edge = np.kron(result.mask, np.ones((patch, patch), dtype=bool))
        heat[edge & ~np.roll(edge, 1, 0) | edge & ~np.roll(edge, 1, 1)] = colours[method]
        panels.append(Image.fromarray(heat[: size[0], : size[1]]))
    titles = ["boxes", "[CLS] attention"] + [
        f"{m} {'eigenvector' if m == 'tokencut' else 'seed expansion'}" for m in found
    ]
    sheet = Image.new("RGB", (sum(p.width for p in panels), size[0] + 16), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for panel, title in zip(panels, titles):
        sheet.paste(panel, (x, 16))
        draw.text((x + 3, 2), title, fill="black")
        x += panel.width
    key = legend_row(
        sheet.width,
        [
            (TRUTH, "annotated boxes"),
            *((colours[m], f"{names[m]}'s box") for m in found),
            (None, "| maps: dark blue low, yellow high; outlined: the patches each method chose"),
        ],
    )
    return save_png(stack_rows(sheet, key), path)


def attention_png(
    rgb: np.ndarray,
    objects: np.ndarray,
    heads: np.ndarray,
    jaccard: np.ndarray,
    best: np.ndarray,
    path: str,
    names: list[str],
    keep: float = 0.6,
    height: int = 200,
) -> str:
    """Panels: the ground-truth objects tinted; then every head's mask (the rest darkened), with
    the objects it is the best head for outlined in their colour and named with their Jaccard
    index in % above; a legend row below names the objects' colours and says what J is."""
    panels = [overlay(rgb, objects)]
    titles = ["annotated objects"]
    for h, mask in enumerate(heads):
        picture = np.where(mask[..., None], rgb, rgb // 4)  # outside the mask darkened
        won = [f"{names[o]} J {100 * jaccard[o]:.0f}" for o in range(len(objects)) if best[o] == h]
        for o in range(len(objects)):  # outline the objects this head is best for, in their colour
            if best[o] == h:
                edge = objects[o] & ~(
                    np.roll(objects[o], 1, 0)
                    & np.roll(objects[o], 1, 1)
                    & np.roll(objects[o], -1, 0)
                    & np.roll(objects[o], -1, 1)
                )
                picture[edge] = COLOURS[o % len(COLOURS)]
        panels.append(picture)
        titles.append(f"head {h}" + (": " + ", ".join(won) if won else ""))
    scale = height / rgb.shape[0]
    width = max(1, round(rgb.shape[1] * scale))
    sheet = Image.new("RGB", (width * len(panels), height + 16), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (panel, title) in enumerate(zip(panels, titles)):
        sheet.paste(Image.fromarray(panel).resize((width, height), Image.BILINEAR), (i * width, 16))
        draw.text((i * width + 3, 2), title, fill="black")
    key = legend_row(
        sheet.width,
        [
            *((COLOURS[o % len(COLOURS)], name) for o, name in enumerate(names)),
            (
                None,
                f"| a head's mask: {keep:.0%} of its [CLS] attention; J: % overlap with "
                "the object it covers best (outlined)",
            ),
        ],
    )
    return save_png(stack_rows(sheet, key), path)


def sequence_strip(
    frames: list[np.ndarray],
    truth: np.ndarray,
    predicted: list[np.ndarray],
    path: str,
    columns: int = 6,
) -> str:
    """Two rows over evenly spaced frames: ground truth, then the propagated labels, tinted."""
    palette = davis_palette().astype(np.float32)
    picks = np.linspace(0, min(len(frames), len(truth)) - 1, columns).round().astype(int)

    def tint(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
        out = rgb.astype(np.float32)
        fg = labels > 0
        out[fg] = 0.5 * out[fg] + 0.5 * palette[labels[fg]]
        return out.astype(np.uint8)

    rows = [
        np.concatenate([tint(frames[i], truth[i]) for i in picks], axis=1),
        np.concatenate([tint(frames[i], predicted[i]) for i in picks], axis=1),
    ]
    image = Image.fromarray(np.concatenate(rows, axis=0))
    image = image.resize((image.width // 2, image.height // 2), Image.BILINEAR)
    ImageDraw.Draw(image).text((4, 4), "ground truth", fill="white")
    ImageDraw.Draw(image).text((4, image.height // 2 + 4), "propagated", fill="white")
    return save_png(image, path)
