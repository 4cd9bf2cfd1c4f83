"""Segmentation scores against a confusion matrix computed by hand, and against torchmetrics."""

from __future__ import annotations

import math

import pytest
import torch

from wtpipe.finetune.seg_metrics import IGNORE, confusion, scores


def test_confusion_and_scores_match_a_hand_computed_matrix():
    truth = torch.tensor([[0, 0, 1, 1], [2, 2, IGNORE, 0]])
    predicted = torch.tensor(
        [[0, 1, 1, 1], [2, 0, 3, 0]]
    )  # the ignored pixel's prediction does not count
    matrix = confusion(predicted, truth, num_classes=4)
    assert matrix.tolist() == [
        [2, 1, 0, 0],  # truth 0: three pixels, one taken for 1
        [0, 2, 0, 0],
        [1, 0, 1, 0],  # truth 2: one right, one taken for 0
        [0, 0, 0, 0],
    ]  # class 3 never occurs, nor is it predicted
    result = scores(matrix)
    # IoU = TP / (TP + FP + FN): 0: 2/(2+1+1), 1: 2/(2+1+0), 2: 1/(1+0+1); class 3 has none.
    assert result["IoU"][:3] == pytest.approx([50.0, 200 / 3, 50.0])
    assert math.isnan(result["IoU"][3])
    assert result["mIoU"] == pytest.approx((50 + 200 / 3 + 50) / 3)
    assert result["Acc"][:3] == pytest.approx([200 / 3, 100.0, 50.0])
    assert result["aAcc"] == pytest.approx(100 * 5 / 7)


def test_labels_outside_the_classes_are_refused():
    with pytest.raises(ValueError, match="outside 0..2"):
        confusion(torch.tensor([0, 1]), torch.tensor([0, 5]), num_classes=3)


def test_per_class_iou_equals_torchmetrics_on_random_maps():
    torchmetrics = pytest.importorskip("torchmetrics")
    generator = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 6, (3, 40, 50), generator=generator)
    truth[truth == 5] = IGNORE
    predicted = torch.randint(0, 5, (3, 40, 50), generator=generator)
    metric = torchmetrics.classification.MulticlassJaccardIndex(
        num_classes=5, average="none", ignore_index=IGNORE
    )
    expected = 100 * metric(predicted, truth)
    assert torch.tensor(scores(confusion(predicted, truth, 5))["IoU"]) == pytest.approx(
        expected.double(), abs=1e-4
    )
