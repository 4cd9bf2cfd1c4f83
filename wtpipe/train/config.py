"""The training config: one typed dataclass per section, loaded with :func:`wtpipe.config.load_config`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from wtpipe.config import PathStr, resumable
from wtpipe.data.config import DataConfig
from wtpipe.methods.config import DINOConfig, MethodConfig
from wtpipe.models.config import ModelConfig


# Each field's help is the comment on its line (wtpipe.config.field_help): not reformatted.
# fmt: off
@dataclass
class OptimConfig:
    epochs: int = 100  # total steps = epochs x steps_per_epoch
    steps_per_epoch: int = 1000  # 0: one pass over the shards' clip starts (source frames, as official DoRA) per batch
    lr: float = 0.0005  # at a global batch of 256; scaled linearly
    min_lr: float = 1e-6  # end of the cosine decay
    warmup_epochs: int = 10  # linear learning-rate warm-up
    weight_decay: float = 0.04  # start of the cosine weight-decay schedule
    weight_decay_end: float = 0.4  # its end
    clip_grad: float = 3.0  # per parameter; 0 turns clipping off
    freeze_last_layer: int = 1  # epochs
    momentum_teacher: float = 0.996  # teacher EMA momentum at step 0, cosine to 1
    grad_accum: int = 1  # micro-steps per optimizer step
    optimizer: Literal["adamw", "lars"] = "adamw"  # lars: SGD, momentum 0.9, trust ratio 0.001 (SwAV's LARC)

    def __post_init__(self) -> None:
        if self.steps_per_epoch < 0:
            raise ValueError(f"steps_per_epoch must be 0 (one pass over the clip starts) or more, "
                             f"not {self.steps_per_epoch}")


@dataclass
class RunConfig:
    output_dir: PathStr = resumable("runs/default")  # checkpoints, logs, pictures, backbone.safetensors
    seed: int = 0  # weights, data stream and augmentations are functions of it
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"  # autocast of the forward passes
    checkpoint_every: int = resumable(500)  # steps
    keep_last: int = resumable(3)  # checkpoints kept (older ones are pruned)
    log_every: int = resumable(10)  # steps between rows of scalars.csv and the loss shown on the bar
    max_steps: int | None = resumable(None)  # stop early (smoke runs); schedules keep the full length
    viz_every: int = resumable(0)  # DoRA: write mask pictures to RUN/viz every N steps (0: only at the end)
    threads: int = resumable(0)  # intra-op threads; 0: OMP_NUM_THREADS if set, else cores per rank - loader workers
    dist_timeout_minutes: float = resumable(10.0)  # a collective waiting this long on a dead rank fails the job
    compile: bool = resumable(False)  # torch.compile the student's ViT (GPU runs; the first steps pay the compile)


@dataclass
class EvalConfig:
    """Frozen-feature checks of the teacher during training (``wtpipe-eval``'s cheap tasks)."""

    every: int = resumable(0)  # steps between evaluations; 0: never
    tasks: tuple[Literal["knn", "discover", "attention"], ...] = resumable(("knn", "discover"))  # at each evaluation
    knn_data: PathStr = resumable("")  # ImageFolder with train/ and val/
    discover_data: PathStr = resumable("")  # VOC folder or COCO json
    attention_data: PathStr = resumable("")  # COCO json with masks

    def __post_init__(self) -> None:
        if self.every:
            for task in self.tasks:
                if not getattr(self, f"{task}_data"):
                    raise ValueError(f"eval.tasks has {task} but eval.{task}_data is empty")


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    method: MethodConfig = field(default_factory=DINOConfig)
    run: RunConfig = field(default_factory=RunConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def section_names() -> list[str]:
    return [f.name for f in fields(TrainConfig)]
