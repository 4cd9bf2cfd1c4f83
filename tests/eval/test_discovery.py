"""TokenCut, LOST and CorLoc: oracle features from a real mask, fixed boxes, and parity with an
independent re-derivation of the official code (valeoai/LOST, YangtaoWANG95/TokenCut) on real images."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
import torch

from wtpipe.eval import datasets, discovery
from wtpipe.eval.tasks import last_block_keys
from wtpipe.models.weights import load_backbone


def patch_mask(mask: np.ndarray, patch: int = 16) -> np.ndarray:
    """A pixel mask -> patches more than half covered."""
    h, w = mask.shape[0] // patch, mask.shape[1] // patch
    return mask[: h * patch, : w * patch].reshape(h, patch, w, patch).mean((1, 3)) > 0.5


def oracle_keys(fg: np.ndarray, seed: int = 0) -> np.ndarray:
    """Keys that know the answer: object patches along one axis, the rest mostly along another
    (slightly anti-correlated with the object, so no object-background product is positive), plus noise."""
    rng = np.random.default_rng(seed)
    keys = np.where(fg.reshape(-1, 1), [[1.0, 0.0, 0.0]], [[-0.3, 1.0, 0.0]])
    return keys + rng.normal(0, 0.01, keys.shape)


def fg_box(fg: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(fg)
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


@pytest.mark.parametrize("clip", ["box", "cup"])
def test_both_recover_the_true_box_from_oracle_features_of_a_real_mask(eval_data, clip):
    mask = (
        datasets.read_labels(
            os.path.join(eval_data, "davis", "Annotations", "480p", clip, "00000.png")
        )
        > 0
    )
    fg = patch_mask(mask)
    labels, count = scipy.ndimage.label(fg)
    fg = labels == 1 + np.argmax(scipy.ndimage.sum(fg, labels, range(1, count + 1)))  # one object
    true_pixels = np.array([discovery.to_pixels(fg_box(fg), 16, mask.shape)])
    for solver in ("arpack", "dense"):
        found = discovery.tokencut(oracle_keys(fg), fg.shape, solver=solver)
        assert found.box == fg_box(fg) and np.array_equal(found.mask, fg) and fg.flat[found.seed]
    found = discovery.lost(oracle_keys(fg), fg.shape)
    assert found.box == fg_box(fg) and np.array_equal(found.mask, fg) and fg.flat[found.seed]
    assert discovery.corloc_hit(discovery.to_pixels(found.box, 16, mask.shape), true_pixels)


def test_the_box_is_the_component_containing_the_seed_not_the_largest():
    fg = np.zeros((12, 12), dtype=bool)
    fg[1:3, 1:3] = True  # a small object
    fg[6:11, 5:11] = True  # a larger, separate one
    assert discovery.component_box(fg, 1 * 12 + 1)[0] == (1, 1, 3, 3)
    assert discovery.component_box(fg, 7 * 12 + 6)[0] == (5, 6, 11, 11)
    with pytest.raises(ValueError, match="seed"):
        discovery.component_box(fg, 0)
    # LOST: the small object's patches have the lowest degree, so its seed and box win over the large one.
    keys = np.tile([-0.3, 1.0, -0.3], (144, 1))
    keys[fg.reshape(-1)] = [1.0, 0.0, 0.0]
    keys[np.flatnonzero(fg.reshape(-1))[:4]] = [0.0, 0.0, 1.0]
    found = discovery.lost(keys, fg.shape)
    assert found.box == (1, 1, 3, 3) and found.mask.sum() == 4


def test_corloc_iou_rule_on_fixed_boxes():
    truth = np.array([[0, 0, 10, 10], [100, 100, 120, 130]])
    assert np.isclose(discovery.box_iou(np.array([5, 0, 15, 10]), truth)[0], 50 / 150, atol=1e-6)
    assert discovery.corloc_hit((0, 0, 10, 19), truth)  # 100 / 190 = 0.526
    assert not discovery.corloc_hit((0, 0, 10, 21), truth)  # 100 / 210 = 0.476
    assert not discovery.corloc_hit(
        (0, 0, 10, 20), truth
    )  # exactly 0.5 loses to LOST's eps, as theirs
    assert discovery.corloc_hit((101, 99, 121, 131), truth)  # any ground-truth box counts
    assert discovery.to_pixels((2, 1, 5, 4), 16, (60, 70)) == (
        32,
        16,
        70,
        60,
    )  # clipped to the image


def test_voc_reader_follows_lost_coordinates(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><object><name>cat</name><bndbox><xmin>1</xmin><ymin>5</ymin>"
        "<xmax>50</xmax><ymax>60</ymax></bndbox></object></annotation>"
    )
    (tmp_path / "Annotations" / "b.xml").write_text("<annotation><broken>")
    items = datasets.voc_boxes(str(tmp_path))
    assert (
        len(items) == 1
        and items[0].boxes.tolist() == [[0, 4, 50, 60]]
        and items[0].names == ["cat"]
    )


# -- parity with the official computations, re-derived ------------------------------------------


def official_keys(backbone, rgb: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
    """LOST's main script: normalise, zero-pad to a patch multiple, hook the last qkv, heads concatenated."""
    image = (
        torch.tensor(rgb).permute(2, 0, 1).float() / 255
        - torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    ) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    h, w = int(np.ceil(image.shape[1] / 16) * 16), int(np.ceil(image.shape[2] / 16) * 16)
    padded = torch.zeros(3, h, w)
    padded[:, : image.shape[1], : image.shape[2]] = image
    captured = {}
    handle = backbone.vit.blocks[-1].attn.qkv.register_forward_hook(
        lambda m, i, o: captured.update(qkv=o)
    )
    with torch.no_grad():
        backbone.vit(padded[None])
    handle.remove()
    qkv = captured["qkv"]
    tokens, heads = qkv.shape[1], backbone.num_heads
    k = qkv.reshape(1, tokens, 3, heads, -1).permute(2, 0, 3, 1, 4)[1]
    return k.transpose(1, 2).reshape(1, tokens, -1), (h // 16, w // 16)


def official_tokencut(feats: torch.Tensor, dims: tuple[int, int], tau=0.2, eps=1e-5):
    feats = torch.nn.functional.normalize(feats[0, 1:], p=2)
    affinity = (feats @ feats.T).numpy() > tau
    affinity = np.where(affinity.astype(float) == 0, eps, affinity)
    degree = np.diag(affinity.sum(1))
    _, vectors = scipy.linalg.eigh(degree - affinity, degree, subset_by_index=[1, 2])
    second = vectors[:, 0]
    bipartition = second > second.sum() / len(second)
    seed = np.argmax(np.abs(second))
    if bipartition[seed] != 1:
        second, bipartition = -second, np.logical_not(bipartition)
    objects, _ = scipy.ndimage.label(bipartition.reshape(dims).astype(float))
    ys, xs = np.where(objects == objects[np.unravel_index(seed, dims)])
    return second, bipartition, seed, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def official_lost(feats: torch.Tensor, dims: tuple[int, int], k_patches=100):
    feats = feats[:, 1:]
    gram = (feats @ feats.transpose(1, 2)).squeeze()
    clipped = gram.clone()
    clipped.fill_diagonal_(0)
    clipped[clipped < 0] = 0
    degree = -torch.sum(clipped > 0, dim=1).float()
    order = torch.argsort(
        degree, descending=True, stable=True
    )  # official: unstable (ties arbitrary)
    seed = order[0]
    potentials = order[:k_patches]
    similars = potentials[gram[seed, potentials] > 0.0]
    expansion = gram[similars].sum(0)
    labels, _ = scipy.ndimage.label(expansion.reshape(dims).numpy() > 0.0)
    ys, xs = np.where(labels == labels[np.unravel_index(int(seed), dims)])
    return expansion.numpy(), int(seed), (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


@pytest.mark.parametrize("name", ["voc", "arc2017", "cup_0072", "box_0151"])
def test_parity_with_the_official_tokencut_and_lost_on_real_images(eval_data, name):
    backbone, _ = load_backbone("random:vit_small_patch16_224:3")
    rgb = datasets.read_rgb(os.path.join(eval_data, "objects", "JPEGImages", f"{name}.jpg"))
    keys, grid, _ = last_block_keys(backbone, rgb)
    reference, dims = official_keys(backbone, rgb)
    assert grid == dims
    np.testing.assert_allclose(keys, reference[0, 1:].double().numpy(), rtol=1e-4, atol=1e-4)

    ours = discovery.tokencut(keys, grid)
    vector, bipartition, seed, box = official_tokencut(reference, dims)
    scale = np.dot(ours.score.ravel(), vector) / np.dot(vector, vector)
    np.testing.assert_allclose(ours.score.ravel(), scale * vector, atol=1e-6 * np.abs(vector).max())
    assert scale > 0 and ours.seed == seed and ours.box == box
    assert np.array_equal(ours.score.ravel() > ours.score.mean(), bipartition)

    found = discovery.lost(keys, grid)
    expansion, seed, box = official_lost(reference, dims)
    assert found.seed == seed and found.box == box
    np.testing.assert_allclose(found.score.ravel(), expansion, rtol=1e-4, atol=1e-3)
