"""Does the [CLS] attention follow objects? DINO's attention-mask Jaccard (DINO paper, Fig. 4).

Each head's last-block [CLS] attention over the patches is cut to the smallest set of patches that
holds ``keep`` (60 %) of its mass, as DINO's ``visualize_attention.py`` does; each ground-truth
object is scored against every head's mask by the Jaccard index and keeps its best head, as the
authors described their evaluation (facebookresearch/dino issue 54). An image scores the mean over
its objects; the metric is the mean over images. Random weights score about 10 in the paper.
"""

from __future__ import annotations

import numpy as np


def mass_masks(attention: np.ndarray, keep: float = 0.6) -> np.ndarray:
    """(heads, P) attention -> (heads, P) bool: per head, the largest weights until ``keep`` of the
    mass is reached, the patch that crosses it included (a patch is kept when the mass of the
    patches ranked above it is below ``keep``)."""
    order = np.argsort(-attention, axis=1, kind="stable")
    ranked = np.take_along_axis(attention, order, axis=1).astype(np.float64)
    ranked /= ranked.sum(axis=1, keepdims=True)
    above = np.cumsum(ranked, axis=1) - ranked
    masks = np.zeros(attention.shape, dtype=bool)
    np.put_along_axis(masks, order, above < keep, axis=1)
    return masks


def best_head_jaccard(heads: np.ndarray, objects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``heads`` (H, h, w) and ``objects`` (O, h, w) bool -> each object's best Jaccard index over
    the heads (O,) and which head gave it (O,)."""
    inter = np.einsum("hyx,oyx->oh", heads.astype(np.int64), objects.astype(np.int64))
    union = heads.sum((1, 2))[None, :] + objects.sum((1, 2))[:, None] - inter
    jaccard = inter / np.maximum(union, 1)
    return jaccard.max(axis=1), jaccard.argmax(axis=1)
