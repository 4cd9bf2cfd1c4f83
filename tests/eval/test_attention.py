"""The attention-mask Jaccard: hand-made cases, parity with DINO's ``visualize_attention.py`` and
the authors' Jaccard loop (facebookresearch/dino issue 54), re-derived, on the real annotated
images; the task end to end on the sample data, and its bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from tests.eval.test_cli import eval_cmd
from tests.train.runs import run
from wtpipe.eval import attention, datasets
from wtpipe.eval.settings import AttentionConfig
from wtpipe.eval.tasks import cls_attention, run_task
from wtpipe.models.weights import load_backbone


def test_a_mask_keeps_the_largest_weights_until_the_share_is_reached():
    weights = np.array([[0.05, 0.4, 0.1, 0.3, 0.15]])
    # ranked 0.4, 0.3, 0.15, ...: 0.4 < 0.6 is not enough, 0.4 + 0.3 crosses 0.6 and is kept
    assert attention.mass_masks(weights, 0.6).tolist() == [[False, True, False, True, False]]
    assert attention.mass_masks(weights, 0.71).tolist() == [[False, True, False, True, True]]
    assert (
        attention.mass_masks(weights * 7, 0.6).tolist()
        == attention.mass_masks(weights, 0.6).tolist()
    )
    assert attention.mass_masks(weights, 1.0).all()


def test_each_object_keeps_its_best_head():
    objects = np.zeros((2, 4, 4), dtype=bool)
    objects[0, :2, :2] = True  # 4 pixels
    objects[1, 2:, :] = True  # 8 pixels
    heads = np.zeros((3, 4, 4), dtype=bool)
    heads[0, :2, :] = True  # object 0: 4 / 8
    heads[1, :2, :2] = True  # object 0: exactly
    heads[2, 3:, :] = True  # object 1: 4 / 8
    best, which = attention.best_head_jaccard(heads, objects)
    assert best.tolist() == [1.0, 0.5] and which.tolist() == [1, 2]


def official_cls_attention(backbone, rgb: np.ndarray) -> torch.Tensor:
    """``visualize_attention.py``: normalise, crop to a patch multiple, the last block's full
    attention from its qkv (softmax over every token), the [CLS] row without itself."""
    image = (
        torch.tensor(rgb).permute(2, 0, 1).float() / 255
        - torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    ) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    h, w = image.shape[1] - image.shape[1] % 16, image.shape[2] - image.shape[2] % 16
    image = image[:, :h, :w][None]
    captured = {}
    block = backbone.vit.blocks[-1].attn
    handle = block.qkv.register_forward_hook(lambda m, i, o: captured.update(qkv=o))
    with torch.no_grad():
        backbone.vit(image)
    handle.remove()
    qkv = captured["qkv"]
    heads = backbone.num_heads
    q, k, _ = qkv.reshape(1, qkv.shape[1], 3, heads, -1).permute(2, 0, 3, 1, 4)
    attn = (q @ k.transpose(-2, -1) * block.scale).softmax(dim=-1)
    return attn[0, :, 0, 1:].reshape(heads, -1), (h // 16, w // 16)


def official_threshold(
    attn: torch.Tensor, grid: tuple[int, int], threshold: float = 0.6
) -> np.ndarray:
    """Sort ascending, normalise, keep where the cumulative mass exceeds 1 - threshold, unsort;
    nearest upsampling by the patch size."""
    val, idx = torch.sort(attn)
    val /= torch.sum(val, dim=1, keepdim=True)
    cumval = torch.cumsum(val, dim=1)
    th_attn = cumval > (1 - threshold)
    idx2 = torch.argsort(idx)
    for head in range(attn.shape[0]):
        th_attn[head] = th_attn[head][idx2[head]]
    th_attn = th_attn.reshape(attn.shape[0], *grid).float()
    return (
        torch.nn.functional.interpolate(th_attn[None], scale_factor=16, mode="nearest")[0].numpy()
        > 0
    )


def official_jaccard(th_attn: np.ndarray, objects: np.ndarray) -> float:
    """The authors' loop: per object, intersection over union with every head, the best head, the mean."""
    total = 0.0
    for masko in objects:
        intersection = (masko[None] & th_attn).sum(axis=(1, 2))
        union = (masko[None] | th_attn).sum(axis=(1, 2))
        total += max(intersection / union)
    return total / len(objects)


