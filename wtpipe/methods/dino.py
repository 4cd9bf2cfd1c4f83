"""DINO's loss: cross-entropy between sharpened student views and centred, sharpened teacher views.

Faithful to facebookresearch/dino: every teacher global view against every student view except
the same view, averaged over pairs; the centre is an EMA of the teacher's batch mean (all-reduced
over ranks), updated after the loss; the teacher temperature warms up per epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from wtpipe.data.loader import collate_views
from wtpipe.data.transforms import MultiCrop, MultiCropSpec, PlannedCrops
from wtpipe.methods.base import BackboneWithHead, register
from wtpipe.models.heads import DINOHead
from wtpipe.models.vit import ViTBackbone
from wtpipe.ops.koleo import koleo_loss
from wtpipe.ops.monitors import distillation_monitors
from wtpipe.ops.schedules import linear_warmup_then_constant
from wtpipe.train.config import DataConfig, TrainConfig


class DINOLoss(nn.Module):
    def __init__(self, out_dim: int, warmup_teacher_temp: float = 0.04, teacher_temp: float = 0.04,
                 warmup_teacher_temp_epochs: int = 0, student_temp: float = 0.1,
                 center_momentum: float = 0.9) -> None:
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.warmup_teacher_temp = warmup_teacher_temp
        self.teacher_temp = teacher_temp
        self.warmup_teacher_temp_epochs = warmup_teacher_temp_epochs
        self.register_buffer("center", torch.zeros(1, out_dim))

    def teacher_temp_at(self, epoch: int) -> float:
        return linear_warmup_then_constant(epoch, self.warmup_teacher_temp, self.teacher_temp,
                                           self.warmup_teacher_temp_epochs)

    def forward(self, student_out: list[torch.Tensor], teacher_out: list[torch.Tensor], epoch: int) -> torch.Tensor:
        """``student_out``: one (B, K) tensor per view (global views first); ``teacher_out``: one per
        global view. Returns the mean cross-entropy over all (teacher view, other student view) pairs."""
        temp = self.teacher_temp_at(epoch)
        teacher_probs = [F.softmax((t.float() - self.center) / temp, dim=-1).detach() for t in teacher_out]
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


class FirstFrameCrops:
    """DINO's views of a clip: the multi-crop of its (only) frame, rendered, or only planned when
    the training device does the pixel work. A class, so workers can pickle it."""

    def __init__(self, crops: MultiCrop, planned: bool = False) -> None:
        self.crops, self.planned = crops, planned

    def __call__(self, frames: list[torch.Tensor]) -> list[torch.Tensor] | PlannedCrops:
        return self.crops.plan(frames[0]) if self.planned else self.crops(frames[0])


def view_spec(data: DataConfig) -> MultiCropSpec:
    """The crop settings of the ``data`` section, for the view transforms."""
    return MultiCropSpec(data.global_size, data.local_size, data.local_crops, data.global_scale, data.local_scale,
                         data.local_flip, data.global_interpolation == "bilinear", data.clip_precrop,
                         data.clip_precrop_scale)


@register("dino")
class DINOMethod:
    """DINO: student and EMA teacher (backbone + DINO head) over multi-crop views of single frames."""

    def __init__(self, config: TrainConfig) -> None:
        model, method, data = config.model, config.method, config.data

        def network(drop_path: float) -> BackboneWithHead:
            backbone = ViTBackbone(model.arch, drop_path_rate=drop_path, pos_interpolation=model.pos_interpolation)
            head = DINOHead(backbone.embed_dim, model.out_dim, model.hidden_dim, model.bottleneck_dim,
                            use_bn=model.use_bn_in_head, norm_last_layer=model.norm_last_layer)
            return BackboneWithHead(backbone, head, model.forward_chunk)

        self.student = network(model.drop_path_rate)
        self.student.backbone.vit.set_grad_checkpointing(model.grad_checkpointing)
        self.teacher = network(0.0)  # as DINO: the teacher has no stochastic depth
        self.teacher.load_state_dict(self.student.state_dict())
        self.teacher.requires_grad_(False)
        self.criterion = DINOLoss(model.out_dim, method.warmup_teacher_temp, method.teacher_temp,
                                  method.warmup_teacher_temp_epochs, method.student_temp, method.center_momentum)
        self.spec = view_spec(data)
        self.koleo = method.koleo
        self.views()  # a view setting this method cannot use fails here, before any data is read

    def views(self, planned: bool = False) -> Callable[[list[torch.Tensor]], list[torch.Tensor] | PlannedCrops]:
        return FirstFrameCrops(MultiCrop(self.spec), planned)

    def collate(self, items: list[list[torch.Tensor]] | list[PlannedCrops]) -> list[torch.Tensor] | PlannedCrops:
        return PlannedCrops.cat(items) if isinstance(items[0], PlannedCrops) else collate_views(items)

    def loss(self, student: nn.Module, batch: list[torch.Tensor], epoch: int) -> tuple[torch.Tensor, dict[str, Any]]:
        with torch.no_grad():
            teacher_out = self.teacher(batch[:2])
        student_out = student(batch)
        # Each teacher global view against the student's other global view; before the loss moves the centre.
        scalars = self.monitors(torch.cat(teacher_out), torch.cat(student_out[1::-1]), epoch)
        loss = self.criterion(student_out, teacher_out, epoch)
        return self.add_koleo(loss, scalars, self.student.features.chunk(2))

    def add_koleo(self, loss: torch.Tensor, scalars: dict[str, Any], groups: tuple[torch.Tensor, ...],
                  reduce: Callable[[torch.Tensor], torch.Tensor] = torch.sum) -> tuple[torch.Tensor, dict[str, Any]]:
        """``loss`` + ``koleo`` x the KoLeo terms of the feature ``groups`` (each a set of different
        images), reduced as DINOv2 does (a sum over the global views); unchanged when it is off.
        The ``koleo`` scalar is the weighted term, what it adds to the logged loss."""
        if not self.koleo:
            return loss, scalars
        term = self.koleo * reduce(torch.stack([koleo_loss(group) for group in groups]))
        return loss + term, {**scalars, "koleo": term.detach()}

    def monitors(self, teacher: torch.Tensor, student: torch.Tensor, epoch: int) -> dict[str, Any]:
        """Collapse and learning monitors (``wtpipe.ops.monitors``) of paired teacher/student rows."""
        c = self.criterion
        return {"teacher_temp": c.teacher_temp_at(epoch),
                **distillation_monitors(teacher, c.center, c.teacher_temp_at(epoch), student, c.student_temp,
                                        self.student.features)}

    def teacher_backbone(self) -> ViTBackbone:
        return self.teacher.backbone

    def to(self, device: torch.device) -> None:
        self.teacher.to(device)
        self.criterion.to(device)

    def write_pictures(self, dataset: object, directory: str, step: int) -> list[str]:
        return []  # DINO has nothing to show beyond the loss curve

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"center": self.criterion.center.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.criterion.center.copy_(state["center"])
