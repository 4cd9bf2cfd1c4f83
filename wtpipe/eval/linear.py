"""Linear probe on frozen features, as DINO's ``eval_linear.py`` trains its classifier.

One linear layer (weights N(0, 0.01), zero bias) on the frozen features, cross-entropy, SGD with
momentum 0.9 and no weight decay, learning rate scaled by batch / 256 and annealed to 0 by a
cosine over the epochs. Unlike DINO, the features are computed once from the evaluation view
(no random-resized-crop/flip augmentation per epoch): the probe then trains in seconds, and
reads the representation rather than augmentation-robustness (docs: evaluation, deliberate differences).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from wtpipe.eval.knn import topk_accuracy


@dataclass
class ProbeConfig:
    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.01  # at batch 256
    seed: int = 0


def train_probe(
    train: torch.Tensor, labels: torch.Tensor, classes: int, config: ProbeConfig
) -> nn.Linear:
    generator = torch.Generator().manual_seed(config.seed)
    probe = nn.Linear(train.shape[1], classes)
    with torch.no_grad():
        probe.weight.copy_(torch.randn(probe.weight.shape, generator=generator) * 0.01)
        probe.bias.zero_()
    optimizer = torch.optim.SGD(
        probe.parameters(), lr=config.lr * config.batch_size / 256, momentum=0.9, weight_decay=0.0
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs, eta_min=0)
    for _ in range(config.epochs):
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = nn.functional.cross_entropy(probe(train[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    return probe


def probe_eval(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    val: torch.Tensor,
    val_labels: torch.Tensor,
    classes: int,
    config: ProbeConfig,
) -> tuple[dict[str, float], torch.Tensor]:
    """(top-1/top-5 on val and top-1 on train, in percent; the val logits)."""
    probe = train_probe(train, train_labels, classes, config)
    with torch.no_grad():
        logits = probe(val)
        acc = topk_accuracy(logits, val_labels, (1, 5))
        train_acc = topk_accuracy(probe(train), train_labels, (1,))
    return {"top1": acc[1], "top5": acc[5], "train_top1": train_acc[1]}, logits
