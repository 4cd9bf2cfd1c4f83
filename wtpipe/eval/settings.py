"""The evaluation tasks' settings, torch-free so that ``wtpipe eval --help`` and a typo in a
setting are answered at once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from wtpipe.config import PathStr

KS = (10, 20, 100, 200)  # DINO's eval_knn.py
TEMPERATURE = 0.07
Kind = Literal["cls", "last4", "cls_avgpool"]  # which tokens make an image's feature (features.py)

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "wtpipe", "features")


@dataclass
class KnnConfig:
    ks: tuple[int, ...] = KS
    temperature: float = TEMPERATURE
    image_size: int = 224
    batch_size: int = 32
    cache_dir: PathStr = DEFAULT_CACHE  # "" turns the feature cache off


@dataclass
class LinearConfig:
    features: Kind = "last4"
    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.01
    seed: int = 0
    image_size: int = 224
    cache_dir: PathStr = DEFAULT_CACHE


@dataclass
class DiscoverConfig:
    methods: tuple[Literal["tokencut", "lost"], ...] = ("tokencut", "lost")
    tau: float = 0.2
    eps: float = 1e-5
    k_patches: int = 100
    image_root: PathStr = (
        ""  # COCO json: folder that file_name is relative to (default: datasets.coco_image_root)
    )
    max_images: int = 0  # 0: all
    pictures: int = 24  # overlay PNGs for the first N images


@dataclass
class AttentionConfig:
    keep: float = 0.6  # share of each head's [CLS] attention mass its mask keeps (DINO: 60 %)
    image_root: PathStr = (
        ""  # folder that file_name is relative to (default: datasets.coco_image_root)
    )
    max_images: int = 0  # 0: all
    pictures: int = 24  # per-head mask PNGs for the first N images


@dataclass
class DavisConfig:
    subset: str = "val"
    n_last_frames: int = 7
    size_mask_neighborhood: int = 12
    topk: int = 5
    temperature: float = 0.1
    short_side: int = 480


TASKS: dict[str, type] = {
    "knn": KnnConfig,
    "linear": LinearConfig,
    "discover": DiscoverConfig,
    "attention": AttentionConfig,
    "davis": DavisConfig,
}
