"""Evaluation II: fine-tuning a pretrained ViT for segmentation and detection.

Pure PyTorch/torchvision in place of mmseg/mmdet, which no longer install on current PyTorch.
Reads only exported backbones (``backbone.safetensors``), as the frozen-feature evaluation does.
"""

from __future__ import annotations

from typing import Any


def config_class(kind: str) -> type:
    """The recipe dataclass of ``kind`` ("seg" or "det")."""
    from wtpipe.finetune.config import DetConfig, SegConfig

    return {"seg": SegConfig, "det": DetConfig}[kind]


def make_task(kind: str, config: Any) -> Any:
    """The :class:`wtpipe.finetune.loop.Task` of ``kind`` for ``config`` (reads its data layout)."""
    if kind == "seg":
        from wtpipe.finetune.seg import SegTask

        return SegTask(config)
    from wtpipe.finetune.det import DetTask

    return DetTask(config)
