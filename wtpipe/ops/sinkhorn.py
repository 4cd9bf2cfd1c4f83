"""Sinkhorn-Knopp assignments with uniform marginals, in the log domain.

Convention of SwAV and DoRA: ``n`` samples (patches) are assigned to ``k`` prototypes; each
iteration first gives every prototype the same total mass, then every sample the same mass, and
the result is scaled so that **each sample's row sums to 1** (an assignment). Ending on the sample
update makes the row sums exact; the prototype totals converge towards ``n / k``.

The probability-domain iteration (``exp(logits / eps)`` then normalisations) overflows or
underflows whole rows once logits leave the bounded-cosine range: with eps = 0.05, logits of
+-12 already give exp(+-240), and DoRA's raw prototypes give logits of several units. Working
with log-sum-exp keeps every iterate finite for any finite logits; where the probability domain
is finite the two agree. Computed in float64 (n x k is small: 196 x 3 per image for DoRA, a few
thousand x 3,000 for SwAV; in fp32, scores of ~100 already move the plan by 1e-5 over 30
iterations), returned in fp32, never under autocast, never with grad.

``distributed=True`` (SwAV): the samples are split over the ranks of the default process group,
and each prototype's total is summed over all of them (an all-gather of the per-rank log-sums),
so every rank gets its rows of the plan of the whole batch.
"""

from __future__ import annotations

import math

import torch

from wtpipe.ops.dist import gather, world


def _over_ranks(log_sums: torch.Tensor) -> torch.Tensor:
    """Per-rank log-sum-exps (..., k) -> the log-sum-exp over every rank's samples."""
    return log_sums if world()[1] == 1 else torch.logsumexp(gather(log_sums), dim=0)


@torch.no_grad()
def sinkhorn(
    logits: torch.Tensor, epsilon: float = 0.05, iterations: int = 30, distributed: bool = False
) -> torch.Tensor:
    """Assignments (..., n, k) for ``logits`` (..., n, k): rows sum to 1, columns to about n / k.

    ``epsilon`` is the entropic regularisation (the official DoRA value is 0.05 with 30
    iterations; SwAV's 0.05 with 3); ``distributed``: the rows of every rank form one problem.
    """
    if iterations < 1:
        raise ValueError(f"sinkhorn needs at least one iteration, got {iterations}")
    device_type = logits.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        scores = logits.double() / epsilon
        n, k = scores.shape[-2:]
        # Each sample's mass, 1/n, only shifts u by a constant that the final softmax removes; it
        # must be the same constant on every rank, and ranks may hold different counts: there, 1.
        log_row, log_col = 0.0 if distributed else -math.log(n), -math.log(k)
        prototype_sums = _over_ranks if distributed else (lambda log_sums: log_sums)
        u = torch.zeros(
            scores.shape[:-1], dtype=scores.dtype, device=scores.device
        )  # (..., n): per-sample log scale
        for _ in range(iterations - 1):
            # prototypes: mass 1/k each, then samples: the same mass each
            v = log_col - prototype_sums(torch.logsumexp(scores + u.unsqueeze(-1), dim=-2))
            u = log_row - torch.logsumexp(scores + v.unsqueeze(-2), dim=-1)
        v = log_col - prototype_sums(torch.logsumexp(scores + u.unsqueeze(-1), dim=-2))
        # The last sample update, scaled to rows of 1, is a softmax over each row: exact row sums.
        return torch.softmax(scores + v.unsqueeze(-2), dim=-1).float()
