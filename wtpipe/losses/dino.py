"""DINO's loss: cross-entropy between sharpened student views and centred, sharpened teacher views.

Faithful to facebookresearch/dino: every teacher global view against every student view except
the same view, averaged over pairs; the centre is an EMA of the teacher's batch mean (all-reduced
over ranks), updated after the loss; the teacher temperature warms up per epoch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from wtpipe.ops.schedules import linear_warmup_then_constant


class DINOLoss(nn.Module):
    def __init__(
        self,
        out_dim: int,
        warmup_teacher_temp: float = 0.04,
        teacher_temp: float = 0.04,
        warmup_teacher_temp_epochs: int = 0,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
    ) -> None:
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.warmup_teacher_temp = warmup_teacher_temp
        self.teacher_temp = teacher_temp
        self.warmup_teacher_temp_epochs = warmup_teacher_temp_epochs
        self.register_buffer("center", torch.zeros(1, out_dim))

    def teacher_temp_at(self, epoch: int) -> float:
        return linear_warmup_then_constant(
            epoch, self.warmup_teacher_temp, self.teacher_temp, self.warmup_teacher_temp_epochs
        )

    def forward(
        self, student_out: list[torch.Tensor], teacher_out: list[torch.Tensor], epoch: int
    ) -> torch.Tensor:
        """``student_out``: one (B, K) tensor per view (global views first); ``teacher_out``: one per
        global view. Returns the mean cross-entropy over all (teacher view, other student view) pairs."""
        temp = self.teacher_temp_at(epoch)
        teacher_probs = [
            F.softmax((t.float() - self.center) / temp, dim=-1).detach() for t in teacher_out
        ]
        student_logp = [F.log_softmax(s.float() / self.student_temp, dim=-1) for s in student_out]
        total, pairs = 0.0, 0
        for iq, q in enumerate(teacher_probs):
            for v, logp in enumerate(student_logp):
                if v == iq:
                    continue
                total = total + torch.sum(-q * logp, dim=-1).mean()
                pairs += 1
        self.update_center(torch.cat(teacher_out))
        return total / pairs

    @torch.no_grad()
    def update_center(self, teacher_output: torch.Tensor) -> None:
        batch_center = teacher_output.float().sum(dim=0, keepdim=True)
        count = torch.tensor(float(len(teacher_output)), device=batch_center.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch_center)
            dist.all_reduce(count)
        batch_center = batch_center / count
        self.center.mul_(self.center_momentum).add_(batch_center * (1 - self.center_momentum))
