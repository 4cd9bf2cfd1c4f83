"""Sinkhorn-Knopp optimal transport with uniform marginals, in the log domain.

The probability-domain iteration (``exp(logits / eps)`` then row/column normalisation)
overflows or underflows whole columns once logits leave the bounded-cosine range: with
eps = 0.05, logits of +-12 already give exp(+-240). Working with log-sum-exp keeps every
iterate finite for any finite logits. Always fp32, never under autocast, never with grad.
"""

from __future__ import annotations

import math

import torch


@torch.no_grad()
def sinkhorn(logits: torch.Tensor, epsilon: float = 0.05, iterations: int = 30) -> torch.Tensor:
    """Transport plan for ``logits`` (..., n, k): rows sum to 1/n, columns to 1/k.

    ``epsilon`` is the entropic regularisation (the official DoRA value is 0.05, 30 iterations).
    The last update is over columns, so column sums are exact and row sums converge.
    """
    device_type = logits.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        scores = logits.float() / epsilon
        n, k = scores.shape[-2:]
        log_row, log_col = -math.log(n), -math.log(k)
        u = torch.zeros(scores.shape[:-1], device=scores.device)  # (..., n)
        v = torch.zeros((*scores.shape[:-2], k), device=scores.device)  # (..., k)
        for _ in range(iterations):
            u = log_row - torch.logsumexp(scores + v.unsqueeze(-2), dim=-1)
            v = log_col - torch.logsumexp(scores + u.unsqueeze(-1), dim=-2)
        return torch.exp(scores + u.unsqueeze(-1) + v.unsqueeze(-2))
