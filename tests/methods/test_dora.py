"""DoRALoss: the paper's formula by default; the official code's quirks, exactly, when faithful."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wtpipe.losses.dora import DoRALoss

K_OBJ, T, L, B, DIM = 3, 8, 4, 2, 16


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(K_OBJ, T, B, DIM, generator=g),
        torch.randn(T, L, B, DIM, generator=g),
        torch.randn(T, B, DIM, generator=g),
    )


def h(p: np.ndarray, s: np.ndarray) -> float:
    log_s = s / 0.1 - np.log(np.exp(s / 0.1).sum(-1, keepdims=True))
    return float((-(p * log_s).sum(-1)).mean())


def term_table(masked, local, teacher, skip_first_local: bool) -> np.ndarray:
    """(k, T) table of 0.5 * (mask term + mean local term), in numpy."""
    z = teacher.numpy() / 0.04
    probs = np.exp(z - z.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    first = 1 if skip_first_local else 0
    table = np.zeros((K_OBJ, T))
    for i in range(K_OBJ):
        for t in range(T):
            local_term = np.mean([h(probs[t], local[t, v].numpy()) for v in range(first, L)])
            table[i, t] = 0.5 * (h(probs[t], masked[i, t].numpy()) + local_term)
    return table


def test_default_is_the_mean_over_objects_and_frames():
    masked, local, teacher = inputs()
    loss = DoRALoss(DIM)(masked, local, teacher, epoch=0)
    assert loss.item() == pytest.approx(term_table(masked, local, teacher, False).mean(), rel=1e-5)


def test_faithful_reproduces_the_official_object_weights_and_skipped_crop():
    masked, local, teacher = inputs()
    table = term_table(masked, local, teacher, skip_first_local=True)
    per_object = table.mean(axis=1)  # each object's mean over frames
    weights = np.array([1 + 1 / T + 1 / T**2, 1 + 1 / T, 1.0]) / K_OBJ  # 0.380, 0.375, 0.333
    assert np.round(weights, 3).tolist() == [0.380, 0.375, 0.333]
    loss = DoRALoss(DIM, faithful=True)(masked, local, teacher, epoch=0)
    assert loss.item() == pytest.approx(float((weights * per_object).sum()), rel=1e-5)


def test_the_modes_differ_exactly_in_the_first_local_crop_and_object_weights():
    masked, local, teacher = inputs(1)
    changed = local.clone()
    changed[:, 0] = 3 * torch.randn_like(changed[:, 0])  # a different first local crop
    faithful = DoRALoss(DIM, faithful=True)
    assert faithful(masked, changed, teacher, 0).item() == pytest.approx(
        DoRALoss(DIM, faithful=True)(masked, local, teacher, 0).item(), rel=1e-6
    )
    assert DoRALoss(DIM)(masked, changed, teacher, 0).item() != pytest.approx(
        DoRALoss(DIM)(masked, local, teacher, 0).item(), rel=1e-3
    )
    same = masked[:1].expand(K_OBJ, -1, -1, -1)  # identical objects and identical local crops:
    same_local = local[:, :1].expand(-1, L, -1, -1)  # only the object weights still differ
    ratio = DoRALoss(DIM, faithful=True)(same, same_local, teacher, 0) / DoRALoss(DIM)(
        same, same_local, teacher, 0
    )
    assert ratio.item() == pytest.approx((3 + 2 / T + 1 / T**2) / 3, rel=1e-5)


def test_centre_is_taken_over_all_frames_and_gradients_reach_the_student_only():
    masked, local, teacher = inputs()
    masked.requires_grad_(True)
    teacher.requires_grad_(True)
    loss_fn = DoRALoss(DIM)
    loss_fn(masked, local, teacher, 0).backward()
    expected = 0.1 * teacher.detach().reshape(-1, DIM).mean(0, keepdim=True)
    assert torch.allclose(loss_fn.center, expected, atol=1e-6)
    assert masked.grad is not None and teacher.grad is None
