"""DINOLoss against the paper's equations, computed independently with numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wtpipe.losses.dino import DINOLoss


def reference_loss(
    student: list[np.ndarray],
    teacher: list[np.ndarray],
    center: np.ndarray,
    t_temp: float,
    s_temp: float,
) -> float:
    """H(P_t(x_i), P_s(x_v)) averaged over i in global views, v in all views, v != i."""

    def softmax(z):
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    p_t = np.stack([softmax((t - center) / t_temp) for t in teacher])  # (G, B, K)
    log_p_s = np.stack([np.log(softmax(s / s_temp)) for s in student])  # (V, B, K)
    cross = -np.einsum("gbk,vbk->gvb", p_t, log_p_s).mean(axis=-1)  # (G, V)
    mask = np.ones_like(cross, dtype=bool)
    for g in range(len(teacher)):
        mask[g, g] = False
    return float(cross[mask].mean())


def test_loss_matches_the_reference_and_centre_moves_after():
    rng = np.random.default_rng(0)
    batch, dim = 6, 32
    teacher = [rng.normal(size=(batch, dim)).astype(np.float32) for _ in range(2)]
    student = [rng.normal(size=(batch, dim)).astype(np.float32) for _ in range(6)]
    loss_fn = DINOLoss(
        dim, warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_teacher_temp_epochs=3
    )
    loss_fn.center.copy_(torch.from_numpy(rng.normal(size=(1, dim)).astype(np.float32)))
    center = loss_fn.center.numpy().copy()
    loss = loss_fn(
        [torch.from_numpy(s) for s in student], [torch.from_numpy(t) for t in teacher], epoch=1
    )
    assert abs(loss.item() - reference_loss(student, teacher, center, 0.055, 0.1)) < 1e-4
    expected_center = 0.9 * center + 0.1 * np.concatenate(teacher).mean(axis=0, keepdims=True)
    np.testing.assert_allclose(loss_fn.center.numpy(), expected_center, rtol=1e-5, atol=1e-6)


def test_teacher_temperature_warms_up_per_epoch():
    loss_fn = DINOLoss(
        8, warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_teacher_temp_epochs=30
    )
    assert loss_fn.teacher_temp_at(0) == 0.04
    assert abs(loss_fn.teacher_temp_at(29) - 0.07) < 1e-12
    assert loss_fn.teacher_temp_at(100) == 0.07
    assert abs(loss_fn.teacher_temp_at(15) - np.linspace(0.04, 0.07, 30)[15]) < 1e-12


def test_gradient_flows_to_the_student_only():
    teacher = [torch.randn(4, 16, requires_grad=True) for _ in range(2)]
    student = [torch.randn(4, 16, requires_grad=True) for _ in range(4)]
    DINOLoss(16)(student, teacher, epoch=0).backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)
    assert all(t.grad is None for t in teacher)


def test_koleo_adds_dinov2s_sum_over_the_two_global_views(train_shards):
    """``method.koleo``: DINOv2's term, a sum of KoLeo over each global view's [CLS] features
    (never between two views of the same image), times the weight; 0 leaves DINO's loss alone."""
    from wtpipe.config import load_config
    from wtpipe.data.index import ShardIndex
    from wtpipe.data.loader import ClipDataset
    from wtpipe.methods.dino import DINOMethod
    from wtpipe.ops.koleo import koleo_loss
    from wtpipe.train.config import TrainConfig

    from ..train.runs import TINY

    losses = {}
    for weight in (0.0, 0.1):
        config = load_config(
            TrainConfig, None, [f"data.shards={train_shards}", *TINY, f"method.koleo={weight}"]
        )
        torch.manual_seed(0)
        method = DINOMethod(config)
        dataset = ClipDataset(ShardIndex.build(train_shards), 1, 1, method.views())
        batch = method.collate([dataset[(i, 0)] for i in range(4)])
        losses[weight], logs = method.loss(method.student, batch, epoch=0)
    features = method.student.features.detach()
    assert features.shape == (8, 192)  # 2 global views x 4 images
    expected = koleo_loss(features[:4]) + koleo_loss(features[4:])
    assert logs["koleo"].item() == pytest.approx(
        0.1 * expected.item(), rel=1e-5
    )  # the weighted term
    assert (losses[0.1] - losses[0.0]).item() == pytest.approx(0.1 * expected.item(), rel=1e-4)
