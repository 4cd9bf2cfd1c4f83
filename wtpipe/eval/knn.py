"""Weighted k-NN classification of frozen features, as DINO's ``eval_knn.py``.

Features are L2-normalised; each of the k most cosine-similar training features votes for its
class with weight exp(similarity / T), T = 0.07. Top-5 counts a hit among the five classes with
the largest vote (fewer when k < 5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wtpipe.eval.settings import KS, TEMPERATURE


def knn_votes(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    test: torch.Tensor,
    k: int,
    classes: int,
    temperature: float = TEMPERATURE,
    chunk: int = 1024,
) -> torch.Tensor:
    """(test, classes) summed votes; ``train``/``test`` need not be normalised."""
    train, test = F.normalize(train.float(), dim=1), F.normalize(test.float(), dim=1)
    k = min(k, len(train))
    votes = []
    for start in range(0, len(test), chunk):
        similarity, index = (test[start : start + chunk] @ train.T).topk(k, dim=1)
        weight = (similarity / temperature).exp()
        one_hot = F.one_hot(train_labels[index], classes).float()  # (n, k, classes)
        votes.append((one_hot * weight.unsqueeze(-1)).sum(1))
    return torch.cat(votes)


def topk_accuracy(
    votes: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)
) -> dict[int, float]:
    """Percent of rows whose label is among the ``k`` highest-voted classes (ties: lower class first)."""
    order = votes.argsort(dim=1, descending=True, stable=True)
    hits = order == labels[:, None]
    return {k: 100.0 * hits[:, :k].any(1).float().mean().item() for k in ks}


def knn_eval(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    test: torch.Tensor,
    test_labels: torch.Tensor,
    classes: int,
    ks: tuple[int, ...] = KS,
    temperature: float = TEMPERATURE,
) -> dict[str, float]:
    """{"top1_k10": ..., "top5_k10": ..., ...} for every k (k is capped at the training set size)."""
    out = {}
    for k in ks:
        votes = knn_votes(train, train_labels, test, k, classes, temperature)
        acc = topk_accuracy(votes, test_labels, (1, min(5, k)))
        out[f"top1_k{k}"], out[f"top5_k{k}"] = acc[1], acc[min(5, k)]
    return out
