"""DAVIS J and F on known masks as the toolkit defines them, and label propagation against an
independent re-derivation of DINO's ``eval_video_segmentation`` on real frames."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from wtpipe.eval import datasets
from wtpipe.eval import davis as davis_lib
from wtpipe.eval.davis_metrics import (
    boundary_map,
    evaluate_sequence,
    f_measure,
    jaccard,
    statistics,
)
from wtpipe.models.weights import load_backbone


def square(shift: int = 0, size: int = 100) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[10:30, 10 + shift : 30 + shift] = True
    return mask


def brute_force_f(truth: np.ndarray, pred: np.ndarray, radius: int) -> float:
    """F by explicit distances: a boundary pixel matches if the other boundary has a pixel within
    Euclidean distance ``radius`` (the toolkit's dilation by a digital disk)."""
    a, b = np.argwhere(boundary_map(pred)), np.argwhere(boundary_map(truth))
    if len(a) == 0 or len(b) == 0:
        return float(len(a) == len(b))
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    precision, recall = (d.min(1) <= radius**2).mean(), (d.min(0) <= radius**2).mean()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def test_jaccard_on_a_shifted_square_and_a_thin_object():
    assert jaccard(square(), square()) == 1.0
    assert np.isclose(jaccard(square(), square(2)), 18 * 20 / (22 * 20))
    line = np.zeros((50, 50), dtype=bool)
    line[10:40, 20] = True
    assert jaccard(line, np.roll(line, 1, axis=1)) == 0.0  # one pixel off: no overlap at all
    assert jaccard(np.zeros((5, 5)), np.zeros((5, 5))) == 1.0  # both empty: 1, as the toolkit


def test_boundary_map_follows_the_toolkit_offsets():
    edge = boundary_map(square())
    # Pixels whose east/south/south-east neighbour differs: the row and column before the square,
    # and its last row and column.
    rows, cols = np.nonzero(edge)
    assert rows.min() == 9 and rows.max() == 29 and cols.min() == 9 and cols.max() == 29
    assert not edge[15, 15] and edge[9, 20] and edge[29, 20] and edge[20, 9] and edge[20, 29]


def test_f_measure_tolerance_is_the_diagonal_rule():
    # 100 x 100: radius ceil(0.008 * 141.4) = 2. A 2-pixel shift is within tolerance, 3 is not (sides).
    assert f_measure(square(), square(2)) == 1.0
    three = f_measure(square(), square(3))
    assert 0.3 < three < 1.0 and np.isclose(three, brute_force_f(square(), square(3), 2))
    line = np.zeros((100, 100), dtype=bool)
    line[10:60, 40] = True
    assert (
        f_measure(line, np.roll(line, 2, axis=1)) == 1.0
        and f_measure(line, np.roll(line, 5, axis=1)) == 0.0
    )
    assert (
        f_measure(np.zeros((9, 9)), np.zeros((9, 9))) == 1.0
        and f_measure(square(), np.zeros((100, 100))) == 0.0
    )


def test_f_measure_matches_explicit_distances_on_random_blobs():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = np.zeros((60, 80), dtype=bool)
        b = np.zeros((60, 80), dtype=bool)
        for mask in (a, b):
            y, x, r = rng.integers(15, 45), rng.integers(15, 65), rng.integers(5, 14)
            yy, xx = np.mgrid[:60, :80]
            mask |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
        assert np.isclose(f_measure(a, b), brute_force_f(a, b, 1))  # ceil(0.008 * 100) = 1


def test_statistics_and_sequence_scoring():
    mean, recall, decay = statistics(np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]))
    assert (
        np.isclose(mean, 0.65) and np.isclose(recall, 5 / 8) and np.isclose(decay, 0.9 - 0.4)
    )  # bins [0:3], [5:8]: the toolkit rounds 4.5 up
    truth = np.stack([square(0)] * 5).astype(np.uint8)
    pred = truth.copy()
    pred[2] = square(2)  # only frame 2 is off; frames 0 and 4 are never scored
    pred[0] = 0
    pred[4] = 0
    scores = evaluate_sequence(truth, pred)
    assert list(scores) == [1] and np.isclose(scores[1]["J"], (1 + 360 / 440 + 1) / 3)
    assert scores[1]["F"] == 1.0


