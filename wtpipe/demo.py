"""``wtpipe demo``: the whole pipeline on the bundled clip, in minutes on a laptop, as one report.

Ingest the clip into shards, pretrain DoRA with the tiny recipe, score the trained backbone and the
same architecture at random initialisation (k-NN on the scene classes; object discovery and the
[CLS] attention's overlap with the objects on the annotated images), and write ``OUT/report.md``
with the pictures next to it. Every stage keeps its output and is skipped when re-run, and the
training resumes from its last checkpoint, so an interrupted demo continues where it stopped.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

from wtpipe import rundir, testmedia
from wtpipe.config import load_config
from wtpipe.eval import sample_data
from wtpipe.eval.suite import score
from wtpipe.shards.build import ShardBuilder
from wtpipe.shards.preview import contact_sheet
from wtpipe.shards.settings import BuildSettings
from wtpipe.shards.tarwriter import write_bytes_atomic
from wtpipe.train.config import TrainConfig
from wtpipe.train.trainer import Trainer
from wtpipe.viz.pictures import save_png

log = logging.getLogger(__name__)
ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
CLIP = os.path.join(ASSETS, "vtest.mp4")
RECIPE = os.path.join(ASSETS, "dora_tiny_cpu.yaml")  # a link to configs/dora_tiny_cpu.yaml, shipped in the package
# The reference run: DINO + DINOv2's KoLeo term, the tiny recipe that beats random initialisation here.
REFERENCE = (os.path.join(ASSETS, "tiny_cpu.yaml"), ["method.koleo=1.0"])
HEADLINE = (("knn", "top1_k20", "k-NN top-1 (k=20), scenes"),  # (task, metric, label)
            ("discover", "corloc_tokencut", "CorLoc TokenCut"),
            ("discover", "corloc_lost", "CorLoc LOST"),
            ("attention", "jaccard", "[CLS] attention Jaccard"))
FOLDERS = {"trained": "run", "reference": "reference"}  # each trained run's folder under OUT


class DemoStopped(Exception):
    """Training was stopped by a signal; its checkpoint is saved and a re-run continues."""


@dataclass
class DemoResult:
    out: str
    train: dict[str, dict[str, Any]]  # run ("trained", ["reference"]) -> the trainer's result
    metrics: dict[str, dict[str, dict[str, float]]]  # weights ("trained", ["reference",] "random") -> task -> metrics
    pictures: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    configs: dict[str, TrainConfig] = field(default_factory=dict)  # "trained" and, when run, "reference"


def _shards(out: str) -> str:
    """The bundled clip as shards (a finished build is reused, an interrupted one resumes)."""
    folder = os.path.join(out, "shards")
    report = ShardBuilder([CLIP], folder, BuildSettings(), progress=True).run()
    if report.problems:
        raise RuntimeError(f"{folder}: the build reported problems: {'; '.join(map(str, report.problems))}")
    sheet = os.path.join(out, "contact_sheet.png")
    if not os.path.exists(sheet):
        contact_sheet(folder, sheet)
    return folder


def _train(out: str, shards: str, recipe: str, overrides: list[str], folder: str) -> tuple[TrainConfig, dict[str, Any]]:
    config = load_config(TrainConfig, recipe, [f"data.shards={shards}", f"run.output_dir={os.path.join(out, folder)}",
                                               *overrides])
    result = Trainer(config).run()
    if result["stopped"]:
        raise DemoStopped(f"training stopped by {result['signal']} at step {result['step']} (saved)")
    return config, result


def _final_row(run: str) -> dict[str, float]:
    """The last logged scalars of the run (loss and monitors)."""
    with open(os.path.join(run, "scalars.csv"), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {k: float(v) for k, v in rows[-1].items() if v not in ("", None)} if rows else {}


def _metrics_png(metrics: dict[str, dict[str, dict[str, float]]], names: dict[str, str], path: str) -> str:
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
    ax.set_xticks([x + width * (len(values) - 1) / 2 for x in range(len(labels))], labels, fontsize=9)
    ax.set(ylabel="%", ylim=(0, 105), title="frozen features against random initialisation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=100)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)
    return path


def _per_image_jaccard(out: str, series: str) -> dict[str, float]:
    """Image name -> the mean over its objects of the best head's Jaccard (``eval/SERIES/attention``)."""
    with open(os.path.join(out, "eval", series, "attention", "metrics.json"), encoding="utf-8") as handle:
        rows = json.load(handle)["per_image"]
    return {os.path.splitext(os.path.basename(r["image"]))[0]: sum(o["jaccard"] for o in r["objects"].values())
            / len(r["objects"]) for r in rows}


