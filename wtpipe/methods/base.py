"""The method plug-in: everything the training loop needs from DINO, DoRA or a new method.

A method subclasses :class:`Method` (or :class:`TeacherStudentMethod` when its target network is
an EMA of the student) in one module and is named in ``wtpipe.methods.METHODS``. It owns its
networks, turns a clip's frames into its views, computes its loss and the scalars to log (each
declared in ``scalar_names``, so that it reaches ``scalars.csv``, TensorBoard and the bar), says
which backbone is exported, and hooks into the step around the optimizer. The loop knows nothing
else: no teacher, no head, no key of the state dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

from wtpipe.data.config import DataConfig
from wtpipe.data.transforms import (
    FirstFrameCrops,
    MultiCrop,
    MultiCropSpec,
    PlannedCrops,
    collate_crops,
)
from wtpipe.methods.config import MethodConfig
from wtpipe.models.config import ModelConfig
from wtpipe.models.vit import ViTBackbone
from wtpipe.ops.ema import ema_update
from wtpipe.ops.schedules import cosine


class OptimSettings(Protocol):
    momentum_teacher: float  # teacher EMA momentum at step 0, cosine to 1
    freeze_last_layer: int  # epochs during which the head's last layer is not updated


class RunSections(Protocol):
    """What a method reads of a pretraining config (``wtpipe.train.config.TrainConfig`` has these):
    the views it makes, the networks it builds, its own loss settings, its step hooks' settings."""

    data: DataConfig
    model: ModelConfig
    method: MethodConfig
    optim: OptimSettings


class Method:
    """The plug-in base. Subclasses set ``student`` (the trained network; the loop wraps it for DDP
    and gives the optimizer its parameters) and ``scalar_names``, and implement :meth:`views`,
    :meth:`collate`, :meth:`loss` and :meth:`backbone`; the rest has defaults."""

    display_name = ""  # how reports and tables name the method
    student: nn.Module
    # what loss() may return, in the order scalars.csv lists them
    scalar_names: tuple[str, ...] = ()
    step_scalar_names: tuple[str, ...] = ()  # what after_step() returns
    settle_epochs = 0  # epochs of the method's own warm-up, before collapse warnings make sense

    def views(self, planned: bool = False) -> Callable[[list[torch.Tensor]], Any]:
        """Frames of one clip (uint8 (3, H, W) tensors) -> this method's views of it; ``planned``:
        only the views' random parameters, the pixel work left to the training device."""
        raise NotImplementedError

    def collate(self, items: list[Any]) -> Any:
        """Views of several clips -> one batch (planned views -> one planned batch, whose
        ``render(device)`` gives what the rendered items would have collated to)."""
        raise NotImplementedError

    def loss(
        self, student: nn.Module, batch: Any, epoch: int
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """The loss of ``batch`` and scalars to log (floats or 0-d tensors: the loop reads them only
        on logging steps, so the device never waits); every key is one of ``scalar_names``."""
        raise NotImplementedError

    def backbone(self) -> ViTBackbone:
        """The backbone that is evaluated during training and exported."""
        raise NotImplementedError

    def export_state(self) -> dict[str, torch.Tensor]:
        """The exported backbone's weights, with timm's keys (``blocks.0.attn.qkv.weight``...)."""
        return dict(self.backbone().vit.state_dict())

    def after_backward(self, student: nn.Module, epoch: int, step: int) -> None:
        """Between the (clipped) gradients and the optimizer step ``step`` (0-based) of epoch
        ``epoch``, e.g. DINO's last-layer freeze, SwAV's prototype freeze."""

    def after_step(self, student: nn.Module, step: int, total_steps: int) -> dict[str, float]:
        """After the optimizer step ``step`` (0-based) of ``total_steps``; scalars to log."""
        return {}

    def to(self, device: torch.device) -> None:
        """Move what the loop does not place (the student is placed by Accelerate)."""

    def write_pictures(self, dataset: Any, directory: str, step: int) -> list[str]:
        """Write PNGs a person would look at (DoRA: object masks); return their paths."""
        return []

    def checkpoint_state(self) -> dict[str, Any]:
        """What a checkpoint holds of the method besides the student and the optimizer. Called on
        every rank before each checkpoint (a method with per-rank state, as SwAV's queue, gathers
        it here); the main process's answer is saved."""
        return {}

    def load_checkpoint_state(self, state: dict[str, Any], device: torch.device) -> None:
        """Restore :meth:`checkpoint_state` from a loaded checkpoint's state."""


class MultiCropMethod(Method):
    """Views for methods that see single frames (DINO, SwAV): the multi-crop of ``spec``."""

    spec: MultiCropSpec

    def views(
        self, planned: bool = False
    ) -> Callable[[list[torch.Tensor]], list[torch.Tensor] | PlannedCrops]:
        return FirstFrameCrops(MultiCrop(self.spec), planned)

    def collate(
        self, items: list[list[torch.Tensor]] | list[PlannedCrops]
    ) -> list[torch.Tensor] | PlannedCrops:
        return collate_crops(items)


class TeacherStudentMethod(Method):
    """A student trained by the loss and a teacher that follows it as an exponential moving
    average, its momentum a cosine from ``optim.momentum_teacher`` to 1 over the run (DINO's
    schedule); the teacher's backbone is evaluated and exported. Subclasses set ``teacher``."""

    teacher: nn.Module
    step_scalar_names = ("momentum",)

    def __init__(self, momentum_teacher: float) -> None:
        self.momentum_teacher = momentum_teacher

    def after_step(self, student: nn.Module, step: int, total_steps: int) -> dict[str, float]:
        momentum = cosine(step, total_steps, self.momentum_teacher, 1.0)
        ema_update(self.teacher, student, momentum)
        return {"momentum": momentum}

    def backbone(self) -> ViTBackbone:
        return self.teacher.backbone

    def to(self, device: torch.device) -> None:
        self.teacher.to(device)

    def checkpoint_state(self) -> dict[str, Any]:
        return {"teacher": self.teacher.state_dict()}

    def load_checkpoint_state(self, state: dict[str, Any], device: torch.device) -> None:
        self.teacher.load_state_dict(state["teacher"])


class BackboneWithHead(nn.Module):
    """Backbone + projection head over multi-crop views of different sizes.

    Views of the same resolution go through the backbone together (as DINO's MultiCropWrapper);
    the head sees all of them at once; the output is split back per view (views may differ in
    batch size: DoRA passes all masked views as one and all local crops as another).
    """

    def __init__(self, backbone: ViTBackbone, head: nn.Module, chunk: int = 0) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.chunk = chunk  # images per backbone call; 0: every view of a size in one call
        self.features: torch.Tensor | None = (
            None  # the first views' backbone features: monitors, KoLeo
        )

    def forward(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        features, start = [], 0
        while start < len(views):
            end = start
            while end < len(views) and views[end].shape[-2:] == views[start].shape[-2:]:
                end += 1
            images = torch.cat(views[start:end])
            chunks = images.split(self.chunk) if self.chunk else [images]
            features.append(torch.cat([self.backbone(chunk) for chunk in chunks]))
            start = end
        self.features = features[0]
        outputs = self.head(torch.cat(features))
        return list(outputs.split([len(view) for view in views]))
