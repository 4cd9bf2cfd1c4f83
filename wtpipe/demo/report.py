"""``OUT/report.md``: what happened, whether it is expected, the numbers, and every picture with what to look for."""

from __future__ import annotations

import math
import os
import re

from wtpipe.atomic import write_bytes_atomic
from wtpipe.demo.result import (
    CLIP,
    FOLDERS,
    HEADLINE,
    DemoResult,
    _final_row,
    describe,
    series_names,
    verdict,
)
from wtpipe.train.config import TrainConfig


def _training_lines(out: str, folder: str, config: TrainConfig, collapsed: list[str]) -> list[str]:
    """The run's last loss against ln K, its teacher (or its codes) and whether it collapsed."""
    row = _final_row(os.path.join(out, folder))
    ln_k = math.log(config.model.out_dim)
    koleo = row.get("koleo", 0.0)
    loss = row.get("loss", float("nan")) - koleo  # the distillation loss, the one ln K bounds
    return [
        f"- last logged loss {loss:.3f} against ln K = {ln_k:.3f} (the loss of a target that says nothing)"
        + (f"; the KoLeo term adds {koleo:+.3f}" if "koleo" in row else ""),
        f"- code entropy {row['code_entropy']:.2f} ln K, prototypes picked by the last batch's codes "
        f"{row['prototypes_used']:.0%} of those it could pick"
        if "code_entropy" in row
        else f"- teacher entropy {row.get('teacher_entropy', float('nan')):.2f} ln K, prototypes in use "
        f"{row.get('dims_used', float('nan')) * config.model.out_dim:.0f} of {config.model.out_dim}",
        "- collapse: " + (", ".join(collapsed) if collapsed else "none detected"),
    ]


CAPTIONS = {  # what a person should look for in each picture of the report
    "contact sheet": "Frames sampled across the shards, one per segment: what the networks train on.",
    "training curves": "Each run's loss against ln K (dashed: the loss of a target that says nothing), the "
    "learning rate, and the collapse monitors: the entropy of the teacher's output (SwAV: of its "
    "codes; near 0 or near 1 x ln K is collapse) and how many prototypes are in use. A loss well "
    "below ln K with the entropy in between is learning.",
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
        return {"run": "The trained run", "reference": "The reference run"}.get(
            os.path.dirname(path), ""
        )
    if "/discover/pictures/" in path:
        return f"Image {name.split('_', 1)[1]}"
    return ""


def summary_paragraph(result: DemoResult) -> str:
    """What happened, whether it is expected, and what to run next, for someone new to the project."""
    config, reference = result.configs["trained"], result.configs.get("reference")
    knn = result.metrics["trained"]["knn"]["top1_k20"] - result.metrics["random"]["knn"]["top1_k20"]
    text = (
        f"This demo ingested the bundled clip `{os.path.basename(CLIP)}` (pedestrians on a campus road, 80 s) "
        f"into shards, pretrained {describe(config)} on them, and scored its frozen features against the same "
        f"network at random initialisation: the trained run is {verdict(result.metrics)}. "
    )
    if config.method.name == "dora" and knn <= 0:
        text += (
            "That is expected at this budget: DoRA finds its objects in the teacher's [CLS] attention, and a "
            "teacher trained for minutes on one short clip still attends almost at random, so the masked "
            "views it makes cut arbitrary regions (the official DoRA code, run from the same start, scores "
            "the same in `benchmarks/learning.py`). "
        )
    if reference is not None:
        text += (
            f"The reference run, {describe(reference)}, is the tiny recipe that does learn here; it shows that "
            f"the pipeline itself works at this budget: it is {verdict(result.metrics, 'reference')}. "
        )
    return text + (
        "Next: train DoRA as the paper does on your own footage (`wtpipe shards build`, then "
        "`wtpipe train --config configs/dora_vits16_wt.yaml` on GPUs), or compare DINO, DoRA and random "
        "initialisation over three seeds with `python benchmarks/learning.py`."
    )


def write_report(result: DemoResult) -> str:
    """``OUT/report.md``: what happened and what it means, the numbers against random
    initialisation, and the pictures, each with what to look for."""
    lines = ["# wtpipe demo", "", summary_paragraph(result), "", "## Training", ""]
    for name, run_config in result.configs.items():
        if name != "trained":
            lines += [f"{name.capitalize()}:", ""]
        lines += [
            *_training_lines(
                result.out, FOLDERS[name], run_config, result.train[name]["collapsed"]
            ),
            "",
        ]
    lines += ["## Frozen features against random initialisation", ""]
    lines += [f"{name.capitalize()}: {verdict(result.metrics, name)}." for name in result.configs]
    names = series_names(result.configs)
    lines += [
        "",
        "| metric | " + " | ".join(names[name] for name in result.metrics) + " |",
        "|---" * (len(result.metrics) + 1) + "|",
    ]
    for task, metric, label in HEADLINE:
        lines.append(
            f"| {label} | "
            + " | ".join(f"{m[task][metric]:.1f}" for m in result.metrics.values())
            + " |"
        )
    lines.append("")
    for title, paths in result.pictures.items():
        if paths:
            lines += [f"## {title[0].upper()}{title[1:]}", "", CAPTIONS[title], ""]
            for path in paths:
                lines += [
                    f"![{title}]({path})",
                    *([f"*{picture_caption(path)}*"] if picture_caption(path) else []),
                    "",
                ]
    lines += [
        "## Where everything is",
        "",
        "- shards: `shards/` (verified manifest `shards/manifest.json`)",
        "- runs: "
        + " and ".join(f"`{FOLDERS[name]}/`" for name in result.configs)
        + " (config.yaml, scalars.csv, tensorboard/, checkpoints/, backbone.safetensors)",
        "- evaluations: `eval/{"
        + ",".join(result.metrics)
        + "}/{knn,discover,attention}/metrics.json`",
        "",
    ]
    path = os.path.join(result.out, "report.md")
    write_bytes_atomic(path, "\n".join(lines).encode())
    return path
