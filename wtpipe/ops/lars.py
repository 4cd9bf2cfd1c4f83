"""LARS: SGD with momentum whose step for each parameter tensor is scaled by its trust ratio.

As SwAV trains (apex's ``LARC`` with ``clip=False`` around ``torch.optim.SGD``): for a tensor p
with gradient g and its group's weight decay wd, when both norms are non-zero the gradient
becomes ``(g + wd p) * trust * |p| / (|g| + wd |p| + eps)``; otherwise it stays g (no decay
either). Then plain SGD with momentum (dampening 0, no Nesterov) takes the step with the group's
learning rate, so the schedule sets ``lr`` and ``weight_decay`` per group as for AdamW.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class LARS(torch.optim.Optimizer):
    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust: float = 0.001,
        eps: float = 1e-8,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "trust": trust,
            "eps": eps,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                p_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(p.grad)
                adapt = (p_norm > 0) & (g_norm > 0)  # a tensor, not a bool: the device never waits
                ratio = group["trust"] * p_norm / (g_norm + p_norm * decay + group["eps"])
                grad = torch.where(adapt, (p.grad + decay * p) * ratio, p.grad)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = grad.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
