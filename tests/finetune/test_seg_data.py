"""ADE20K-layout reading, label reduction, the training crop and slide inference, on the real sample set."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from wtpipe.eval.datasets import LayoutError
from wtpipe.finetune.seg_data import (
    IGNORE,
    SegPipeline,
    load_pair,
    pairs,
    reduce_labels,
    rescale_size,
    slide_logits,
    train_sample,
    val_sample,
)


@pytest.fixture(scope="module")
def seg(eval_data) -> str:
    return os.path.join(eval_data, "seg")


def test_the_sample_set_has_both_splits_and_all_classes(seg):
    train, val = pairs(seg, "train"), pairs(seg, "val")
    assert len(train) == 28 and len(val) == 12
    seen = set()
    for image, note in train + val:
        rgb, labels = load_pair(image, note)
        seen |= set(np.unique(labels).tolist())
    assert seen == {0, 1, 2, 3}  # other (object edges), background, cup, box


def test_reduce_zero_label_ignores_other_and_shifts_the_rest():
    labels = np.array([[0, 1, 2], [3, 255, 1]], dtype=np.uint8)
    assert reduce_labels(labels, True).tolist() == [[IGNORE, 0, 1], [2, IGNORE, 0]]
    assert reduce_labels(labels, False).tolist() == labels.tolist()


def test_rescale_keeps_the_ratio_within_both_caps():
    assert rescale_size(320, 240, (2048, 512)) == (683, 512)  # short side to 512
    assert rescale_size(4000, 500, (2048, 512)) == (2048, 256)  # long side capped


def test_a_training_sample_is_a_padded_crop_and_a_function_of_its_seed(seg):
    image, note = next(p for p in pairs(seg, "train") if "cup_" in p[0])
    rgb, labels = load_pair(image, note)
    pipe = SegPipeline(crop=256, base_scale=(1024, 256))
    x, y = train_sample(rgb, labels, pipe, np.random.default_rng(3))
    assert x.shape == (3, 256, 256) and y.shape == (256, 256) and y.dtype == torch.int64
    assert set(torch.unique(y).tolist()) <= {
        0,
        1,
        IGNORE,
    }  # a cup frame: background, cup, ignored edge/padding
    again = train_sample(rgb, labels, pipe, np.random.default_rng(3))
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])
    small = SegPipeline(
        crop=512, base_scale=(256, 128), ratio_range=(1.0, 1.0)
    )  # image smaller than the crop
    x, y = train_sample(rgb, labels, small, np.random.default_rng(0))
    assert x.shape == (3, 512, 512) and (y[170:, :] == IGNORE).all() and (x[:, 170:, :] == 0).all()


def test_slide_inference_averages_overlapping_windows():
    calls = []

    def model(window: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(window.shape[-2:]))
        return torch.ones(1, 2, *window.shape[-2:])

    logits = slide_logits(model, torch.zeros(3, 100, 150), num_classes=2, crop=64, stride=48)
    assert logits.shape == (2, 100, 150) and torch.allclose(logits, torch.ones_like(logits))
    assert len(calls) == 2 * 3 and set(calls) == {(64, 64)}
    assert slide_logits(model, torch.zeros(3, 40, 50), 2, crop=64, stride=48).shape == (2, 40, 50)


def test_a_missing_annotation_or_folder_is_named(seg, tmp_path):
    broken = tmp_path / "seg"
    shutil.copytree(seg, broken)
    with pytest.raises(LayoutError, match="validation"):
        shutil.rmtree(broken / "annotations" / "validation")
        pairs(str(broken), "val")
    os.remove(pairs(str(broken), "train")[0][1])
    with pytest.raises(LayoutError, match="no annotation"):
        pairs(str(broken), "train")


def test_an_unreadable_image_is_reported_as_none(tmp_path, seg):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert load_pair(str(bad), pairs(seg, "train")[0][1]) is None
    assert val_sample(*load_pair(*pairs(seg, "val")[0]), SegPipeline())[0].shape[-2:] == (512, 683)
