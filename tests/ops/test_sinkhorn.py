"""Sinkhorn in log space: the SwAV/DoRA convention (prototype totals first, each sample's row
last and summing to 1), finite for extreme logits, equal to the probability-domain iteration of
the official code wherever that one is still finite."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wtpipe.ops.sinkhorn import sinkhorn


def probability_domain(
    logits: np.ndarray, epsilon: float, iterations: int, samples_first: bool = False
) -> np.ndarray:
    """The official iteration, re-derived in float64 numpy on (k, n) = prototypes x samples:
    exp of the max-shifted scores, total mass 1, then per iteration every prototype's row to 1/k
    and every sample's column to 1/n; finally columns scaled to sum to 1."""
    scores = logits.astype(np.float64) / epsilon
    q = np.exp(scores - scores.max(axis=(-2, -1), keepdims=True)).swapaxes(-2, -1)  # (..., k, n)
    q = q / q.sum(axis=(-2, -1), keepdims=True)
    k, n = q.shape[-2:]
    for _ in range(iterations):
        if samples_first:  # the other order, to show that the test can tell them apart
            q = q / q.sum(axis=-2, keepdims=True) / n
        q = q / q.sum(axis=-1, keepdims=True) / k
        if not samples_first:
            q = q / q.sum(axis=-2, keepdims=True) / n
    return (q * n).swapaxes(-2, -1)


def marginals(plan: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return plan.sum(dim=-1), plan.sum(dim=-2)


@pytest.mark.parametrize("scale", [1.0, 12.0, 50.0])
def test_marginals_hold_and_nothing_overflows(scale):
    torch.manual_seed(0)
    logits = (torch.rand(4, 196, 3) * 2 - 1) * scale
    plan = sinkhorn(logits, epsilon=0.05, iterations=3000)  # near-hard assignments converge slowly
    rows, cols = marginals(plan)
    assert torch.isfinite(plan).all()
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-4)
    assert torch.allclose(cols, torch.full_like(cols, 196 / 3), rtol=1e-4)


@pytest.mark.parametrize("scale", [12.0, 50.0])
def test_official_settings_stay_finite_where_the_probability_domain_breaks(scale):
    torch.manual_seed(1)
    logits = (torch.rand(2, 196, 3) * 2 - 1) * scale
    plan = sinkhorn(logits)  # 30 iterations, eps 0.05
    assert torch.isfinite(plan).all()
    rows = plan.sum(dim=-1)
    assert torch.allclose(
        rows, torch.ones_like(rows), atol=1e-5
    )  # the last update is over samples: exact
    naive = torch.exp(logits.float() / 0.05)
    assert not torch.isfinite(naive / naive.sum(dim=-1, keepdim=True)).all()


def test_under_bf16_autocast_the_plan_is_fp32_and_finite():
    logits = (torch.rand(2, 64, 3) * 2 - 1) * 50
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plan = sinkhorn(logits.bfloat16(), iterations=3000)
    assert plan.dtype == torch.float32 and torch.isfinite(plan).all()
    rows, cols = marginals(plan)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-4)
    assert torch.allclose(cols, torch.full_like(cols, 64 / 3), rtol=1e-4)


@pytest.mark.parametrize("prototype_norm", [1.0, 4.0])
def test_matches_the_official_iteration(prototype_norm):
    """Cosine logits as refinement with unit prototypes, and DoRA's raw prototypes (norm ~4 on real
    frames): 30 iterations do not converge, so the order of the updates matters, and it matches."""
    torch.manual_seed(2)
    features = torch.nn.functional.normalize(torch.randn(3, 49, 8), dim=-1)
    prototypes = prototype_norm * torch.nn.functional.normalize(torch.randn(3, 4, 8), dim=-1)
    logits = features @ prototypes.transpose(-1, -2)
    expected = probability_domain(logits.numpy(), 0.05, 30)
    np.testing.assert_allclose(sinkhorn(logits, 0.05, 30).numpy(), expected, atol=1e-6)
    if prototype_norm > 1:
        other_order = probability_domain(logits.numpy(), 0.05, 30, samples_first=True)
        assert np.abs(other_order - expected).max() > 1e-3


def test_no_gradient_flows_and_zero_iterations_are_refused():
    logits = torch.randn(10, 3, requires_grad=True)
    assert not sinkhorn(logits).requires_grad
    with pytest.raises(ValueError, match="at least one iteration"):
        sinkhorn(logits, iterations=0)


def _rank_plan(rank: int, world: int, init: str, parts: list[torch.Tensor], out: str) -> None:
    """One process of a gloo group: its rows' plan, solved as one problem with the other ranks."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        torch.save(sinkhorn(parts[rank], 0.05, 3, distributed=True), f"{out}/{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("sizes", [(24, 24), (16, 8, 24)], ids=["2 ranks", "3 uneven ranks"])
def test_distributed_plan_equals_the_plan_of_the_concatenated_batch(tmp_path, sizes):
    """SwAV's setting (3 iterations, cosine scores, 3,000-like prototype count scaled down): real
    processes, each with its own rows; their plans stacked equal the single-process plan of all
    rows, and the official iteration on all rows."""
    import torch.multiprocessing as mp

    torch.manual_seed(3)
    z = torch.nn.functional.normalize(torch.randn(sum(sizes), 16), dim=1)
    logits = z @ torch.nn.functional.normalize(torch.randn(40, 16), dim=1).t()
    parts = list(logits.split(list(sizes)))
    init = f"file://{tmp_path}/rendezvous"
    mp.spawn(_rank_plan, args=(len(sizes), init, parts, str(tmp_path)), nprocs=len(sizes))
    stacked = torch.cat(
        [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in range(len(sizes))]
    )
    whole = sinkhorn(logits, 0.05, 3)
    torch.testing.assert_close(stacked, whole, rtol=0, atol=1e-7)
    np.testing.assert_allclose(
        stacked.numpy(), probability_domain(logits.numpy(), 0.05, 3), atol=1e-6
    )
    alone = torch.cat(
        [sinkhorn(p, 0.05, 3) for p in parts]
    )  # what ranks without the sums would get
    assert (alone - whole).abs().max() > 1e-3
