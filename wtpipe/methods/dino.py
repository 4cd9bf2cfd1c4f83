"""DINO as a method plug-in: student and EMA teacher over multi-crop views of single frames; the
loss is ``wtpipe.losses.dino.DINOLoss``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from wtpipe.data.transforms import view_spec
from wtpipe.losses.dino import DINOLoss
from wtpipe.methods.base import (
    BackboneWithHead,
    MultiCropMethod,
    RunSections,
    TeacherStudentMethod,
)
from wtpipe.methods.config import MethodConfig
from wtpipe.models.heads import DINOHead
from wtpipe.models.vit import ViTBackbone
from wtpipe.ops.grads import drop_last_layer_grads
from wtpipe.ops.koleo import koleo_loss
from wtpipe.ops.monitors import distillation_monitors


def distillation_settings(method: MethodConfig) -> dict[str, Any]:
    """The loss settings DINO and DoRA share (their temperatures and the centre's momentum)."""
    keys = (
        "warmup_teacher_temp",
        "teacher_temp",
        "warmup_teacher_temp_epochs",
        "student_temp",
        "center_momentum",
    )
    return {key: getattr(method, key) for key in keys}


class DINOMethod(TeacherStudentMethod, MultiCropMethod):
    """DINO: student and EMA teacher (backbone + DINO head) over multi-crop views of single frames."""

    display_name = "DINO"
    scalar_names = (
        "teacher_temp",
        "teacher_entropy",
        "dims_used",
        "kl",
        "center_norm",
        "feature_std",
        "feature_rank",
        "koleo",
    )

    def __init__(self, config: RunSections) -> None:
        super().__init__(config.optim.momentum_teacher)
        model, method, data = config.model, config.method, config.data
        self.freeze_last_layer = config.optim.freeze_last_layer
        self.settle_epochs = method.warmup_teacher_temp_epochs

        def network(drop_path: float) -> BackboneWithHead:
            backbone = ViTBackbone(
                model.arch, drop_path_rate=drop_path, pos_interpolation=model.pos_interpolation
            )
            head = DINOHead(
                backbone.embed_dim,
                model.out_dim,
                model.hidden_dim,
                model.bottleneck_dim,
                use_bn=model.use_bn_in_head,
                norm_last_layer=model.norm_last_layer,
            )
            return BackboneWithHead(backbone, head, model.forward_chunk)

        self.student = network(model.drop_path_rate)
        self.student.backbone.vit.set_grad_checkpointing(model.grad_checkpointing)
        self.teacher = network(0.0)  # as DINO: the teacher has no stochastic depth
        self.teacher.load_state_dict(self.student.state_dict())
        self.teacher.requires_grad_(False)
        self.criterion = DINOLoss(model.out_dim, **distillation_settings(method))
        self.spec = view_spec(data)
        self.koleo = method.koleo
        self.views()  # a view setting this method cannot use fails here, before any data is read

    def loss(
        self, student: nn.Module, batch: list[torch.Tensor], epoch: int
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        with torch.no_grad():
            teacher_out = self.teacher(batch[:2])
        student_out = student(batch)
        # Each teacher global view against the student's other global view; before the loss moves the centre.
        scalars = self.monitors(torch.cat(teacher_out), torch.cat(student_out[1::-1]), epoch)
        loss = self.criterion(student_out, teacher_out, epoch)
        return self.add_koleo(loss, scalars, self.student.features.chunk(2))

    def add_koleo(
        self,
        loss: torch.Tensor,
        scalars: dict[str, Any],
        groups: tuple[torch.Tensor, ...],
        reduce: Callable[[torch.Tensor], torch.Tensor] = torch.sum,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
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
        return {
            "teacher_temp": c.teacher_temp_at(epoch),
            **distillation_monitors(
                teacher,
                c.center,
                c.teacher_temp_at(epoch),
                student,
                c.student_temp,
                self.student.features,
            ),
        }

    def after_backward(self, student: nn.Module, epoch: int, step: int) -> None:
        drop_last_layer_grads(student, epoch, self.freeze_last_layer)

    def to(self, device: torch.device) -> None:
        super().to(device)
        self.criterion.to(device)

    def checkpoint_state(self) -> dict[str, Any]:
        return {**super().checkpoint_state(), "method": {"center": self.criterion.center.clone()}}

    def load_checkpoint_state(self, state: dict[str, Any], device: torch.device) -> None:
        super().load_checkpoint_state(state, device)
        self.criterion.center.copy_(state["method"]["center"].to(device))
