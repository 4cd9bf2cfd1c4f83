"""The training config: one typed dataclass per section, loaded with :func:`wtpipe.config.load_config`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from wtpipe.config import PathStr, to_dict
from wtpipe.models.archs import ARCHS, PosInterpolation


@dataclass
class DataConfig:
    shards: PathStr = ""  # a wtpipe-shards output directory (manifest.json)
    batch_size: int = 64  # clips per rank per micro-step
    num_workers: int = 4  # loader processes per rank (each single-threaded; see run.threads)
    clip_frames: int = 1  # DINO: single frames
    frame_gap: int = 1  # stored frames between clip frames
    global_size: int = 224  # pixels of the two global views
    local_size: int = 96  # pixels of the local views
    local_crops: int = 8  # local views per clip
    global_scale: tuple[float, float] = (0.4, 1.0)  # area fraction of the random-resized global crops
    local_scale: tuple[float, float] = (0.05, 0.4)  # area fraction of the local crops
    local_flip: bool = True  # random horizontal flip of the local crops (DINO: yes; official DoRA: no)
    global_interpolation: Literal["bicubic", "bilinear"] = "bicubic"  # global crops, pre-crop: bicubic antialiased (DINO) or bilinear, no antialias (official DoRA)
    clip_precrop: int = 0  # DoRA: px of one random crop per clip that the global and local crops are cut from (official: 300); 0: none
    clip_precrop_scale: tuple[float, float] = (0.2, 1.0)  # DoRA: area fraction of the frame the pre-crop covers
    augment_on: Literal["auto", "device", "loader"] = "auto"  # views' pixel work: workers or device (auto: CUDA)
    decode_on: Literal["auto", "loader", "device"] = "auto"  # JPEG decoding: workers or nvJPEG (auto: with CUDA views)

    def __post_init__(self) -> None:
        if self.decode_on == "device" and self.augment_on == "loader":
            raise ValueError("data.decode_on=device needs the views rendered there too "
                             "(data.augment_on=device or auto)")

    def views_on_device(self) -> bool:
        if self.augment_on == "auto":
            return self.decode_on == "device" or _cuda()
        return self.augment_on == "device"

    def decodes_on_device(self) -> bool:
        """auto: nvJPEG where CUDA renders the views (on an H100, DoRA ViT-S/16 +16 % clips/s, DINO level)."""
        if self.decode_on == "auto":
            return self.views_on_device() and _cuda()
        return self.decode_on == "device"


def _cuda() -> bool:
    """Whether CUDA is here; torch is imported only when asked (config errors stay fast)."""
    import torch

    return torch.cuda.is_available()


@dataclass
class ModelConfig:
    arch: str = "vit_small_patch16_224"  # timm name: vit_tiny/small/base_patch16_224
    drop_path_rate: float = 0.1  # stochastic depth of the student
    out_dim: int = 65536  # prototypes of the projection head (K)
    hidden_dim: int = 2048  # projection head MLP width
    bottleneck_dim: int = 256  # projection head output before the weight-normalised last layer
    norm_last_layer: bool = True  # fix the last layer's weight norm (DINO: True for ViT-S)
    use_bn_in_head: bool = False  # batch norm in the projection head MLP
    pos_interpolation: PosInterpolation = "dino"  # position embeddings of other view sizes (models/vit.py)
    grad_checkpointing: bool = False  # student blocks recomputed in backward: less memory, more time
    forward_chunk: int = 0  # images per student backbone call (0: all views of a size at once)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch {self.arch!r} is not one of {', '.join(ARCHS)}")


@dataclass
class OptimConfig:
    epochs: int = 100  # total steps = epochs x steps_per_epoch
    steps_per_epoch: int = 1000  # the stream is resampled; 0: one pass over the shards' clip starts (source frames, as official DoRA) per global batch
    lr: float = 0.0005  # at a global batch of 256; scaled linearly
    min_lr: float = 1e-6  # end of the cosine decay
    warmup_epochs: int = 10  # linear learning-rate warm-up
    weight_decay: float = 0.04  # start of the cosine weight-decay schedule
    weight_decay_end: float = 0.4  # its end
    clip_grad: float = 3.0  # per parameter; 0 turns clipping off
    freeze_last_layer: int = 1  # epochs
    momentum_teacher: float = 0.996  # teacher EMA momentum at step 0, cosine to 1
    grad_accum: int = 1  # micro-steps per optimizer step

    def __post_init__(self) -> None:
        if self.steps_per_epoch < 0:
            raise ValueError(f"steps_per_epoch must be 0 (one pass over the clip starts) or more, not {self.steps_per_epoch}")


@dataclass
class MethodConfig:
    name: Literal["dino", "dora"] = "dino"  # the method plug-in
    student_temp: float = 0.1  # softmax temperature of the student outputs
    teacher_temp: float = 0.04  # teacher temperature after its warm-up
    warmup_teacher_temp: float = 0.04  # teacher temperature at step 0
    warmup_teacher_temp_epochs: int = 0  # linear teacher-temperature warm-up
    center_momentum: float = 0.9  # EMA of the teacher centre
    koleo: float = 0.0  # DINOv2's KoLeo weight on the student's global-view [CLS] features; 0: off, as DINO and DoRA
    # DoRA only (DORA_ONLY below)
    num_objects: int = 3  # DoRA: k heads -> k object prototypes
    head_choice: Literal["random", "clustered"] = "random"  # DoRA: official picks k random heads per batch
    sinkhorn_epsilon: float = 0.05  # DoRA: entropy weight of the Sinkhorn prototype refinement
    sinkhorn_iterations: int = 30  # DoRA: Sinkhorn-Knopp iterations
    faithful: bool = False  # DoRA: reproduce the official code's loss quirks (README)


@dataclass
class RunConfig:
    output_dir: PathStr = "runs/default"  # checkpoints, logs, pictures, backbone.safetensors
    seed: int = 0  # weights, data stream and augmentations are functions of it
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"  # autocast of the forward passes
    checkpoint_every: int = 500  # steps
    keep_last: int = 3  # checkpoints kept (older ones are pruned)
    log_every: int = 10  # steps between rows of scalars.csv and the loss shown on the bar
    max_steps: int | None = None  # stop early (smoke runs); schedules keep the full length
    viz_every: int = 0  # DoRA: write mask pictures to RUN/viz every N steps (0: only at the end)
    threads: int = 0  # intra-op threads; 0: OMP_NUM_THREADS if set, else cores per rank - loader workers
    dist_timeout_minutes: float = 10.0  # a collective waiting this long on a dead rank fails the job
    compile: bool = False  # torch.compile the student's ViT (GPU runs; the first steps pay the compile)


@dataclass
class EvalConfig:
    """Frozen-feature checks of the teacher during training (``wtpipe-eval``'s cheap tasks)."""

    every: int = 0  # steps between evaluations; 0: never
    tasks: tuple[Literal["knn", "discover", "attention"], ...] = ("knn", "discover")  # run at each evaluation
    knn_data: PathStr = ""  # ImageFolder with train/ and val/
    discover_data: PathStr = ""  # VOC folder or COCO json
    attention_data: PathStr = ""  # COCO json with masks

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
    method: MethodConfig = field(default_factory=MethodConfig)
    run: RunConfig = field(default_factory=RunConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# Settings that change how a run is executed or observed, not what it computes: a checkpoint
# may be resumed with different values of these.
NOT_MATHEMATICAL = {("data", "num_workers"), ("data", "shards"), ("data", "augment_on"), ("data", "decode_on"),
                    ("run", "output_dir"), ("run", "threads"),
                    ("run", "dist_timeout_minutes"), ("run", "compile"),
                    ("run", "checkpoint_every"), ("run", "keep_last"), ("run", "log_every"),
                    ("run", "max_steps"), ("run", "viz_every"), ("model", "grad_checkpointing"),
                    ("model", "forward_chunk"),
                    *(("eval", f.name) for f in fields(EvalConfig))}


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``section.key: saved -> current`` for every setting that changes the computation. A key
    added since the checkpoint was written counts as its default, which is what older code did."""
    diffs, defaults = [], to_dict(TrainConfig())
    for section in current:
        for key in current[section]:
            if (section, key) in NOT_MATHEMATICAL:
                continue
            old = saved.get(section, {}).get(key, defaults.get(section, {}).get(key, "<absent>"))
            if old != current[section][key]:
                diffs.append(f"{section}.{key}: {old} -> {current[section][key]}")
    return diffs


DORA_ONLY = {("data", "clip_precrop"), ("data", "clip_precrop_scale"), ("method", "num_objects"), ("method", "head_choice"), ("method", "sinkhorn_epsilon"),
             ("method", "sinkhorn_iterations"), ("method", "faithful")}


def relevant(config: TrainConfig) -> dict[str, Any]:
    """The config as saved next to a run for people: without the keys its method does not read."""
    data = to_dict(config)
    if config.method.name != "dora":
        for section, key in DORA_ONLY:
            data[section].pop(key)
    return data


def section_names() -> list[str]:
    return [f.name for f in fields(TrainConfig)]
