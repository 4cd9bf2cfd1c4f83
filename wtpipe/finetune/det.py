"""Detection and instance segmentation fine-tuning (``wtpipe eval det``) on a COCO-layout folder.

Training images are flipped at random (per-sample generator) and resized by torchvision's
transform to a short side drawn from ``data.min_sizes`` per batch; box and mask AP come from
pycocotools' own COCOeval on the validation split, never from a hand-written AP.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from wtpipe.atomic import write_json_atomic
from wtpipe.eval.datasets import LayoutError, read_rgb
from wtpipe.finetune.config import DetConfig
from wtpipe.finetune.det_model import mask_rcnn, new_modules
from wtpipe.models.vit import ViTBackbone
from wtpipe.viz.pictures import save_png

log = logging.getLogger(__name__)
STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


@dataclass
class CocoSplit:
    images: list[dict[str, Any]]
    annotations: dict[int, list[dict[str, Any]]]  # image id -> its annotations
    categories: list[int]  # COCO category ids; label i + 1 is categories[i]
    json_path: str
    folder: str


def coco_split(root: str, split: str) -> CocoSplit:
    path = os.path.join(root, "annotations", f"instances_{split}.json")
    folder = os.path.join(root, split)
    if not os.path.isdir(folder) or not os.path.exists(path):
        raise LayoutError(
            f"{root}: expected {split}/ and annotations/instances_{split}.json (COCO layout)"
        )
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        images, categories = data["images"], sorted(c["id"] for c in data["categories"])
    except (OSError, ValueError, KeyError) as err:
        raise LayoutError(f"{path}: not a COCO instances json ({err})") from None
    annotations: dict[int, list[dict[str, Any]]] = {}
    for ann in data.get("annotations", []):
        if not ann.get("iscrowd", 0):
            annotations.setdefault(ann["image_id"], []).append(ann)
    return CocoSplit(images, annotations, categories, path, folder)


def decode_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Polygons, RLE or compressed RLE -> (H, W) uint8."""
    if isinstance(segmentation, list):
        rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = coco_mask.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
    return coco_mask.decode(rle)


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(3, H, W) in [0, 1]: torchvision's transform normalises and resizes."""
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div(255)


