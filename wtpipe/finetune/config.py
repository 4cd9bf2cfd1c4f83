"""Fine-tuning configs (torch-free: ``wtpipe eval seg|det --help`` and typos are answered at once).

Segmentation defaults are the BEiT/MAE/iBOT ADE20K UperNet protocol: 512-px crops, batch 16
(8 GPUs x 2), AdamW lr 1e-4, weight decay 0.05, layer decay 0.65, 1500 warm-up iterations, poly
decay, 160k iterations, drop-path 0.1, slide inference with stride 341. Detection: see DetConfig.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wtpipe.config import PathStr, resumable
from wtpipe.models.archs import ARCHS


# Each field's help is the comment on its line (wtpipe.config.field_help): not reformatted.
# fmt: off
@dataclass
class SegDataConfig:
    root: PathStr = resumable("")  # ADE20K layout: images/ and annotations/, each with training/ and validation/
    num_classes: int = 150  # after reduce_zero_label
    reduce_zero_label: bool = True  # annotation 0 is "other" (ignored); 1..C become 0..C-1
    crop: int = 512  # training crop and sliding-window size
    base_scale: tuple[int, int] = (2048, 512)  # (long-side cap, short side) before the random ratio
    ratio_range: tuple[float, float] = (0.5, 2.0)  # random rescale of the base scale
    batch_size: int = 2  # images per rank per micro-step
    num_workers: int = resumable(2)  # loader processes per rank
    slide_stride: int = 341  # sliding-window step at validation


@dataclass
class FinetuneModelConfig:
    weights: PathStr = ""  # backbone.safetensors, a run or checkpoint directory, or random:ARCH[:SEED]
    head: Literal["linear", "upernet", "maskrcnn"] = "upernet"  # seg: linear (BN + 1x1 conv) or upernet; det: maskrcnn
    channels: int = 512  # UperNet width
    drop_path_rate: float = 0.1  # stochastic depth of the backbone while fine-tuning
    freeze_backbone: bool = False  # true for the linear protocol


@dataclass
class FinetuneOptimConfig:
    iters: int = 160000  # optimizer steps
    lr: float = 1e-4  # at the head; block i of L gets lr x layer_decay^(L + 1 - i)
    layer_decay: float = 0.65  # lr decay per block from the head down (BEiT/ViTDet)
    weight_decay: float = 0.05  # AdamW, on matrices only
    warmup_iters: int = 1500  # linear warm-up from lr x 1e-6 (mmcv)
    power: float = 1.0  # poly decay to min_lr
    min_lr: float = 0.0  # end of the poly decay
    clip_grad: float = 0.0  # global norm; 0: off
    grad_accum: int = 1  # micro-steps per optimizer step


@dataclass
class FinetuneRunConfig:
    output_dir: PathStr = resumable("runs/seg")  # checkpoints, scalars, validation metrics and pictures
    seed: int = 0  # head init, data order and augmentation are functions of it
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"  # autocast of the forward pass
    checkpoint_every: int = resumable(2000)  # steps
    keep_last: int = resumable(2)  # checkpoints kept
    log_every: int = resumable(50)  # steps between scalar rows
    val_every: int = 16000  # steps between validations (and at the end); 0: only at the end
    pictures: int = resumable(6)  # validation images drawn as overlays
    threads: int = resumable(0)  # intra-op threads; 0: OMP_NUM_THREADS or cores per rank - loader workers


@dataclass
class SegConfig:
    data: SegDataConfig = field(default_factory=SegDataConfig)
    model: FinetuneModelConfig = field(default_factory=FinetuneModelConfig)
    optim: FinetuneOptimConfig = field(default_factory=FinetuneOptimConfig)
    run: FinetuneRunConfig = field(default_factory=FinetuneRunConfig)

    def __post_init__(self) -> None:
        if self.model.head not in ("linear", "upernet"):
            raise ValueError(f"model.head: segmentation heads are 'linear' and 'upernet', not {self.model.head!r}")
        if self.model.weights.startswith("random:") and self.model.weights.split(":")[1] not in ARCHS:
            arch = self.model.weights.split(":")[1]
            raise ValueError(f"model.weights: arch {arch!r} is not one of {', '.join(ARCHS)}")


@dataclass
class DetDataConfig:
    root: PathStr = resumable("")  # COCO layout: SPLIT/ image folders and annotations/instances_SPLIT.json
    train_split: str = "train2017"  # image folder and annotations/instances_SPLIT.json for training
    val_split: str = "val2017"  # the same for validation
    min_sizes: tuple[int, ...] = (640, 672, 704, 736, 768, 800)  # training short side, one drawn per batch
    max_size: int = 1333  # long-side cap
    test_size: int = 800  # validation short side
    batch_size: int = 2  # images per rank per micro-step
    num_workers: int = resumable(2)  # loader processes per rank


@dataclass
class DetModelConfig(FinetuneModelConfig):
    head: Literal["linear", "upernet", "maskrcnn"] = "maskrcnn"
    rpn_proposals: int = 2000  # RPN proposals kept per image in training (before and after NMS); 1000 at test
    roi_samples: int = 512  # RoIs sampled per image for the box and mask heads' losses


@dataclass
class DetConfig:
    """Mask R-CNN 1x schedule on COCO (90k iterations at 16 images, lr 1e-4 for AdamW with
    layer decay 0.7 as ViTDet's ViT-S/B recipes, multi-scale training and flip)."""

    data: DetDataConfig = field(default_factory=DetDataConfig)
    model: DetModelConfig = field(default_factory=DetModelConfig)
    optim: FinetuneOptimConfig = field(default_factory=lambda: FinetuneOptimConfig(
        iters=90000, lr=1e-4, layer_decay=0.7, weight_decay=0.1, warmup_iters=250))
    run: FinetuneRunConfig = field(default_factory=lambda: FinetuneRunConfig(output_dir="runs/det", val_every=10000))

    def __post_init__(self) -> None:
        if self.model.head != "maskrcnn":
            raise ValueError(f"model.head: detection has one head, 'maskrcnn', not {self.model.head!r}")
