"""Detection fine-tuning: COCO AP through pycocotools on hand-written detections, the ViTDet
pyramid's levels, and a tiny Mask R-CNN fine-tune on the real sample set that beats no detections."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tests.train.runs import ENV, run
from wtpipe.finetune.det import coco_scores, coco_split, decode_mask, detections_for
from wtpipe.finetune.det_model import SimpleFeaturePyramid
from wtpipe.models.vit import ViTBackbone


@pytest.fixture(scope="module")
def det_data(eval_data) -> str:
    return os.path.join(eval_data, "det")


def test_the_sample_set_is_coco_with_masks(det_data):
    train, val = coco_split(det_data, "train2017"), coco_split(det_data, "val2017")
    assert len(train.images) == 30 and len(val.images) == 12  # 28 frames + VOC + ARC2017; 12 frames
    voc = next(i for i in train.images if i["file_name"] == "voc.jpg")
    assert len(train.annotations[voc["id"]]) == 19  # its human instance masks
    ann = val.annotations[val.images[0]["id"]][0]
    mask = decode_mask(ann["segmentation"], val.images[0]["height"], val.images[0]["width"])
    ys, xs = np.nonzero(mask)
    assert [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()] == pytest.approx(
        ann["bbox"]
    )


def test_ap_is_what_pycocotools_gives_on_hand_written_detections(det_data):
    val = coco_split(det_data, "val2017")
    detections = []
    for n, info in enumerate(val.images):
        for ann in val.annotations[info["id"]]:
            x, y, w, h = ann["bbox"]
            shift = 3.0 * (n % 4)  # some boxes off by a few pixels, so AP is neither 0 nor 100
            detections.append(
                {
                    "image_id": info["id"],
                    "category_id": ann["category_id"],
                    "score": 0.9 - 0.05 * n,
                    "bbox": [x + shift, y + shift, w, h],
                    "segmentation": ann["segmentation"],
                }
            )
        detections.append(
            {
                "image_id": info["id"],
                "category_id": val.categories[0],
                "score": 0.5,
                "bbox": [0.0, 0.0, 40.0, 30.0],
                "segmentation": ann["segmentation"],
            }
        )  # a false box
    ours = coco_scores(val.json_path, detections, "bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(val.json_path)
        direct = COCOeval(truth, truth.loadRes(detections), "bbox")
        direct.evaluate(), direct.accumulate(), direct.summarize()
    assert ours["bbox_AP"] == pytest.approx(100 * direct.stats[0]) and 20 < ours["bbox_AP"] < 95
    assert ours["bbox_AP50"] == pytest.approx(100 * direct.stats[1])
    assert (
        coco_scores(val.json_path, detections, "segm")["segm_AP"] > 90
    )  # the masks are the truth's own
    assert coco_scores(val.json_path, [], "bbox")["bbox_AP"] == 0.0


def test_torchvision_outputs_become_coco_results():
    output = {
        "boxes": torch.tensor([[10.0, 20.0, 50.0, 80.0]]),
        "scores": torch.tensor([0.8]),
        "labels": torch.tensor([2]),
        "masks": torch.zeros(1, 1, 100, 120),
    }
    output["masks"][0, 0, 20:80, 10:50] = 0.9
    (found,) = detections_for(7, output, categories=[3, 5])
    assert (
        found["bbox"] == [10.0, 20.0, 40.0, 60.0]
        and found["category_id"] == 5
        and found["image_id"] == 7
    )
    assert decode_mask(found["segmentation"], 100, 120).sum() == 60 * 40


def test_the_simple_pyramid_has_strides_4_to_64():
    torch.manual_seed(0)
    levels = SimpleFeaturePyramid(ViTBackbone("vit_tiny_patch16_224"), out_channels=32)(
        torch.randn(1, 3, 128, 192)
    )
    assert [tuple(v.shape[1:]) for v in levels.values()] == [
        (32, 32, 48),
        (32, 16, 24),
        (32, 8, 12),
        (32, 4, 6),
        (32, 2, 3),
    ]


@pytest.mark.slow
def test_mask_rcnn_learns_on_the_sample_set(det_data, reference, tmp_path):
    out = str(tmp_path / "det")
    result = run(
        [
            sys.executable,
            "-m",
            "wtpipe.cli.main",
            "eval",
            "det",
            "--config",
            "configs/det_tiny_cpu.yaml",
            f"data.root={det_data}",
            f"model.weights={reference}",
            f"run.output_dir={out}",
            "data.min_sizes=[128,160]",
            "data.test_size=160",
            "optim.iters=40",
            "run.val_every=0",
            "run.checkpoint_every=20",
            "run.pictures=2",
            "--baseline",
        ]
    )
    rows = [
        line.split(",") for line in open(os.path.join(out, "scalars.csv")).read().splitlines()[1:]
    ]
    losses = [float(r[1]) for r in rows if r[1]]
    assert losses[-1] < 0.6 * losses[0], losses
    metrics = json.load(open(os.path.join(out, "val", "step-00000040", "metrics.json")))
    assert (
        metrics["bbox_AP50"] > 0 and metrics["segm_AP50"] > 0
    )  # no detections (the trivial predictor) scores 0
    assert "trivial bbox_AP 0.00" in result.stdout
    assert len(os.listdir(os.path.join(out, "val", "step-00000040", "pictures"))) == 2


def test_a_missing_layout_is_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wtpipe.cli.main",
            "eval",
            "det",
            f"data.root={tmp_path}",
            "model.weights=random:vit_tiny_patch16_224",
            f"run.output_dir={tmp_path / 'o'}",
        ],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "instances_train2017.json" in result.stderr
