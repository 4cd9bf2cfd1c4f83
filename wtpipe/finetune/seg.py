"""Semantic segmentation fine-tuning (``wtpipe eval seg``): the task the shared loop runs."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from wtpipe.atomic import write_json_atomic
from wtpipe.data.loader import stack_shared
from wtpipe.finetune.config import SegConfig
from wtpipe.finetune.seg_data import (
    SegPipeline,
    load_pair,
    pairs,
    reduce_labels,
    slide_logits,
    train_sample,
    val_sample,
)
from wtpipe.finetune.seg_heads import SegModel
from wtpipe.finetune.seg_metrics import IGNORE, confusion, scores
from wtpipe.models.vit import ViTBackbone
from wtpipe.viz.pictures import save_png

log = logging.getLogger(__name__)


def palette(count: int) -> np.ndarray:
    """Distinct colours per class (a fixed golden-ratio walk through hue); ignored pixels black."""
    import colorsys

    colours = [colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.85, 0.95) for i in range(count)]
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:count] = (np.array(colours) * 255).astype(np.uint8)
    return table


def overlay_png(
    rgb: np.ndarray, truth: np.ndarray, predicted: np.ndarray, classes: int, path: str
) -> str:
    """Image | truth over image | prediction over image."""
    colours = palette(classes)

    def blend(labels: np.ndarray) -> np.ndarray:
        tinted = (0.45 * rgb + 0.55 * colours[labels]).astype(np.uint8)
        return np.where((labels == IGNORE)[..., None], rgb // 3, tinted)

    sheet = Image.fromarray(np.concatenate([rgb, blend(truth), blend(predicted)], axis=1))
    draw = ImageDraw.Draw(sheet)
    for i, title in enumerate(("image", "truth", "prediction")):
        draw.text((i * rgb.shape[1] + 4, 3), title, fill="white")
    return save_png(sheet, path)


class SegTrainSet(Dataset):
    """Items ``(index, seed)`` -> an augmented crop; an unreadable pair is named once and replaced by the next."""

    def __init__(self, items: list[tuple[str, str]], pipe: SegPipeline) -> None:
        self.items, self.pipe = items, pipe
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = item
        for offset in range(len(self.items)):
            i = (index + offset) % len(self.items)
            pair = load_pair(*self.items[i])
            if pair is not None:
                return train_sample(*pair, self.pipe, np.random.default_rng(seed))
            if i not in self.bad:
                self.bad.add(i)
                log.warning(
                    "%s: unreadable, or its annotation is (or their sizes differ); skipped",
                    self.items[i][0],
                )
        raise RuntimeError("no readable training image")


class SegTask:
    primary = "mIoU"
    columns = ["mIoU", "mAcc", "aAcc"]

    def __init__(self, config: SegConfig) -> None:
        self.config = config
        d = config.data
        self.pipe = SegPipeline(
            d.crop, d.base_scale, d.ratio_range, reduce_zero_label=d.reduce_zero_label
        )
        self.train_items, self.val_items = pairs(d.root, "train"), pairs(d.root, "val")

    def build(self, backbone: ViTBackbone) -> tuple[nn.Module, nn.Module]:
        model = SegModel(
            backbone,
            self.config.data.num_classes,
            self.config.model.head,
            self.config.model.channels,
        )
        return model, model.new_modules()

    def dataset(self) -> Dataset:
        return SegTrainSet(self.train_items, self.pipe)

    def collate(
        self, items: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return stack_shared([x for x, _ in items]), stack_shared([y for _, y in items])

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        images, labels = batch
        return F.cross_entropy(model(images).float(), labels, ignore_index=IGNORE)

    @torch.no_grad()
    def validate(self, model: nn.Module, out: str, device: torch.device) -> dict[str, float]:
        d, classes = self.config.data, self.config.data.num_classes
        matrix = torch.zeros(classes, classes, dtype=torch.long)
        skipped = []
        drawn = (
            set(
                np.linspace(
                    0, len(self.val_items) - 1, min(self.config.run.pictures, len(self.val_items))
                )
                .round()
                .astype(int)
                .tolist()
            )
            if self.config.run.pictures
            else set()
        )
        for index, (image_path, label_path) in enumerate(
            tqdm(self.val_items, desc="val", unit="img", leave=False)
        ):
            pair = load_pair(image_path, label_path)
            if pair is None:
                skipped.append(image_path)
                continue
            image, labels = val_sample(*pair, self.pipe)
            logits = slide_logits(model, image.to(device), classes, d.crop, d.slide_stride)
            predicted = (
                F.interpolate(
                    logits[None].float(), size=labels.shape, mode="bilinear", align_corners=False
                )[0]
                .argmax(0)
                .cpu()
            )
            matrix += confusion(predicted, labels, classes)
            if index in drawn:
                overlay_png(
                    pair[0],
                    labels.numpy(),
                    predicted.numpy(),
                    classes,
                    os.path.join(
                        out, "pictures", f"{os.path.splitext(os.path.basename(image_path))[0]}.png"
                    ),
                )
        result = scores(matrix)
        write_json_atomic(
            os.path.join(out, "metrics.json"),
            json.dumps(
                {
                    **result,
                    "confusion": matrix.tolist(),
                    "images": len(self.val_items) - len(skipped),
                    "skipped": skipped,
                },
                indent=1,
            )
            + "\n",
        )
        if skipped:
            log.warning(
                "validation skipped %d unreadable image(s), listed in %s/metrics.json",
                len(skipped),
                out,
            )
        return {k: result[k] for k in self.columns}


def majority_baseline(config: SegConfig) -> dict[str, float]:
    """The scores of predicting the most frequent training class everywhere (the trivial predictor)."""
    classes = config.data.num_classes

    def labels(split: str) -> list[torch.Tensor]:
        found = [load_pair(*item) for item in pairs(config.data.root, split)]
        return [
            torch.from_numpy(reduce_labels(p[1], config.data.reduce_zero_label).astype(np.int64))
            for p in found
            if p is not None
        ]

    counts = torch.zeros(classes, dtype=torch.long)
    for truth in labels("train"):
        counts += torch.bincount(truth[truth != IGNORE], minlength=classes)[:classes]
    majority = int(counts.argmax())
    matrix = torch.zeros(classes, classes, dtype=torch.long)
    for truth in labels("val"):
        matrix += confusion(torch.full_like(truth, majority), truth, classes)
    result = scores(matrix)
    return {k: result[k] for k in SegTask.columns}