def attention_sheets(out: str, names: dict[str, str]) -> list[str]:
    """One PNG per chosen image with every series' attention masks in rows: the first annotated
    image (VOC, human masks), and for each trained run the image where its Jaccard rose most above
    random initialisation (chosen by that rule, not by eye). Paths relative to ``out``."""
    series = [name for name in names if os.path.isdir(os.path.join(out, "eval", name, "attention", "pictures"))]
    if "random" not in series or len(series) < 2:
        return []
    scores = {name: _per_image_jaccard(out, name) for name in series}
    images = list(scores["random"])
    chosen = {images[0]: f"{images[0]}: the first annotated image"}
    for name in series[:-1]:
        gains = {image: scores[name][image] - scores["random"][image] for image in images}
        best = max(gains, key=gains.get)
        chosen.setdefault(best, f"{best}: where {names[name]} rose most above random init "
                                f"(J {100 * scores['random'][best]:.0f} -> {100 * scores[name][best]:.0f})")
    paths = []
    for image, caption in chosen.items():
        rows = []
        for name in series:
            found = glob.glob(os.path.join(out, "eval", name, "attention", "pictures", f"*_{image}.png"))
            if found:
                rows.append((names[name], Image.open(found[0]).convert("RGB")))
        width, label = max(r.width for _, r in rows), 16
        sheet = Image.new("RGB", (width, label + sum(r.height + label for _, r in rows)), "white")
        draw = ImageDraw.Draw(sheet)
        draw.text((4, 2), caption + "; each head's mask keeps 60 % of its [CLS] attention", fill="black")
        y = label
        for name, row in rows:
            draw.text((4, y + 2), name, fill="black")
            sheet.paste(row, (0, y + label))
            y += row.height + label
        paths.append(os.path.relpath(save_png(sheet, os.path.join(out, f"attention_{image}.png")), out))
    return paths


def _pictures(out: str, names: dict[str, str]) -> dict[str, list[str]]:
    """The PNGs the report shows, relative to ``out``."""
    def pngs(folder: str, limit: int) -> list[str]:
        path = os.path.join(out, folder)
        names = sorted(n for n in os.listdir(path) if n.endswith(".png")) if os.path.isdir(path) else []
        return [os.path.join(folder, n) for n in names[:limit]]

    viz = pngs(os.path.join("run", "viz"), 1000)
    steps = sorted({os.path.basename(p).split("-clip")[0] for p in viz})
    shown = {steps[0], steps[-1]} if steps else set()
    curves = [os.path.join(run, "loss.png") for run in FOLDERS.values() if os.path.isdir(os.path.join(out, run))]
    return {"contact sheet": ["contact_sheet.png"], "training curves": curves,
            "tracked masks and attention, first and last pictures": [
                p for p in viz if os.path.basename(p).split("-clip")[0] in shown],
            "discovery, trained": pngs(os.path.join("eval", "trained", "discover", "pictures"), 4),
            "discovery, reference": pngs(os.path.join("eval", "reference", "discover", "pictures"), 2),
            "discovery, random init": pngs(os.path.join("eval", "random", "discover", "pictures"), 2),
            "CLS attention masks, per head": attention_sheets(out, names),
            "metrics": ["metrics.png"]}


METHOD_NAMES = {"dino": "DINO", "dora": "DoRA"}


def describe(config: TrainConfig) -> str:
    """What was trained, in one line: the method, its budget, and KoLeo when it is on."""
    data = config.data
    batch = (f"{data.batch_size} clips of {data.clip_frames} frames" if config.method.name == "dora"
             else f"{data.batch_size} images")
    koleo = f", KoLeo {config.method.koleo:g}" if config.method.koleo else ""
    o = config.optim
    steps = f"{o.epochs * o.steps_per_epoch} steps" if o.steps_per_epoch else f"{o.epochs} epochs"
    return (f"{METHOD_NAMES[config.method.name]} ({config.model.arch}, {steps}, "
            f"batch {batch}{koleo})")


def series_names(configs: dict[str, TrainConfig]) -> dict[str, str]:
    """Column names: "trained (DoRA)", "reference (DINO + KoLeo)", "random init"."""
    def method(config: TrainConfig) -> str:
        return METHOD_NAMES[config.method.name] + (" + KoLeo" if config.method.koleo else "")

    return {**{name: f"{name} ({method(config)})" for name, config in configs.items()}, "random": "random init"}


def verdict(metrics: dict[str, dict[str, dict[str, float]]], series: str = "trained") -> str:
    """Which headline metrics ``series`` wins, ties and loses against random initialisation."""
    said: dict[str, list[str]] = {"above": [], "level with": [], "below": []}
    for task, metric, label in HEADLINE:
        gap = metrics[series][task][metric] - metrics["random"][task][metric]
        where = "above" if gap > 1e-6 else "below" if gap < -1e-6 else "level with"
        said[where].append(label if where == "level with" else f"{label} ({gap:+.1f})")
    return "; ".join(f"{where} random init on {', '.join(names)}" for where, names in said.items() if names)


