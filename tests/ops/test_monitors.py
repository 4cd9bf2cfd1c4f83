"""Collapse monitors tell a uniform teacher, a one-hot teacher and a healthy one apart."""

from __future__ import annotations

import math

import torch

from wtpipe.ops.monitors import collapse, distillation_monitors

K = 256


def scalars(
    teacher: torch.Tensor, student: torch.Tensor, features: torch.Tensor | None = None
) -> dict[str, float]:
    values = distillation_monitors(teacher, torch.zeros(1, K), 0.04, student, 0.1, features)
    return {k: float(v) for k, v in values.items()}


def test_uniform_teacher_is_uniform_collapse():
    s = scalars(torch.zeros(32, K), torch.zeros(32, K))
    assert math.isclose(s["teacher_entropy"], 1.0, abs_tol=1e-5) and math.isclose(
        s["dims_used"], 1.0, abs_tol=1e-5
    )
    assert s["kl"] < 1e-6 and collapse(s, K) == "uniform"


def test_every_sample_on_one_prototype_is_one_hot_collapse():
    teacher = torch.zeros(32, K)
    teacher[:, 7] = 5.0
    s = scalars(teacher, teacher.clone())
    assert s["teacher_entropy"] < 1e-3 and s["dims_used"] * K < 1.01 and collapse(s, K) == "one-hot"


def test_a_peaked_teacher_spread_over_prototypes_is_healthy_and_kl_measures_the_gap():
    generator = torch.Generator().manual_seed(0)
    teacher = torch.randn(64, K, generator=generator) * 0.2
    s = scalars(teacher, torch.zeros(64, K))
    assert 0.1 < s["teacher_entropy"] < 0.9 and s["dims_used"] > 0.1 and collapse(s, K) is None
    assert (
        s["kl"] > 0.5 and scalars(teacher, teacher * 0.1 / 0.04)["kl"] < 1e-5
    )  # a student that matches: nothing left


def test_feature_spread_and_rank():
    generator = torch.Generator().manual_seed(0)
    spread = scalars(
        torch.zeros(64, K), torch.zeros(64, K), torch.randn(64, 32, generator=generator)
    )
    same = scalars(
        torch.zeros(64, K), torch.zeros(64, K), torch.ones(64, 32) + 1e-7 * torch.randn(64, 32)
    )
    low_rank = scalars(
        torch.zeros(64, K),
        torch.zeros(64, K),
        torch.randn(64, 2, generator=generator) @ torch.randn(2, 32, generator=generator),
    )
    assert 0.8 < spread["feature_std"] < 1.2 and spread["feature_rank"] > 0.7
    assert same["feature_std"] < 1e-3
    assert low_rank["feature_rank"] < 2.5 / 32


def test_code_monitors_tell_hard_spread_codes_from_uniform_and_collapsed_ones():
    from wtpipe.ops.monitors import code_monitors

    spread = torch.eye(K)[torch.arange(32) * 7]  # 32 samples on 32 different prototypes
    one = torch.eye(K)[torch.zeros(32, dtype=torch.long)]  # every sample on prototype 0
    uniform = torch.full((32, K), 1 / K)
    s, o, u = (code_monitors(c) for c in (spread, one, uniform))
    assert float(s["code_entropy"]) < 1e-6 and float(s["prototypes_used"]) == 1.0
    assert float(o["prototypes_used"]) == 1 / 32
    assert abs(float(u["code_entropy"]) - 1.0) < 1e-6


def test_uniform_swav_codes_are_named():
    from wtpipe.ops.monitors import REMEDIES, code_monitors

    s = {k: float(v) for k, v in code_monitors(torch.full((32, K), 1 / K)).items()}
    assert collapse(s, K) == "uniform codes" and "method.epsilon" in REMEDIES["uniform codes"]
    assert collapse({"code_entropy": 0.9, "prototypes_used": 1.0}, K) is None
