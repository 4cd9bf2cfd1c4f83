"""DoRA's loss: multi-object masked distillation.

For each discovered object i and frame t, the student sees the teacher's global view of frame t
masked to object i, plus that frame's local crops; both are distilled towards the teacher's
centred, sharpened output on the full frame:

    L = mean_i mean_t 0.5 * ( H(P_t(g_t), P_s(g_t * m_ti)) + mean_l H(P_t(g_t), P_s(local_tl)) )

``faithful=True`` reproduces the official DoRA_ICLR24 code where it differs from that formula:
(1) its per-frame accumulator is not reset between objects, so object i also carries the
earlier objects' terms divided by T again (weights 0.380 / 0.375 / 0.333 for k=3, T=8 instead of
1/3 each); (2) its local term skips the first local crop (an index test meant for same-view
pairs); (3) each object mask is thresholded at the mean over the whole batch of that frame's
normalised maps, not at the sample's own mean (``wtpipe.ops.objects.binarise``). Both modes
take the centre over the teacher outputs of all frames, as the official code does: every
frame's teacher output is a target, so all of them belong in its mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wtpipe.losses.dino import DINOLoss


def cross_entropy(
    teacher_probs: torch.Tensor, student_logits: torch.Tensor, student_temp: float
) -> torch.Tensor:
    """Batch mean of H(teacher, softmax(student / temp))."""
    return torch.sum(
        -teacher_probs * F.log_softmax(student_logits.float() / student_temp, dim=-1), dim=-1
    ).mean()


class DoRALoss(DINOLoss):
    def __init__(self, *args, faithful: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.faithful = faithful

    def forward(
        self,
        student_masked: torch.Tensor,
        student_local: torch.Tensor,
        teacher: torch.Tensor,
        epoch: int,
    ) -> torch.Tensor:
        """``student_masked`` (k, T, B, K), ``student_local`` (T, L, B, K), ``teacher`` (T, B, K) logits."""
        objects, frames = student_masked.shape[:2]
        temp = self.teacher_temp_at(epoch)
        probs = F.softmax((teacher.float() - self.center) / temp, dim=-1).detach()
        first_local = 1 if self.faithful else 0
        per_frame = []
        for t in range(frames):
            locals_ = [
                cross_entropy(probs[t], student_local[t, v], self.student_temp)
                for v in range(first_local, student_local.shape[1])
            ]
            per_frame.append(torch.stack(locals_).mean())
        total = student_masked.new_zeros((), dtype=torch.float32)
        carried = student_masked.new_zeros((), dtype=torch.float32)
        for i in range(objects):
            terms = [
                0.5
                * (cross_entropy(probs[t], student_masked[i, t], self.student_temp) + per_frame[t])
                for t in range(frames)
            ]
            object_sum = torch.stack(terms).sum()
            if (
                self.faithful
            ):  # the official accumulator keeps earlier objects' (already averaged) terms
                carried = (carried + object_sum) / frames
                total = total + carried
            else:
                total = total + object_sum / frames
        self.update_center(teacher.reshape(-1, teacher.shape[-1]))
        return total / objects
