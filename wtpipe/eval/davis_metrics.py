"""DAVIS-2017 semi-supervised metrics, as the official ``davis2017-evaluation`` toolkit computes them.

J is the region IoU of one object's mask per frame (1 when both are empty). F is the boundary
F-measure: one-pixel boundary maps (a pixel differs from its east, south or south-east
neighbour), each matched within a disk of radius ceil(0.008 * image diagonal) of the other's.
Per object, the frames between the first and the last are scored; the statistics are the mean,
the recall (fraction of frames > 0.5) and the decay (mean of the first quarter minus the last);
the benchmark's J&F is the mean over objects of (J mean + F mean) / 2.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage

BOUND_TH = 0.008


def jaccard(truth: np.ndarray, pred: np.ndarray) -> float:
    truth, pred = truth.astype(bool), pred.astype(bool)
    union = np.logical_or(truth, pred).sum()
    return 1.0 if union == 0 else float(np.logical_and(truth, pred).sum() / union)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """Pixels whose value differs from the east, south or south-east neighbour (the last row
    compares east only, the last column south only; the corner is never boundary)."""
    seg = mask.astype(bool)
    east, south, south_east = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    east[:, :-1], south[:-1, :], south_east[:-1, :-1] = seg[:, 1:], seg[1:, :], seg[1:, 1:]
    edge = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    edge[-1, :] = seg[-1, :] ^ east[-1, :]
    edge[:, -1] = seg[:, -1] ^ south[:, -1]
    edge[-1, -1] = False
    return edge


def disk(radius: int) -> np.ndarray:
    """A digital disk: offsets with dy^2 + dx^2 <= r^2 (scikit-image's ``morphology.disk``)."""
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (x * x + y * y) <= radius * radius


def f_measure(truth: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> float:
    radius = bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(*pred.shape))
    pred_edge, truth_edge = boundary_map(pred), boundary_map(truth)
    structure = disk(int(radius))
    pred_near = scipy.ndimage.binary_dilation(pred_edge, structure)
    truth_near = scipy.ndimage.binary_dilation(truth_edge, structure)
    n_pred, n_truth = pred_edge.sum(), truth_edge.sum()
    if n_pred == 0 or n_truth == 0:  # the toolkit's conventions for empty boundaries
        precision, recall = (1.0 if n_pred == 0 else 0.0), (1.0 if n_truth == 0 else 0.0)
    else:
        precision = (pred_edge & truth_near).sum() / n_pred
        recall = (truth_edge & pred_near).sum() / n_truth
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def statistics(per_frame: np.ndarray) -> tuple[float, float, float]:
    """(mean, recall, decay) of one object's per-frame scores."""
    values = np.asarray(per_frame, dtype=np.float64)
    mean, recall = float(np.nanmean(values)), float(np.nanmean(values > 0.5))
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(int)
    bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
    return mean, recall, float(np.nanmean(bins[0]) - np.nanmean(bins[3]))


def evaluate_sequence(truth: np.ndarray, pred: np.ndarray) -> dict[int, dict[str, float]]:
    """``truth``/``pred`` (T, H, W) label maps (0 background); objects are the labels of the first
    ground-truth frame; frames 1 .. T-2 are scored. Returns {object: {J, J_recall, J_decay, F, ...}}."""
    objects = [int(v) for v in np.unique(truth[0]) if v not in (0, 255)]
    frames = range(1, len(truth) - 1)
    out = {}
    for obj in objects:
        j = np.array([jaccard(truth[t] == obj, pred[t] == obj) for t in frames])
        f = np.array([f_measure(truth[t] == obj, pred[t] == obj) for t in frames])
        (jm, jr, jd), (fm, fr, fd) = statistics(j), statistics(f)
        out[obj] = {
            "J": jm,
            "J_recall": jr,
            "J_decay": jd,
            "F": fm,
            "F_recall": fr,
            "F_decay": fd,
            "J&F": (jm + fm) / 2,
        }
    return out
