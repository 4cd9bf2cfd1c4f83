"""The method plug-in interface: what the trainer needs from DINO, DoRA and later methods.

A method owns a student (trained, wrapped by DDP) and a teacher (EMA of the student), turns a
clip's frames into its views, and computes its loss. The training loop knows nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

from wtpipe.models.vit import ViTBackbone


class Method(Protocol):
    student: nn.Module
    teacher: nn.Module

    def views(self, planned: bool = False) -> Callable[[list[torch.Tensor]], Any]:
        """Frames of one clip (uint8 (3, H, W) tensors) -> this method's views of it; ``planned``:
        only the views' random parameters, the pixel work left to the training device."""

    def collate(self, items: list[Any]) -> Any:
        """Views of several clips -> one batch (planned views -> one planned batch, whose
        ``render(device)`` gives what the rendered items would have collated to)."""

    def loss(self, student: nn.Module, batch: Any, epoch: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """Forward both networks on ``batch`` and return the loss and scalars to log (floats or
        0-d tensors: the trainer reads them only on logging steps, so the device never waits)."""

    def teacher_backbone(self) -> ViTBackbone:
        """The backbone that is exported at the end of training."""

    def to(self, device: torch.device) -> None:
        """Move the teacher and any loss state to ``device`` (the student is placed by Accelerate)."""

    def write_pictures(self, dataset: Any, directory: str, step: int) -> list[str]:
        """Write PNGs a person would look at (DoRA: object masks); return their paths."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Loss state to checkpoint (e.g. the DINO centre)."""

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None: ...


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
        self.features: torch.Tensor | None = None  # the first views' backbone features: monitors, KoLeo

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


METHODS: dict[str, Callable[..., Method]] = {}


def register(name: str) -> Callable[[type], type]:
    def add(cls: type) -> type:
        METHODS[name] = cls
        return cls

    return add
