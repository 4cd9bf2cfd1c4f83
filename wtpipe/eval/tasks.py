"""The evaluation tasks: typed settings, the run over a data directory, ``metrics.json`` and pictures.

Each task takes a frozen :class:`~wtpipe.models.vit.ViTBackbone` (from ``backbone.safetensors``
or random weights) and writes ``OUT/metrics.json`` (the numbers, the weights and data they came
from, the settings, the files that were skipped) plus PNGs under ``OUT``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from wtpipe.atomic import write_json_atomic
from wtpipe.eval import attention as attention_lib
from wtpipe.eval import datasets, discovery, features
from wtpipe.eval import davis as davis_lib
from wtpipe.eval.davis_metrics import evaluate_sequence
from wtpipe.eval.knn import knn_eval, knn_votes
from wtpipe.eval.linear import ProbeConfig, probe_eval
from wtpipe.eval.pictures import (
    attention_png,
    confusion_png,
    discovery_png,
    sequence_strip,
)
from wtpipe.eval.settings import (
    AttentionConfig,
    DavisConfig,
    DiscoverConfig,
    Kind,
    KnnConfig,
    LinearConfig,
)
from wtpipe.models.vit import ViTBackbone
from wtpipe.models.weights import WeightsInfo

log = logging.getLogger(__name__)


@dataclass
class Result:
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _labelled_features(
    backbone: ViTBackbone,
    info: WeightsInfo,
    root: str,
    kind: Kind,
    size: int,
    batch: int,
    cache: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[str], list[str]]:
    train, val = datasets.train_val(root)
    out, skipped = [], []
    for split, name in ((train, "train"), (val, "val")):
        feats, kept = features.extract(
            backbone, info, split.paths, kind, cache or None, size, batch, desc=name
        )
        read = set(kept.tolist())
        skipped += [p for i, p in enumerate(split.paths) if i not in read]
        out += [feats, torch.tensor(split.labels)[torch.from_numpy(kept)]]
    return *out, train.classes, skipped


def run_knn(
    backbone: ViTBackbone, info: WeightsInfo, data: str, out: str, config: KnnConfig
) -> Result:
    train, train_y, val, val_y, classes, skipped = _labelled_features(
        backbone, info, data, "cls", config.image_size, config.batch_size, config.cache_dir
    )
    metrics = knn_eval(train, train_y, val, val_y, len(classes), config.ks, config.temperature)
    k = min(20, len(train)) if 20 in config.ks else min(config.ks[0], len(train))
    predicted = knn_votes(train, train_y, val, k, len(classes), config.temperature).argmax(1)
    confusion_png(
        val_y, predicted, classes, os.path.join(out, "confusion.png"), f"k-NN (k={k}) on val"
    )
    return Result(
        metrics, {"classes": classes, "train_images": len(train), "val_images": len(val)}, skipped
    )


def run_linear(
    backbone: ViTBackbone, info: WeightsInfo, data: str, out: str, config: LinearConfig
) -> Result:
    train, train_y, val, val_y, classes, skipped = _labelled_features(
        backbone,
        info,
        data,
        config.features,
        config.image_size,
        config.batch_size,
        config.cache_dir,
    )
    probe = ProbeConfig(config.epochs, config.batch_size, config.lr, config.seed)
    metrics, logits = probe_eval(train, train_y, val, val_y, len(classes), probe)
    confusion_png(
        val_y, logits.argmax(1), classes, os.path.join(out, "confusion.png"), "linear probe on val"
    )
    return Result(
        metrics,
        {
            "classes": classes,
            "feature_dim": train.shape[1],
            "train_images": len(train),
            "val_images": len(val),
        },
        skipped,
    )


def _normalised(rgb: np.ndarray) -> torch.Tensor:
    image = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div(255)
    return (image - torch.tensor(features.MEAN)[:, None, None]) / torch.tensor(features.STD)[
        :, None, None
    ]


@torch.no_grad()
def last_block_keys(
    backbone: ViTBackbone, rgb: np.ndarray
) -> tuple[np.ndarray, tuple[int, int], np.ndarray]:
    """Keys (P, heads * d) of the image at full size, zero-padded (after normalisation) to a multiple
    of the patch size as LOST/TokenCut do; the patch grid; the [CLS] attention (heads, h, w)."""
    image = _normalised(rgb)
    patch = backbone.patch_size
    grid = (-(-image.shape[1] // patch), -(-image.shape[2] // patch))
    image = F.pad(image, (0, grid[1] * patch - image.shape[2], 0, grid[0] * patch - image.shape[1]))
    _, _, last = backbone.forward_with_attention(image[None].to(next(backbone.parameters()).device))
    keys = last.k[0].transpose(0, 1).flatten(1)  # (P, heads * d), heads concatenated per token
    return (
        keys.double().cpu().numpy(),
        grid,
        last.cls_attn[0].reshape(-1, *grid).float().cpu().numpy(),
    )


def run_discover(
    backbone: ViTBackbone, info: WeightsInfo, data: str, out: str, config: DiscoverConfig
) -> Result:
    items = datasets.box_images(data, config.image_root or None)
    if config.max_images:
        items = items[: config.max_images]
    hits = {m: [] for m in config.methods}
    per_image, skipped = [], []
    for index, item in enumerate(tqdm(items, desc="discover", unit="img")):
        rgb = datasets.read_rgb(item.path)
        if rgb is None:
            skipped.append(item.path)
            continue
        keys, grid, attention = last_block_keys(backbone, rgb)
        found, row = {}, {"image": os.path.relpath(item.path, os.path.dirname(data.rstrip("/")))}
        for method in config.methods:
            result = (
                discovery.tokencut(keys, grid, config.tau, config.eps)
                if method == "tokencut"
                else discovery.lost(keys, grid, config.k_patches)
            )
            box = discovery.to_pixels(result.box, backbone.patch_size, rgb.shape[:2])
            hit = discovery.corloc_hit(box, item.boxes)
            hits[method].append(hit)
            found[method] = (result, box)
            row[method] = {
                "box": [round(v, 1) for v in box],
                "hit": hit,
                "best_iou": round(float(discovery.box_iou(np.array(box), item.boxes).max()), 4),
            }
        per_image.append(row)
        if index < config.pictures:
            discovery_png(
                rgb,
                item.boxes,
                found,
                attention,
                backbone.patch_size,
                os.path.join(
                    out,
                    "pictures",
                    f"{index:04d}_{os.path.splitext(os.path.basename(item.path))[0]}.png",
                ),
            )
    metrics = {f"corloc_{m}": 100.0 * float(np.mean(v)) if v else 0.0 for m, v in hits.items()}
    return Result(metrics, {"images": len(per_image), "per_image": per_image}, skipped)


@torch.no_grad()
def cls_attention(backbone: ViTBackbone, rgb: np.ndarray) -> np.ndarray:
    """The last block's [CLS] attention (heads, h, w) over the image cropped to a multiple of the
    patch size, as DINO's ``visualize_attention.py`` crops it."""
    patch = backbone.patch_size
    grid = (rgb.shape[0] // patch, rgb.shape[1] // patch)
    image = _normalised(rgb[: grid[0] * patch, : grid[1] * patch])
    _, _, last = backbone.forward_with_attention(image[None].to(next(backbone.parameters()).device))
    return last.cls_attn[0].reshape(-1, *grid).float().cpu().numpy()


def run_attention(
    backbone: ViTBackbone, info: WeightsInfo, data: str, out: str, config: AttentionConfig
) -> Result:
    items = datasets.coco_masks(data, config.image_root or None)
    if config.max_images:
        items = items[: config.max_images]
    patch, scores, per_image, skipped = backbone.patch_size, [], [], []
    for index, item in enumerate(tqdm(items, desc="attention", unit="img")):
        rgb = datasets.read_rgb(item.path)
        if rgb is None:
            skipped.append(item.path)
            continue
        if rgb.shape[:2] != item.size:
            log.error(
                "%s: image is %dx%d but its annotations say %dx%d, skipped",
                item.path,
                rgb.shape[1],
                rgb.shape[0],
                item.size[1],
                item.size[0],
            )
            skipped.append(item.path)
            continue
        attention = cls_attention(backbone, rgb)
        heads = attention_lib.mass_masks(
            attention.reshape(len(attention), -1), config.keep
        ).reshape(attention.shape)
        pixels = heads.repeat(patch, axis=1).repeat(
            patch, axis=2
        )  # nearest upsampling, as DINO's script
        objects, names = item.objects()
        objects = objects[:, : pixels.shape[1], : pixels.shape[2]]
        best, head = attention_lib.best_head_jaccard(pixels, objects)
        scores.append(float(best.mean()))
        per_image.append(
            {
                "image": os.path.relpath(item.path, os.path.dirname(os.path.abspath(data))),
                "objects": {
                    n: {"jaccard": round(float(j), 4), "head": int(h)}
                    for n, j, h in zip(names, best, head)
                },
            }
        )
        if index < config.pictures:
            name = os.path.splitext(os.path.basename(item.path))[0]
            attention_png(
                rgb[: pixels.shape[1], : pixels.shape[2]],
                objects,
                pixels,
                best,
                head,
                os.path.join(out, "pictures", f"{index:04d}_{name}.png"),
                names,
                config.keep,
            )
    if items and not scores:
        raise datasets.LayoutError(
            f"{data}: none of its {len(items)} images could be scored (first: {skipped[0]})"
        )
    metrics = {"jaccard": 100.0 * float(np.mean(scores)) if scores else 0.0}
    return Result(metrics, {"images": len(per_image), "per_image": per_image}, skipped)


def run_davis(
    backbone: ViTBackbone, info: WeightsInfo, data: str, out: str, config: DavisConfig
) -> Result:
    sequences = datasets.davis_sequences(data, config.subset)
    settings = davis_lib.PropagationConfig(
        config.n_last_frames,
        config.size_mask_neighborhood,
        config.topk,
        config.temperature,
        config.short_side,
    )
    per_object, per_sequence, skipped = {}, {}, []
    for seq in tqdm(sequences, desc="davis", unit="seq"):
        frames = [datasets.read_rgb(p) for p in seq.frames]
        if any(f is None for f in frames):
            skipped.append(seq.name)
            continue
        first = datasets.read_labels(seq.annotations[0])
        folder = os.path.join(out, "davis", seq.name)
        os.makedirs(folder, exist_ok=True)
        datasets.write_labels(os.path.join(folder, os.path.basename(seq.annotations[0])), first)
        predicted = [first]
        propagated = davis_lib.segment_video(backbone, iter(frames), first, settings)
        for path, labels in zip(
            seq.frames[1:], tqdm(propagated, total=len(frames) - 1, desc=seq.name, leave=False)
        ):
            datasets.write_labels(
                os.path.join(folder, os.path.basename(path)[:-4] + ".png"), labels
            )
            predicted.append(labels)
        truth = np.stack([datasets.read_labels(p) for p in seq.annotations])
        scores = evaluate_sequence(truth, np.stack(predicted[: len(truth)]))
        for obj, values in scores.items():
            per_object[f"{seq.name}_{obj}"] = values
        per_sequence[seq.name] = {
            k: float(np.mean([v[k] for v in scores.values()])) for k in ("J", "F", "J&F")
        }
        sequence_strip(frames, truth, predicted, os.path.join(out, f"strip_{seq.name}.png"))
    j = float(np.mean([v["J"] for v in per_object.values()])) if per_object else 0.0
    f = float(np.mean([v["F"] for v in per_object.values()])) if per_object else 0.0
    metrics = {"J&F": 100 * (j + f) / 2, "J": 100 * j, "F": 100 * f}
    return Result(metrics, {"per_sequence": per_sequence, "per_object": per_object}, skipped)


RUNNERS: dict[str, Callable[..., Result]] = {
    "knn": run_knn,
    "linear": run_linear,
    "discover": run_discover,
    "attention": run_attention,
    "davis": run_davis,
}


def _first_missing(path: str) -> str | None:
    """The outermost folder of ``path`` that does not exist yet (what creating it would add)."""
    path, missing = os.path.abspath(path), None
    while not os.path.exists(path):
        missing, path = path, os.path.dirname(path)
    return missing


def run_task(
    task: str, backbone: ViTBackbone, info: WeightsInfo, data: str, out: str, config: Any
) -> dict[str, Any]:
    """Run one task and write ``OUT/metrics.json``; return what was written. A task that fails
    removes the ``out`` folder it created (no pictures without their metrics)."""
    created = _first_missing(out)
    os.makedirs(out, exist_ok=True)
    start = time.monotonic()
    try:
        result = RUNNERS[task](backbone, info, data, out, config)
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    report = {
        "task": task,
        "metrics": result.metrics,
        "weights": asdict(info),
        "data": os.path.abspath(data),
        "settings": asdict(config),
        "skipped": result.skipped,
        "seconds": round(time.monotonic() - start, 1),
        **result.details,
    }
    write_json_atomic(
        os.path.join(out, "metrics.json"), json.dumps(report, indent=1, default=str) + "\n"
    )
    return report


def during_training(
    backbone: ViTBackbone, info: WeightsInfo, tasks: tuple[str, ...], data: dict[str, str], out: str
) -> dict[str, float]:
    """The cheap tasks on a live backbone (no feature cache: the weights change every step); the
    scalars to log next to the loss: ``eval_knn_top1_k20``, ``eval_corloc_*``, ``eval_attention_jaccard``."""
    was_training = backbone.training
    backbone.eval()
    scalars = {}
    configs = {
        "knn": KnnConfig(ks=(20,), cache_dir=""),
        "discover": DiscoverConfig(pictures=4),
        "attention": AttentionConfig(pictures=4),
    }
    try:
        for task in tasks:
            metrics = run_task(
                task, backbone, info, data[task], os.path.join(out, task), configs[task]
            )["metrics"]
            if task == "knn":
                metrics = {"top1_k20": metrics["top1_k20"]}
            prefix = (
                "eval_" if task == "discover" else f"eval_{task}_"
            )  # CorLoc names its task already
            scalars.update({prefix + k: v for k, v in metrics.items()})
    finally:
        backbone.train(was_training)
    return scalars
