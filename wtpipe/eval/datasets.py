"""Readers for the evaluation layouts: ImageFolder, PASCAL VOC boxes, COCO boxes and masks, DAVIS-2017.

A file that cannot be read is named in one line and skipped (and counted); the task goes on.
"""

from __future__ import annotations

import json
import logging
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from wtpipe.atomic import replacing

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class LayoutError(ValueError):
    """A data directory that does not have the layout a task expects."""


def read_rgb(path: str) -> np.ndarray | None:
    """(H, W, 3) uint8, or None after logging one line naming the file and the problem."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as err:
        log.error("%s: unreadable image, skipped (%s)", path, str(err).splitlines()[0])
        return None


@dataclass
class LabelledImages:
    paths: list[str]
    labels: list[int]
    classes: list[str]


def image_folder(root: str) -> LabelledImages:
    """``root/CLASS/*.jpg``: classes sorted by name, images sorted within each."""
    if not os.path.isdir(root):
        raise LayoutError(f"{root}: no such directory (expected CLASS/ folders of images)")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    paths, labels = [], []
    for index, name in enumerate(classes):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(os.path.join(folder, file))
                labels.append(index)
    if not paths:
        raise LayoutError(f"{root}: no images in class folders")
    return LabelledImages(paths, labels, classes)


def train_val(root: str) -> tuple[LabelledImages, LabelledImages]:
    """``root/train`` and ``root/val`` ImageFolders with the same classes."""
    train, val = image_folder(os.path.join(root, "train")), image_folder(os.path.join(root, "val"))
    if train.classes != val.classes:
        raise LayoutError(f"{root}: train/ and val/ have different class folders")
    return train, val


@dataclass
class BoxedImage:
    path: str
    boxes: np.ndarray  # (n, 4) x1, y1, x2, y2 in pixels, continuous coordinates
    names: list[str] = field(default_factory=list)


def voc_boxes(root: str) -> list[BoxedImage]:
    """``root/Annotations/*.xml`` + ``root/JPEGImages``; VOC's 1-based inclusive corners become
    continuous coordinates as LOST reads them (x1 - 1, y1 - 1, x2, y2)."""
    folder = os.path.join(root, "Annotations")
    if not os.path.isdir(folder):
        raise LayoutError(
            f"{root}: no Annotations/ folder (VOC layout: JPEGImages/ + Annotations/*.xml)"
        )
    items = []
    for file in sorted(f for f in os.listdir(folder) if f.endswith(".xml")):
        path = os.path.join(folder, file)
        try:
            tree = ET.parse(path).getroot()
            boxes, names = [], []
            for obj in tree.iter("object"):
                bb = obj.find("bndbox")
                x1, y1, x2, y2 = (float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
                boxes.append((x1 - 1, y1 - 1, x2, y2))
                names.append(obj.findtext("name", ""))
            image = os.path.join(root, "JPEGImages", tree.findtext("filename"))
        except (ET.ParseError, AttributeError, TypeError, ValueError) as err:
            log.error("%s: unreadable VOC annotation, skipped (%s)", path, err)
            continue
        if boxes:
            items.append(BoxedImage(image, np.array(boxes, dtype=np.float64), names))
    return items


def coco_image_root(path: str) -> str:
    """Where a COCO json's ``file_name`` points: ``annotations/instances_SPLIT.json`` -> ``SPLIT/``
    beside ``annotations/`` (the COCO 2017 layout) when that folder exists, else the json's folder."""
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    if (
        os.path.basename(folder) == "annotations"
        and name.startswith("instances_")
        and name.endswith(".json")
    ):
        split = os.path.join(os.path.dirname(folder), name[len("instances_") : -len(".json")])
        if os.path.isdir(split):
            return split
    return folder


def coco_boxes(path: str, image_root: str | None = None) -> list[BoxedImage]:
    """A COCO instances json; crowd boxes dropped and corners rounded, as LOST reads COCO."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        names = {c["id"]: c["name"] for c in data.get("categories", [])}
        images = {im["id"]: im["file_name"] for im in data["images"]}
        annotations = data["annotations"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise LayoutError(f"{path}: not a COCO instances json ({err})") from None
    root = image_root or coco_image_root(path)
    boxes: dict[int, list] = {}
    for ann in annotations:
        if ann.get("iscrowd", 0):
            continue
        x, y, w, h = ann["bbox"]
        boxes.setdefault(ann["image_id"], []).append(
            ([round(x), round(y), round(x + w), round(y + h)], names.get(ann["category_id"], ""))
        )
    return [
        BoxedImage(
            os.path.join(root, images[i]),
            np.array([b for b, _ in found], dtype=np.float64),
            [n for _, n in found],
        )
        for i, found in sorted(boxes.items())
    ]


@dataclass
class MaskedImage:
    path: str
    annotations: list[dict]  # the image's COCO annotations that carry a segmentation
    size: tuple[int, int]  # (height, width) as the json gives it
    categories: dict[int, str]

    def objects(self) -> tuple[np.ndarray, list[str]]:
        """(O, H, W) bool, one mask per category present (its instances merged), and the names."""
        from pycocotools import mask as coco_mask

        merged: dict[int, np.ndarray] = {}
        for ann in self.annotations:
            segmentation = ann["segmentation"]
            if isinstance(segmentation, list):  # polygons
                rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, *self.size))
            elif isinstance(segmentation["counts"], list):  # uncompressed RLE
                rle = coco_mask.frPyObjects(segmentation, *self.size)
            else:
                rle = segmentation
            mask = coco_mask.decode(rle).astype(bool)
            merged[ann["category_id"]] = merged.get(ann["category_id"], False) | mask
        ids = sorted(merged)
        return np.stack([merged[i] for i in ids]), [self.categories.get(i, str(i)) for i in ids]


def coco_masks(path: str, image_root: str | None = None) -> list[MaskedImage]:
    """A COCO instances json with segmentations (polygons or RLE); crowd regions dropped, images
    without an object left out."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        names = {c["id"]: c["name"] for c in data.get("categories", [])}
        images = {im["id"]: im for im in data["images"]}
        annotations = [a for a in data["annotations"] if not a.get("iscrowd", 0)]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise LayoutError(f"{path}: not a COCO instances json ({err})") from None
    if not any("segmentation" in a for a in annotations):
        raise LayoutError(
            f"{path}: no segmentation in its annotations (the attention task needs object masks)"
        )
    root = image_root or coco_image_root(path)
    by_image: dict[int, list[dict]] = {}
    for ann in annotations:
        if ann.get("segmentation"):
            by_image.setdefault(ann["image_id"], []).append(ann)
    return [
        MaskedImage(
            os.path.join(root, images[i]["file_name"]),
            found,
            (images[i]["height"], images[i]["width"]),
            names,
        )
        for i, found in sorted(by_image.items())
    ]


def box_images(data: str, image_root: str | None = None) -> list[BoxedImage]:
    """A VOC directory or a COCO json file."""
    if data.endswith(".json"):
        return coco_boxes(data, image_root)
    return voc_boxes(data)


@dataclass
class Sequence:
    name: str
    frames: list[str]
    annotations: list[str]  # may be shorter than frames (DAVIS val: every frame is annotated)


def davis_sequences(root: str, subset: str = "val", resolution: str = "480p") -> list[Sequence]:
    """``root/JPEGImages/480p/SEQ/*.jpg``, ``root/Annotations/480p/SEQ/*.png`` (palette PNGs),
    sequences listed in ``root/ImageSets/2017/{subset}.txt``."""
    listing = os.path.join(root, "ImageSets", "2017", f"{subset}.txt")
    if not os.path.isfile(listing):
        raise LayoutError(f"{root}: no ImageSets/2017/{subset}.txt (DAVIS-2017 layout)")
    with open(listing, encoding="utf-8") as handle:
        names = [line.strip() for line in handle if line.strip()]
    sequences = []
    for name in names:
        frames_dir = os.path.join(root, "JPEGImages", resolution, name)
        masks_dir = os.path.join(root, "Annotations", resolution, name)
        if not os.path.isdir(frames_dir) or not os.path.isdir(masks_dir):
            log.error(
                "%s: sequence %s listed but its frames or annotations are missing, skipped",
                listing,
                name,
            )
            continue
        frames = sorted(
            os.path.join(frames_dir, f) for f in os.listdir(frames_dir) if f.endswith(".jpg")
        )
        masks = sorted(
            os.path.join(masks_dir, f) for f in os.listdir(masks_dir) if f.endswith(".png")
        )
        if (
            not frames
            or not masks
            or os.path.basename(masks[0])[:-4] != os.path.basename(frames[0])[:-4]
        ):
            log.error("%s: no first-frame annotation for %s, skipped", masks_dir, name)
            continue
        sequences.append(Sequence(name, frames, masks))
    return sequences


def read_labels(path: str) -> np.ndarray:
    """A palette (or grey) PNG as its (H, W) uint8 label indices."""
    with Image.open(path) as image:
        if image.mode not in ("P", "L"):
            raise LayoutError(
                f"{path}: annotation is {image.mode}, not a palette or grey PNG of label indices"
            )
        return np.asarray(image)


def davis_palette() -> np.ndarray:
    """The DAVIS/PASCAL colour map: (256, 3) uint8, label i's colour from the bits of i."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, r, g, b = index, 0, 0, 0
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (r, g, b)
    return palette


def write_labels(path: str, labels: np.ndarray) -> None:
    """Save a label map as a palette PNG, as DAVIS annotations are."""
    image = Image.fromarray(labels.astype(np.uint8))  # mode L; putpalette makes it P
    image.putpalette(davis_palette().ravel().tolist())
    with replacing(path) as tmp:
        image.save(tmp)
