"""Single-object discovery from last-block keys: TokenCut and LOST, scored by CorLoc.

Both take the patch keys of the last attention block (heads concatenated, [CLS] dropped) of one
image on an (h, w) patch grid, and return a box in patch units plus what led to it.

- **TokenCut** (Wang et al. 2022): cosine-similarity graph, edges > tau become 1 and the others
  eps; the second smallest generalised eigenvector of (D - A) x = lambda D x is split at its mean;
  the seed is the patch with the largest |x| (the split is flipped so that the seed is
  foreground); the box bounds the connected foreground component that contains the seed.
- **LOST** (Simeoni et al. 2021): Gram matrix of the raw keys; a patch's degree counts its
  positive correlations; the seed has the lowest degree; among the ``k_patches`` lowest-degree
  patches, those positively correlated with the seed are summed; the box bounds the connected
  positive component of that sum that contains the seed.

The eigenvector comes from ARPACK on the symmetric normalised affinity D^-1/2 A D^-1/2 (same
vectors after a D^-1/2 rescale, about ten times faster than a dense generalised solve);
:func:`tokencut` with ``solver="dense"`` solves the generalised problem directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg
import scipy.ndimage
import scipy.sparse.linalg

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in patches, x2/y2 exclusive


@dataclass
class Discovered:
    box: Box
    seed: int  # flat patch index
    mask: np.ndarray  # (h, w) bool: the component that gave the box
    score: (
        np.ndarray
    )  # (h, w): TokenCut's eigenvector (seed side positive), LOST's seed-expansion sum


def component_box(foreground: np.ndarray, seed: int) -> tuple[Box, np.ndarray]:
    """Box and mask of the 4-connected component of ``foreground`` (h, w) holding ``seed``."""
    labels, _ = scipy.ndimage.label(foreground)
    label = labels.flat[seed]
    if label == 0:
        raise ValueError("the seed patch is not in the foreground")
    mask = labels == label
    rows, cols = np.nonzero(mask)
    return (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1), mask


def second_eigenvector(
    affinity: np.ndarray, solver: Literal["arpack", "dense"] = "arpack"
) -> np.ndarray:
    """The generalised eigenvector of (D - A) x = lambda D x with the second smallest eigenvalue."""
    degree = affinity.sum(1)
    if solver == "dense":
        _, vectors = scipy.linalg.eigh(
            np.diag(degree) - affinity, np.diag(degree), subset_by_index=[1, 1]
        )
        return vectors[:, 0]
    inv_sqrt = 1.0 / np.sqrt(degree)
    normalised = inv_sqrt[:, None] * affinity * inv_sqrt[None, :]
    # Largest eigenvalues of the normalised affinity <-> smallest of the normalised Laplacian.
    start = np.random.default_rng(0).uniform(
        0.5, 1.5, len(degree)
    )  # fixed, so boxes are reproducible
    values, vectors = scipy.sparse.linalg.eigsh(normalised, k=2, which="LA", v0=start)
    return inv_sqrt * vectors[:, np.argsort(values)[0]]


def tokencut(
    keys: np.ndarray,
    grid: tuple[int, int],
    tau: float = 0.2,
    eps: float = 1e-5,
    solver: Literal["arpack", "dense"] = "arpack",
) -> Discovered:
    """``keys`` (h*w, d) patch keys of one image."""
    feats = keys.astype(np.float64)
    feats = feats / np.linalg.norm(feats, axis=1, keepdims=True).clip(1e-12)
    affinity = np.where(feats @ feats.T > tau, 1.0, eps)
    vector = second_eigenvector(affinity, solver)
    seed = int(np.argmax(np.abs(vector)))
    foreground = vector > vector.mean()
    if not foreground[seed]:  # the eigenvector's sign is arbitrary: the seed's side is the object
        vector, foreground = -vector, ~foreground
    box, mask = component_box(foreground.reshape(grid), seed)
    return Discovered(box, seed, mask, vector.reshape(grid))


def lost(keys: np.ndarray, grid: tuple[int, int], k_patches: int = 100) -> Discovered:
    """``keys`` (h*w, d) raw patch keys of one image."""
    feats = keys.astype(np.float64)
    gram = feats @ feats.T
    positive = gram > 0
    np.fill_diagonal(positive, False)
    degree = positive.sum(1)
    order = np.argsort(degree, kind="stable")  # lowest degree first; ties by patch index
    seed = int(order[0])
    candidates = order[:k_patches]
    similar = candidates[gram[seed, candidates] > 0]  # the seed itself is always among them
    expansion = gram[similar].sum(0)
    box, mask = component_box((expansion > 0).reshape(grid), seed)
    return Discovered(box, seed, mask, expansion.reshape(grid))


def to_pixels(
    box: Box, patch: int, image_size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """Patch box -> pixel box (x1, y1, x2, y2), clipped to the image (h, w) that was zero-padded."""
    x1, y1, x2, y2 = box
    return (x1 * patch, y1 * patch, min(x2 * patch, image_size[1]), min(y2 * patch, image_size[0]))


def box_iou(box: np.ndarray, boxes: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """IoU of one (x1, y1, x2, y2) box with each row of ``boxes``, continuous coordinates (LOST's
    ``bbox_iou``, including its eps on the heights and the union)."""
    box, boxes = (
        np.asarray(box, dtype=np.float64),
        np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
    )
    inter_w = (np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])).clip(0)
    inter_h = (np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])).clip(0)
    inter = inter_w * inter_h
    area = (box[2] - box[0]) * (box[3] - box[1] + eps)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1] + eps)
    return inter / (area + areas - inter + eps)


def corloc_hit(
    pred: tuple[float, float, float, float], truth: np.ndarray, threshold: float = 0.5
) -> bool:
    """CorLoc's rule: the predicted box overlaps some ground-truth box with IoU >= 0.5."""
    return bool((box_iou(np.asarray(pred), truth) >= threshold).any())