def _training_lines(out: str, folder: str, config: TrainConfig, collapsed: list[str]) -> list[str]:
    """The run's last loss against ln K, its teacher and whether it collapsed."""
    row = _final_row(os.path.join(out, folder))
    ln_k = math.log(config.model.out_dim)
    koleo = row.get("koleo", 0.0)
    loss = row.get("loss", float("nan")) - koleo  # the distillation loss, the one ln K bounds
    return [f"- last logged loss {loss:.3f} against ln K = {ln_k:.3f} (the loss of a teacher that says nothing)"
            + (f"; the KoLeo term adds {koleo:+.3f}" if "koleo" in row else ""),
            f"- teacher entropy {row.get('teacher_entropy', float('nan')):.2f} ln K, prototypes in use "
            f"{row.get('dims_used', float('nan')) * config.model.out_dim:.0f} of {config.model.out_dim}",
            "- collapse: " + (", ".join(collapsed) if collapsed else "none detected")]


CAPTIONS = {  # what a person should look for in each picture of the report
    "contact sheet": "Frames sampled across the shards, one per segment: what the networks train on.",
    "training curves": "Each run's loss against ln K (dashed: the loss of a teacher that says nothing), the "
                       "learning rate, and the collapse monitors: the teacher's entropy (near 0 or near 1 x ln K "
                       "is collapse) and how many prototypes are in use. A loss well below ln K with the entropy "
                       "in between is learning.",
    "tracked masks and attention, first and last pictures": "DoRA's objects on two clips, at the first and the "
                       "last picture step: every frame with each object's mask tinted in its colour (one colour "
                       "an object), then each head's raw [CLS] attention on frame 0, the heads DoRA picked "
                       "outlined in their object's colour. Masks that stay on the same thing across frames are "
                       "what DoRA learns from.",
    "discovery, trained": "Object discovery on annotated images from the trained backbone. Left: the annotated "
                          "boxes (red), TokenCut's box (green) and LOST's (blue); a box counts for CorLoc when it "
                          "overlaps an annotated one by IoU >= 0.5. Then the mean [CLS] attention and each "
                          "method's patch map (dark blue low, yellow high; its chosen patches outlined).",
    "discovery, reference": "The same images from the reference run's backbone (colours as above).",
    "discovery, random init": "The same images from the same network at random initialisation: the floor.",
    "CLS attention masks, per head": "One row per backbone, one column per head of the last block. Each head's "
                                     "mask keeps the patches that hold 60 % of its [CLS] attention (the rest "
                                     "darkened). A head is labelled with the Jaccard index, in %, of each "
                                     "annotated object it covers best (J 38: 38 % overlap), and those objects "
                                     "are outlined in their colour; the first column shows the objects.",
    "metrics": "The headline scores of every backbone, in %; higher is better.",
}


def picture_caption(path: str) -> str:
    """The one line under a picture that tells it from its neighbours (its section says the rest)."""
    name = os.path.splitext(os.path.basename(path))[0]
    viz = re.fullmatch(r"step(\d+)-clip(\d+)", name)
    if viz:
        return f"Clip {int(viz.group(2))} at step {int(viz.group(1))}"
    if name == "loss":
        return {"run": "The trained run", "reference": "The reference run"}.get(os.path.dirname(path), "")
    if "/discover/pictures/" in path:
        return f"Image {name.split('_', 1)[1]}"
    return ""


def summary_paragraph(result: DemoResult) -> str:
    """What happened, whether it is expected, and what to run next, for someone new to the project."""
    config, reference = result.configs["trained"], result.configs.get("reference")
    knn = result.metrics["trained"]["knn"]["top1_k20"] - result.metrics["random"]["knn"]["top1_k20"]
    text = (f"This demo ingested the bundled clip `{os.path.basename(CLIP)}` (pedestrians on a campus road, 80 s) "
            f"into shards, pretrained {describe(config)} on them, and scored its frozen features against the same "
            f"network at random initialisation: the trained run is {verdict(result.metrics)}. ")
    if config.method.name == "dora" and knn <= 0:
        text += ("That is expected at this budget: DoRA finds its objects in the teacher's [CLS] attention, and a "
                 "teacher trained for minutes on one short clip still attends almost at random, so the masked "
                 "views it makes cut arbitrary regions (the official DoRA code, run from the same start, scores "
                 "the same in `benchmarks/learning.py`). ")
    if reference is not None:
        text += (f"The reference run, {describe(reference)}, is the tiny recipe that does learn here; it shows that "
                 f"the pipeline itself works at this budget: it is {verdict(result.metrics, 'reference')}. ")
    return text + ("Next: train DoRA as the paper does on your own footage (`wtpipe shards build`, then "
                   "`wtpipe train --config configs/dora_vits16_wt.yaml` on GPUs), or compare DINO, DoRA and random "
                   "initialisation over three seeds with `python benchmarks/learning.py`.")


