"""The ``method`` section of a pretraining config: which plug-in, and that plug-in's own settings.

Each method has its config class here (torch-free, so that reading a config, ``--print-config``
and ``wtpipe submit``'s checks stay instant); ``method.name`` chooses it
(``wtpipe.methods.METHODS`` names the class), and a key that class does not have is refused,
with a did-you-mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


# Each field's help is the comment on its line (wtpipe.config.field_help): not reformatted.
# fmt: off
@dataclass
class MethodConfig:
    name: str = "dino"  # the method plug-in: one of wtpipe.methods.METHODS (dino, dora, swav)

    @classmethod
    def variant(cls, data: dict[str, Any]) -> type:
        """The config class of the method that ``data["name"]`` names."""
        from wtpipe.methods import METHODS

        name = data.get("name", cls.name)
        if name not in METHODS:
            raise ValueError(f"name: {name!r} is not one of {', '.join(METHODS)}")
        return globals()[METHODS[name][1]]


@dataclass
class DINOConfig(MethodConfig):
    student_temp: float = 0.1  # softmax temperature of the student outputs
    teacher_temp: float = 0.04  # teacher temperature after its warm-up
    warmup_teacher_temp: float = 0.04  # teacher temperature at step 0
    warmup_teacher_temp_epochs: int = 0  # linear teacher-temperature warm-up
    center_momentum: float = 0.9  # EMA of the teacher centre
    koleo: float = 0.0  # DINOv2's KoLeo weight on the student's global-view [CLS] features; 0: off, as DINO and DoRA


@dataclass
class DoRAConfig(DINOConfig):
    name: str = "dora"  # the method plug-in: one of wtpipe.methods.METHODS (dino, dora, swav)
    num_objects: int = 3  # k heads -> k object prototypes
    head_choice: Literal["random", "clustered"] = "random"  # official: k random heads per batch
    sinkhorn_epsilon: float = 0.05  # entropy weight of the Sinkhorn prototype refinement
    sinkhorn_iterations: int = 30  # Sinkhorn-Knopp iterations
    faithful: bool = False  # reproduce the official code's loss quirks (docs: DoRA, how it works)


@dataclass
class SwAVConfig(MethodConfig):
    name: str = "swav"  # the method plug-in: one of wtpipe.methods.METHODS (dino, dora, swav)
    temperature: float = 0.1  # softmax temperature of the predicted codes
    epsilon: float = 0.05  # entropic regularisation of the Sinkhorn-Knopp codes
    sinkhorn_iterations: int = 3  # Sinkhorn-Knopp iterations
    crops_for_assign: tuple[int, ...] = (0, 1)  # views whose codes the other views predict (the global ones)
    queue_length: int = 0  # embeddings per assigned view kept over all ranks for the codes; 0: none
    epoch_queue_starts: int = 15  # the queue starts filling at this epoch
    freeze_prototypes_steps: int = 313  # optimizer steps during which the prototypes are not updated