class DetTrainSet(Dataset):
    """Items ``(index, seed)`` -> (image, target); unreadable images and images without objects
    are passed over (the next one is used), each named once."""

    def __init__(self, split: CocoSplit) -> None:
        self.split = split
        self.label = {cat: i + 1 for i, cat in enumerate(split.categories)}
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.split.images)

    def _load(
        self, i: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
        info = self.split.images[i]
        anns = [
            a
            for a in self.split.annotations.get(info["id"], [])
            if a["bbox"][2] > 1 and a["bbox"][3] > 1
        ]
        rgb = read_rgb(os.path.join(self.split.folder, info["file_name"]))
        if rgb is None or not anns:
            return None
        height, width = rgb.shape[:2]
        boxes = torch.tensor(
            [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], dtype=torch.float32
        )
        masks = torch.from_numpy(
            np.stack([decode_mask(a["segmentation"], height, width) for a in anns])
        )
        image = image_tensor(rgb)
        if rng.random() < 0.5:
            image, masks = image.flip(-1), masks.flip(-1)
            boxes = torch.stack(
                [width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1
            )
        labels = torch.tensor([self.label[a["category_id"]] for a in anns], dtype=torch.int64)
        return image, {"boxes": boxes, "labels": labels, "masks": masks}

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        index, seed = item
        for offset in range(len(self)):
            i = (index + offset) % len(self)
            found = self._load(i, np.random.default_rng(seed))
            if found is not None:
                return found
            if i not in self.bad:
                self.bad.add(i)
                log.warning(
                    "%s: unreadable or without objects; passed over",
                    os.path.join(self.split.folder, self.split.images[i]["file_name"]),
                )
        raise RuntimeError("no usable training image")


def coco_scores(json_path: str, detections: list[dict[str, Any]], kind: str) -> dict[str, float]:
    """COCOeval's AP/AP50/AP75/APs/APm/APl (percent) for ``kind`` "bbox" or "segm"; no detections: 0."""
    if not detections:
        return {f"{kind}_{name}": 0.0 for name in STATS}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        truth = COCO(json_path)
        evaluator = COCOeval(truth, truth.loadRes(detections), kind)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {
        f"{kind}_{name}": 100 * max(float(v), 0.0) for name, v in zip(STATS, evaluator.stats[:6])
    }


def detections_for(
    image_id: int, output: dict[str, torch.Tensor], categories: list[int]
) -> list[dict[str, Any]]:
    """torchvision's output for one image as COCO results (xywh boxes, RLE masks thresholded at 0.5)."""
    found = []
    for box, score, label, mask in zip(
        output["boxes"].tolist(),
        output["scores"].tolist(),
        output["labels"].tolist(),
        output["masks"],
    ):
        x1, y1, x2, y2 = box
        found.append(
            {
                "image_id": image_id,
                "category_id": categories[label - 1],
                "score": round(score, 5),
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "segmentation": encode_mask((mask[0] > 0.5).cpu().numpy()),
            }
        )
    return found


def detection_png(
    rgb: np.ndarray,
    truth: list[list[float]],
    output: dict[str, torch.Tensor],
    path: str,
    threshold: float = 0.5,
) -> str:
    """Truth boxes in red; predictions above ``threshold`` in green with their masks tinted."""
    picture = rgb.astype(np.float32)
    keep = output["scores"] >= threshold
    for mask in output["masks"][keep]:
        tint = (mask[0] > 0.5).cpu().numpy()[..., None]
        picture = np.where(tint, 0.5 * picture + 0.5 * np.array([60, 200, 75]), picture)
    image = Image.fromarray(picture.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for x, y, w, h in truth:
        draw.rectangle([x, y, x + w, y + h], outline=(230, 25, 75), width=2)
    for box, score in zip(output["boxes"][keep].tolist(), output["scores"][keep].tolist()):
        draw.rectangle(box, outline=(60, 200, 75), width=2)
        draw.text((box[0] + 2, box[1] + 1), f"{score:.2f}", fill=(60, 200, 75))
    return save_png(image, path)


class DetTask:
    primary = "bbox_AP"
    columns = ["bbox_AP", "bbox_AP50", "segm_AP", "segm_AP50"]

    def __init__(self, config: DetConfig) -> None:
        self.config = config
        self.train = coco_split(config.data.root, config.data.train_split)
        self.val = coco_split(config.data.root, config.data.val_split)
        if self.train.categories != self.val.categories:
            raise LayoutError(
                f"{config.data.root}: train and val annotations list different categories"
            )

    def build(self, backbone: ViTBackbone) -> tuple[nn.Module, nn.Module]:
        d, m = self.config.data, self.config.model
        model = mask_rcnn(
            backbone,
            len(self.train.categories),
            d.min_sizes,
            d.max_size,
            m.rpn_proposals,
            m.roi_samples,
        )
        return model, new_modules(model)

    def dataset(self) -> Dataset:
        return DetTrainSet(self.train)

    def collate(self, items: list[Any]) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
        return [image for image, _ in items], [target for _, target in items]

    def loss(
        self, model: nn.Module, batch: tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]
    ) -> torch.Tensor:
        images, targets = batch
        return sum(model(images, targets).values())

    @torch.no_grad()
    def validate(self, model: nn.Module, out: str, device: torch.device) -> dict[str, float]:
        transform = model.transform
        train_sizes = transform.min_size
        transform.min_size = (self.config.data.test_size,)
        detections, skipped, pictures = [], [], self.config.run.pictures
        drawn = (
            set(
                np.linspace(0, len(self.val.images) - 1, min(pictures, len(self.val.images)))
                .round()
                .astype(int)
                .tolist()
            )
            if pictures
            else set()
        )
        try:
            for index, info in enumerate(
                tqdm(self.val.images, desc="val", unit="img", leave=False)
            ):
                path = os.path.join(self.val.folder, info["file_name"])
                rgb = read_rgb(path)
                if rgb is None:
                    skipped.append(path)
                    continue
                output = {k: v.cpu() for k, v in model([image_tensor(rgb).to(device)])[0].items()}
                detections += detections_for(info["id"], output, self.val.categories)
                if index in drawn:
                    truth = [a["bbox"] for a in self.val.annotations.get(info["id"], [])]
                    detection_png(
                        rgb,
                        truth,
                        output,
                        os.path.join(
                            out, "pictures", f"{os.path.splitext(info['file_name'])[0]}.png"
                        ),
                    )
        finally:
            transform.min_size = train_sizes
        metrics = {
            **coco_scores(self.val.json_path, detections, "bbox"),
            **coco_scores(self.val.json_path, detections, "segm"),
        }
        os.makedirs(out, exist_ok=True)
        write_json_atomic(os.path.join(out, "detections.json"), json.dumps(detections) + "\n")
        write_json_atomic(
            os.path.join(out, "metrics.json"),
            json.dumps(
                {
                    **metrics,
                    "images": len(self.val.images) - len(skipped),
                    "detections": len(detections),
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
        return {k: metrics[k] for k in self.columns}