def write_report(result: DemoResult) -> str:
    """``OUT/report.md``: what happened and what it means, the numbers against random
    initialisation, and the pictures, each with what to look for."""
    lines = ["# wtpipe demo", "", summary_paragraph(result), "", "## Training", ""]
    for name, run_config in result.configs.items():
        if name != "trained":
            lines += [f"{name.capitalize()}:", ""]
        lines += [*_training_lines(result.out, FOLDERS[name], run_config, result.train[name]["collapsed"]), ""]
    lines += ["## Frozen features against random initialisation", ""]
    lines += [f"{name.capitalize()}: {verdict(result.metrics, name)}." for name in result.configs]
    names = series_names(result.configs)
    lines += ["", "| metric | " + " | ".join(names[name] for name in result.metrics) + " |",
              "|---" * (len(result.metrics) + 1) + "|"]
    for task, metric, label in HEADLINE:
        lines.append(f"| {label} | " + " | ".join(f"{m[task][metric]:.1f}" for m in result.metrics.values()) + " |")
    lines.append("")
    for title, paths in result.pictures.items():
        if paths:
            lines += [f"## {title[0].upper()}{title[1:]}", "", CAPTIONS[title], ""]
            for path in paths:
                lines += [f"![{title}]({path})", *([f"*{picture_caption(path)}*"] if picture_caption(path) else []), ""]
    lines += ["## Where everything is", "", "- shards: `shards/` (verified manifest `shards/manifest.json`)",
              "- runs: " + " and ".join(f"`{FOLDERS[name]}/`" for name in result.configs)
              + " (config.yaml, scalars.csv, tensorboard/, checkpoints/, backbone.safetensors)",
              "- evaluations: `eval/{" + ",".join(result.metrics) + "}/{knn,discover,attention}/metrics.json`", ""]
    path = os.path.join(result.out, "report.md")
    write_bytes_atomic(path, "\n".join(lines).encode())
    return path


def reference_overrides(overrides: list[str]) -> list[str]:
    """The reference's own overrides, then the user's except ``method.`` keys: those tune the
    trained run, while the reference stays DINO + KoLeo; one budget and architecture hold for both."""
    return [*REFERENCE[1], *(o for o in overrides if not o.startswith("method."))]


def run_demo(out: str, recipe: str = RECIPE, overrides: list[str] | None = None, device: str = "cpu",
             reference: bool = True) -> DemoResult:
    """Every stage of the demo; stages already done are reused. Raises :class:`DemoStopped`.

    ``overrides`` apply to the reference run too (:func:`reference_overrides`)."""
    started = time.monotonic()
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    overrides = list(overrides or [])
    log.info("demo 1/4: ingesting %s", CLIP)
    shards = _shards(out)
    log.info("demo 2/4: pretraining (%s)%s", recipe, ", then the reference (DINO + KoLeo)" if reference else "")
    runs = {"trained": (recipe, overrides)}
    if reference:
        runs["reference"] = (REFERENCE[0], reference_overrides(overrides))
    configs, train = {}, {}
    for name, (run_recipe, run_overrides) in runs.items():
        configs[name], train[name] = _train(out, shards, run_recipe, run_overrides, FOLDERS[name])
    log.info("demo 3/4: evaluation data (real annotated images and clips, fetched once into %s)", testmedia.cache_dir())
    data = sample_data.build()
    objects = os.path.join(data, "objects", "instances.json")
    tasks = {"knn": os.path.join(data, "scenes"), "discover": objects, "attention": objects}
    log.info("demo 4/4: scoring the trained backbones and random initialisation")
    trained = configs["trained"]
    weights = {**{name: os.path.join(out, FOLDERS[name], rundir.BACKBONE) for name in configs},
               "random": f"random:{trained.model.arch}:{trained.run.seed}"}
    metrics = {name: score(w, tasks, os.path.join(out, "eval", name), device) for name, w in weights.items()}
    _metrics_png(metrics, series_names(configs), os.path.join(out, "metrics.png"))
    result = DemoResult(out, train, metrics, _pictures(out, series_names(configs)), time.monotonic() - started,
                        configs)
    write_report(result)
    return result
