"""The ``model`` section of a pretraining config: the backbone and its projection head."""

from __future__ import annotations

from dataclasses import dataclass

from wtpipe.config import resumable
from wtpipe.models.archs import ARCHS, PosInterpolation


# Each field's help is the comment on its line (wtpipe.config.field_help): not reformatted.
# fmt: off
@dataclass
class ModelConfig:
    arch: str = "vit_small_patch16_224"  # timm name: vit_tiny/small/base_patch16_224
    drop_path_rate: float = 0.1  # stochastic depth of the student
    out_dim: int = 65536  # prototypes of the projection head (K; SwAV: its prototypes, 3000)
    hidden_dim: int = 2048  # projection head MLP width
    bottleneck_dim: int = 256  # projection head output the prototypes score (SwAV: its embedding, 128)
    norm_last_layer: bool = True  # DINO head: fix the last layer's weight norm (True for ViT-S)
    use_bn_in_head: bool = False  # batch norm in the projection head MLP (SwAV: yes)
    pos_interpolation: PosInterpolation = "dino"  # position embeddings of other view sizes (models/vit.py)
    grad_checkpointing: bool = resumable(False)  # student blocks recomputed in backward: less memory, more time
    forward_chunk: int = resumable(0)  # images per student backbone call (0: all views of a size at once)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch {self.arch!r} is not one of {', '.join(ARCHS)}")
