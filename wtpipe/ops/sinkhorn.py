"""Sinkhorn-Knopp assignments with uniform marginals, in the log domain.

Convention of SwAV and DoRA: ``n`` samples (patches) are assigned to ``k`` prototypes; each
iteration first gives every prototype the same total mass, then every sample the same mass, and
the result is scaled so that **each sample's row sums to 1** (an assignment). Ending on the sample
update makes the row sums exact; the prototype totals converge towards ``n / k``.

The probability-domain iteration (``exp(logits / eps)`` then normalisations) overflows or
underflows whole rows once logits leave the bounded-cosine range: with eps = 0.05, logits of
+-12 already give exp(+-240), and DoRA's raw prototypes give logits of several units. Working
with log-sum-exp keeps every iterate finite for any finite logits; where the probability domain
is finite the two agree. Computed in float64 (n x k is tiny: 196 x 3 per image; in fp32, scores
of ~100 already move the plan by 1e-5 over 30 iterations), returned in fp32, never under
autocast, never with grad.
"""

from __future__ import annotations

import math

import torch


@torch.no_grad()
def sinkhorn(logits: torch.Tensor, epsilon: float = 0.05, iterations: int = 30) -> torch.Tensor:
    """Assignments (..., n, k) for ``logits`` (..., n, k): rows sum to 1, columns to about n / k.

    ``epsilon`` is the entropic regularisation (the official DoRA value is 0.05, 30 iterations).
    """
    if iterations < 1:
        raise ValueError(f"sinkhorn needs at least one iteration, got {iterations}")
    device_type = logits.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        scores = logits.double() / epsilon
        n, k = scores.shape[-2:]
        log_row, log_col = -math.log(n), -math.log(k)
        u = torch.zeros(
            scores.shape[:-1], dtype=scores.dtype, device=scores.device
        )  # (..., n): per-sample log scale
        for _ in range(iterations - 1):
            v = log_col - torch.logsumexp(
                scores + u.unsqueeze(-1), dim=-2
            )  # prototypes: mass 1/k each
            u = log_row - torch.logsumexp(
                scores + v.unsqueeze(-2), dim=-1
            )  # samples: mass 1/n each
        v = log_col - torch.logsumexp(scores + u.unsqueeze(-1), dim=-2)
        # The last sample update, scaled to rows of 1, is a softmax over each row: exact row sums.
        return torch.softmax(scores + v.unsqueeze(-2), dim=-1).float()
