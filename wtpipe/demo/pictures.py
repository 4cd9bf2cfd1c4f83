"""The demo's own pictures: the metrics chart, the per-head attention sheets, and the list the report shows."""

from __future__ import annotations

import glob
import json
import os

from PIL import Image, ImageDraw

from wtpipe.atomic import replacing
from wtpipe.demo.result import FOLDERS, HEADLINE
from wtpipe.engine import rundir
from wtpipe.viz.pictures import save_png


def metrics_png(
    metrics: dict[str, dict[str, dict[str, float]]], names: dict[str, str], path: str
) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, values = [], {names[name]: [] for name in metrics}
    for task, metric, label in HEADLINE:
        labels.append(label)
        for name in metrics:
            values[names[name]].append(metrics[name][task][metric])
    fig, ax = plt.subplots(figsize=(7, 3.4))
    width = 0.8 / len(values)
    for i, (name, series) in enumerate(values.items()):
        bars = ax.bar([x + i * width for x in range(len(labels))], series, width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(
        [x + width * (len(values) - 1) / 2 for x in range(len(labels))], labels, fontsize=9
    )
    ax.set(ylabel="%", ylim=(0, 105), title="frozen features against random initialisation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def _per_image_jaccard(out: str, series: str) -> dict[str, float]:
    """Image name -> the mean over its objects of the best head's Jaccard (``eval/SERIES/attention``)."""
    with open(
        os.path.join(out, "eval", series, "attention", "metrics.json"), encoding="utf-8"
    ) as handle:
        rows = json.load(handle)["per_image"]
    return {
        os.path.splitext(os.path.basename(r["image"]))[0]: sum(
            o["jaccard"] for o in r["objects"].values()
        )
        / len(r["objects"])
        for r in rows
    }


def attention_sheets(out: str, names: dict[str, str]) -> list[str]:
    """One PNG per chosen image with every series' attention masks in rows: the first annotated
    image (VOC, human masks), and for each trained run the image where its Jaccard rose most above
    random initialisation (chosen by that rule, not by eye). Paths relative to ``out``."""
    series = [
        name
        for name in names
        if os.path.isdir(os.path.join(out, "eval", name, "attention", "pictures"))
    ]
    if "random" not in series or len(series) < 2:
        return []
    scores = {name: _per_image_jaccard(out, name) for name in series}
    images = list(scores["random"])
    chosen = {images[0]: f"{images[0]}: the first annotated image"}
    for name in series[:-1]:
        gains = {image: scores[name][image] - scores["random"][image] for image in images}
        best = max(gains, key=gains.get)
        chosen.setdefault(
            best,
            f"{best}: where {names[name]} rose most above random init "
            f"(J {100 * scores['random'][best]:.0f} -> {100 * scores[name][best]:.0f})",
        )
    paths = []
    for image, caption in chosen.items():
        rows = []
        for name in series:
            found = glob.glob(
                os.path.join(out, "eval", name, "attention", "pictures", f"*_{image}.png")
            )
            if found:
                rows.append((names[name], Image.open(found[0]).convert("RGB")))
        width, label = max(r.width for _, r in rows), 16
        sheet = Image.new("RGB", (width, label + sum(r.height + label for _, r in rows)), "white")
        draw = ImageDraw.Draw(sheet)
        draw.text(
            (4, 2), caption + "; each head's mask keeps 60 % of its [CLS] attention", fill="black"
        )
        y = label
        for name, row in rows:
            draw.text((4, y + 2), name, fill="black")
            sheet.paste(row, (0, y + label))
            y += row.height + label
        paths.append(
            os.path.relpath(save_png(sheet, os.path.join(out, f"attention_{image}.png")), out)
        )
    return paths


def report_pictures(out: str, names: dict[str, str]) -> dict[str, list[str]]:
    """The PNGs the report shows, relative to ``out``."""

    def pngs(folder: str, limit: int) -> list[str]:
        path = os.path.join(out, folder)
        names = (
            sorted(n for n in os.listdir(path) if n.endswith(".png")) if os.path.isdir(path) else []
        )
        return [os.path.join(folder, n) for n in names[:limit]]

    viz = pngs(os.path.join(FOLDERS["trained"], rundir.PICTURES), 1000)
    steps = sorted({os.path.basename(p).split("-clip")[0] for p in viz})
    shown = {steps[0], steps[-1]} if steps else set()
    curves = [
        os.path.join(run, rundir.LOSS_CURVE)
        for run in FOLDERS.values()
        if os.path.isdir(os.path.join(out, run))
    ]
    return {
        "contact sheet": ["contact_sheet.png"],
        "training curves": curves,
        "tracked masks and attention, first and last pictures": [
            p for p in viz if os.path.basename(p).split("-clip")[0] in shown
        ],
        "discovery, trained": pngs(os.path.join("eval", "trained", "discover", "pictures"), 4),
        "discovery, reference": pngs(os.path.join("eval", "reference", "discover", "pictures"), 2),
        "discovery, random init": pngs(os.path.join("eval", "random", "discover", "pictures"), 2),
        "CLS attention masks, per head": attention_sheets(out, names),
        "metrics": ["metrics.png"],
    }
