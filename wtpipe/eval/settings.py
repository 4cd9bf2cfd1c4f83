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


# Each field's help is the comment on its line (wtpipe.config.field_help): not reformatted.
# fmt: off
@dataclass
class KnnConfig:
    ks: tuple[int, ...] = KS  # neighbour counts scored (capped at the training set's size)
    temperature: float = TEMPERATURE  # each neighbour votes exp(cosine / temperature) (DINO)
    image_size: int = 224  # centre crop after a resize to 256/224 of it (DINO)
    batch_size: int = 32  # images per forward pass
    cache_dir: PathStr = DEFAULT_CACHE  # features cached by weights and image files; "": no cache


@dataclass
class LinearConfig:
    features: Kind = "last4"  # last4: [CLS] of the last 4 blocks (ViT-S); cls_avgpool: [CLS] + mean patch; cls
    epochs: int = 100  # passes over the training features
    batch_size: int = 32  # features per SGD step; the lr scales with it over 256
    lr: float = 0.01  # at a batch of 256; cosine to 0
    seed: int = 0  # the linear layer's init and the feature order
    image_size: int = 224  # centre crop after a resize to 256/224 of it
    cache_dir: PathStr = DEFAULT_CACHE  # features cached by weights and image files; "": no cache


@dataclass
class DiscoverConfig:
    methods: tuple[Literal["tokencut", "lost"], ...] = ("tokencut", "lost")  # discovery methods scored
    tau: float = 0.2  # TokenCut: cosine similarity above it is an edge
    eps: float = 1e-5  # TokenCut: weight of the other edges
    k_patches: int = 100  # LOST: lowest-degree patches correlated with the seed
    image_root: PathStr = ""  # COCO json: its file_names' folder; "": SPLIT/ beside annotations/, else beside the json
    max_images: int = 0  # 0: all
    pictures: int = 24  # overlay PNGs for the first N images


@dataclass
class AttentionConfig:
    keep: float = 0.6  # share of each head's [CLS] attention mass its mask keeps (DINO: 60 %)
    image_root: PathStr = ""  # the json's file_names' folder; "": SPLIT/ beside annotations/, else beside the json
    max_images: int = 0  # 0: all
    pictures: int = 24  # per-head mask PNGs for the first N images


@dataclass
class DavisConfig:
    subset: str = "val"  # ImageSets/2017/SUBSET.txt lists the sequences
    n_last_frames: int = 7  # previous frames in the context, besides the first (DINO)
    size_mask_neighborhood: int = 12  # patches around each patch it may take labels from
    topk: int = 5  # neighbours whose labels are averaged
    temperature: float = 0.1  # affinity exp(cosine / temperature)
    short_side: int = 480  # frames resized to it, long side floored to a multiple of 64


# fmt: on
TASKS: dict[str, type] = {
    "knn": KnnConfig,
    "linear": LinearConfig,
    "discover": DiscoverConfig,
    "attention": AttentionConfig,
    "davis": DavisConfig,
}