def test_parity_with_dinos_attention_masks_and_jaccard_on_real_images(eval_data, tmp_path):
    backbone, info = load_backbone("random:vit_small_patch16_224:3")
    backbone.eval()
    data = os.path.join(eval_data, "objects", "instances.json")
    items = datasets.coco_masks(data)
    assert [os.path.basename(i.path) for i in items[:2]] == ["voc.jpg", "arc2017.jpg"] and len(
        items
    ) == 10
    expected = []
    for item in items:
        rgb = datasets.read_rgb(item.path)
        ours = cls_attention(backbone, rgb)
        reference, grid = official_cls_attention(backbone, rgb)
        assert ours.shape[1:] == grid
        np.testing.assert_allclose(
            ours.reshape(len(ours), -1), reference.numpy(), rtol=1e-4, atol=1e-7
        )
        official = official_threshold(reference, grid)
        masks = attention.mass_masks(reference.double().numpy()).reshape(-1, *grid)
        assert np.array_equal(masks.repeat(16, axis=1).repeat(16, axis=2), official)
        objects, _ = item.objects()
        expected.append(
            official_jaccard(official, objects[:, : official.shape[1], : official.shape[2]])
        )
    report = run_task("attention", backbone, info, data, str(tmp_path), AttentionConfig(pictures=2))
    got = [
        np.mean([o["jaccard"] for o in image["objects"].values()]) for image in report["per_image"]
    ]
    np.testing.assert_allclose(
        got, expected, atol=1e-4
    )  # per-object values are rounded to 4 digits
    assert report["metrics"]["jaccard"] == pytest.approx(100 * np.mean(expected), abs=0.02)
    assert report["images"] == 10 and len(report["per_image"][0]["objects"]) == 4  # VOC: 4 classes
    assert sorted(os.listdir(tmp_path / "pictures")) == ["0000_voc.png", "0001_arc2017.png"]


def test_the_task_end_to_end_and_its_bad_input(eval_data, tmp_path):
    data = tmp_path / "objects"
    shutil.copytree(os.path.join(eval_data, "objects"), data)
    broken = data / "JPEGImages" / "cup_0072.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    result = run(
        eval_cmd(
            "attention",
            "random:vit_tiny_patch16_224:0",
            str(data / "instances.json"),
            str(tmp_path / "out"),
        )
    )
    assert f"{broken}: unreadable image, skipped" in result.stderr
    report = json.load(open(tmp_path / "out" / "metrics.json"))
    assert report["skipped"] == [str(broken)] and report["images"] == 9
    assert (
        0 < report["metrics"]["jaccard"] < 100
        and len(os.listdir(tmp_path / "out" / "pictures")) == 9
    )
    boxes_only = tmp_path / "boxes.json"
    coco = json.load(open(data / "instances.json"))
    boxes_only.write_text(
        json.dumps(
            {
                **coco,
                "annotations": [
                    {k: v for k, v in a.items() if k != "segmentation"} for a in coco["annotations"]
                ],
            }
        )
    )
    bad = subprocess.run(
        eval_cmd("attention", "random", str(boxes_only), str(tmp_path / "bad")),
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no segmentation" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    for path in (tmp_path / "none.json", data / "Annotations"):
        with pytest.raises(datasets.LayoutError, match="not a COCO instances json"):
            datasets.coco_masks(str(path))
    # COCO 2017 layout: annotations/instances_SPLIT.json finds its images in SPLIT/
    det = datasets.coco_masks(
        os.path.join(eval_data, "det", "annotations", "instances_val2017.json")
    )
    assert len(det) == 12 and all(os.path.exists(item.path) for item in det)
    assert all(os.path.dirname(item.path).endswith(os.path.join("det", "val2017")) for item in det)
    # nothing readable: an error, and no metrics.json that looks like a result
    for image in (data / "JPEGImages").iterdir():
        image.write_bytes(b"broken")
    backbone, info = load_backbone("random:vit_tiny_patch16_224:0")
    with pytest.raises(datasets.LayoutError, match="none of its 10 images could be scored"):
        run_task(
            "attention",
            backbone,
            info,
            str(data / "instances.json"),
            str(tmp_path / "none"),
            AttentionConfig(),
        )
    assert not os.path.exists(tmp_path / "none" / "metrics.json")
