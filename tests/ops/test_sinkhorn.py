"""Sinkhorn in log space: exact marginals, finite for extreme logits, equal to the textbook
probability-domain iteration wherever that one is still finite."""

from __future__ import annotations

import pytest
import torch

from wtpipe.ops.sinkhorn import sinkhorn


def probability_domain(logits: torch.Tensor, epsilon: float, iterations: int) -> torch.Tensor:
    """The textbook iteration, in float64 (finite only for bounded logits)."""
    q = torch.exp(logits.double() / epsilon)
    n, k = q.shape[-2:]
    for _ in range(iterations):
        q = q / q.sum(dim=-1, keepdim=True) / n
        q = q / q.sum(dim=-2, keepdim=True) / k
    return q


def marginals(plan: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return plan.sum(dim=-1), plan.sum(dim=-2)


@pytest.mark.parametrize("scale", [1.0, 12.0, 50.0])
def test_marginals_hold_and_nothing_overflows(scale):
    torch.manual_seed(0)
    logits = (torch.rand(4, 196, 3) * 2 - 1) * scale
    plan = sinkhorn(logits, epsilon=0.05, iterations=3000)  # near-hard assignments converge slowly
    rows, cols = marginals(plan)
    assert torch.isfinite(plan).all()
    assert torch.allclose(cols, torch.full_like(cols, 1 / 3), atol=1e-4)
    assert torch.allclose(rows, torch.full_like(rows, 1 / 196), atol=1e-4)


@pytest.mark.parametrize("scale", [12.0, 50.0])
def test_official_settings_stay_finite_where_the_probability_domain_breaks(scale):
    torch.manual_seed(1)
    logits = (torch.rand(2, 196, 3) * 2 - 1) * scale
    plan = sinkhorn(logits)  # 30 iterations, eps 0.05
    assert torch.isfinite(plan).all()
    cols = plan.sum(dim=-2)
    assert torch.allclose(cols, torch.full_like(cols, 1 / 3), atol=1e-4)
    naive = torch.exp(logits.float() / 0.05)
    assert not torch.isfinite(naive / naive.sum(dim=-1, keepdim=True)).all()


def test_under_bf16_autocast_the_plan_is_fp32_and_finite():
    logits = (torch.rand(2, 64, 3) * 2 - 1) * 50
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plan = sinkhorn(logits.bfloat16(), iterations=3000)
    assert plan.dtype == torch.float32 and torch.isfinite(plan).all()
    rows, cols = marginals(plan)
    assert torch.allclose(cols, torch.full_like(cols, 1 / 3), atol=1e-4)
    assert torch.allclose(rows, torch.full_like(rows, 1 / 64), atol=1e-4)


def test_matches_the_probability_domain_on_bounded_inputs():
    torch.manual_seed(2)
    cosine = torch.nn.functional.normalize(torch.randn(3, 49, 8), dim=-1)
    prototypes = torch.nn.functional.normalize(torch.randn(3, 4, 8), dim=-1)
    logits = cosine @ prototypes.transpose(-1, -2)  # in [-1, 1], as in DoRA
    assert torch.allclose(sinkhorn(logits, 0.05, 30).double(), probability_domain(logits, 0.05, 30), atol=1e-6)


def test_no_gradient_flows():
    logits = torch.randn(10, 3, requires_grad=True)
    assert not sinkhorn(logits).requires_grad
