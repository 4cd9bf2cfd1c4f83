"""KoLeo: DINOv2's regulariser that spreads a batch of features over the sphere.

Minus the mean log distance from each L2-normalised row to its nearest other row (the
Kozachenko-Leonenko entropy estimate, Sablayrolles et al. 2018). The tiny CPU runs lose feature
rank as their loss falls; this term pushes back. Neither DINO nor DoRA uses it: ``method.koleo``
is 0 by default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nearest_other(x: torch.Tensor) -> torch.Tensor:
    """For each row of the L2-normalised ``x`` (N, D), the index of its nearest other row
    (the largest inner product; a row is never its own neighbour)."""
    with torch.no_grad():
        sims = x @ x.T
        sims.fill_diagonal_(-2.0)  # below any cosine
        return sims.argmax(dim=1)


def koleo_loss(features: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """The KoLeo term of ``features`` (N >= 2, D), in float32 whatever the autocast.

    As DINOv2 computes it, ``eps`` is added to each difference before its norm (the behaviour of
    ``nn.PairwiseDistance``) and to the distance inside the log.
    """
    if len(features) < 2:
        raise ValueError(f"KoLeo needs at least 2 rows, got {len(features)}")
    with torch.autocast(features.device.type, enabled=False):
        x = F.normalize(features.float(), dim=-1, eps=eps)
        distances = (x - x[nearest_other(x)] + eps).norm(dim=-1)
        return -torch.log(distances + eps).mean()