def official_propagation(feats, segs, target, h, w, radius=12, topk=5):
    """DINO's label_propagation, re-derived with its loops: (C, h, w) soft labels of ``target``."""
    mask = torch.zeros(h, w, h, w)
    for i in range(h):
        for j in range(w):
            for p in range(2 * radius + 1):
                for q in range(2 * radius + 1):
                    if 0 <= i - radius + p < h and 0 <= j - radius + q < w:
                        mask[i, j, i - radius + p, j - radius + q] = 1
    mask = mask.reshape(h * w, h * w)
    n = len(feats)
    feat_tar = torch.nn.functional.normalize(target, dim=1, p=2).unsqueeze(0).repeat(n, 1, 1)
    sources = torch.nn.functional.normalize(torch.stack([f.T for f in feats]), dim=1, p=2)
    aff = torch.exp(torch.bmm(feat_tar, sources) / 0.1) * mask.unsqueeze(0)
    aff = aff.transpose(2, 1).reshape(-1, h * w)
    kth = torch.topk(aff, dim=0, k=topk).values.min(dim=0).values
    aff[aff < kth] = 0
    aff = aff / torch.sum(aff, keepdim=True, axis=0)
    stacked = torch.cat(segs)
    c = stacked.shape[1]
    stacked = stacked.reshape(n, c, -1).transpose(2, 1).reshape(-1, c).T
    return (stacked @ aff).reshape(c, h, w)


def test_propagation_matches_the_official_computation_on_real_frames(eval_data):
    backbone, _ = load_backbone("random:vit_tiny_patch16_224:1")
    root = os.path.join(eval_data, "davis")
    seq = datasets.davis_sequences(root)[0]
    frames = [datasets.read_rgb(p) for p in seq.frames[:4]]
    first = datasets.read_labels(seq.annotations[0])
    tensors = [davis_lib.frame_tensor(f) for f in frames]
    assert tensors[0].shape == (3, 480, 640)
    grid = (30, 40)
    one_hot = davis_lib.first_labels(first, grid)
    expected = np.asarray(Image.fromarray(first).resize((40, 30), Image.NEAREST))
    assert torch.equal(one_hot.argmax(0), torch.from_numpy(expected.astype(np.int64)))
    feats = [davis_lib.patch_features(backbone, t) for t in tensors]
    near = davis_lib.neighbourhood(grid, 12)
    config = davis_lib.PropagationConfig()
    context_feats, context_segs = [feats[0]], [one_hot.flatten(1)]
    for t in (1, 2, 3):
        ours = davis_lib.propagate(feats[t], context_feats, context_segs, near, config)
        theirs = official_propagation(
            context_feats, [s.reshape(1, -1, *grid) for s in context_segs], feats[t], *grid
        )
        torch.testing.assert_close(ours.reshape(-1, *grid), theirs, rtol=1e-4, atol=1e-6)
        context_feats.append(feats[t])
        context_segs.append(ours)
    maps = list(davis_lib.segment_video(backbone, iter(frames), first))
    assert len(maps) == 3 and maps[0].shape == first.shape and set(np.unique(maps[0])) <= {0, 1}


def test_palette_pngs_round_trip(tmp_path):
    labels = np.zeros((8, 8), dtype=np.uint8)
    labels[2:5, 2:5], labels[6, 6] = 1, 3
    datasets.write_labels(str(tmp_path / "a.png"), labels)
    assert Image.open(tmp_path / "a.png").mode == "P"
    assert np.array_equal(datasets.read_labels(str(tmp_path / "a.png")), labels)
    assert datasets.davis_palette()[1].tolist() == [128, 0, 0] and datasets.davis_palette()[
        3
    ].tolist() == [128, 128, 0]
    with pytest.raises(datasets.LayoutError, match="RGB"):
        Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
        datasets.read_labels(str(tmp_path / "rgb.png"))
