"""Semantic segmentation scores from a confusion matrix, as mmseg reports them: per-class IoU and
accuracy, mIoU and mAcc over the classes that occur (a class absent from both truth and
prediction has no IoU and is left out of the mean), and aAcc over all labelled pixels."""

from __future__ import annotations

import torch

IGNORE = 255


def confusion(
    predicted: torch.Tensor, truth: torch.Tensor, num_classes: int, ignore_index: int = IGNORE
) -> torch.Tensor:
    """(C, C) int64 counts, rows = truth, columns = prediction; pixels labelled ``ignore_index`` are skipped."""
    keep = truth != ignore_index
    truth, predicted = truth[keep].long(), predicted[keep].long()
    if truth.numel() and (int(truth.max()) >= num_classes or int(truth.min()) < 0):
        raise ValueError(
            f"labels outside 0..{num_classes - 1} (and {ignore_index}): {sorted(set(truth.unique().tolist()))[:10]}"
        )
    return torch.bincount(
        truth * num_classes + predicted, minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)


def scores(matrix: torch.Tensor) -> dict[str, object]:
    """mIoU, mAcc, aAcc (percent) and per-class IoU / accuracy (NaN where the class never occurs)."""
    matrix = matrix.double()
    hits = matrix.diag()
    union = matrix.sum(0) + matrix.sum(1) - hits
    iou = torch.where(union > 0, hits / union.clamp(min=1), torch.full_like(hits, float("nan")))
    total = matrix.sum(1)
    acc = torch.where(total > 0, hits / total.clamp(min=1), torch.full_like(hits, float("nan")))
    return {
        "mIoU": 100 * float(iou.nanmean()),
        "mAcc": 100 * float(acc.nanmean()),
        "aAcc": 100 * float(hits.sum() / matrix.sum().clamp(min=1)),
        "IoU": (100 * iou).tolist(),
        "Acc": (100 * acc).tolist(),
    }
