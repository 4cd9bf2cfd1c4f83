"""Frozen features of image lists, computed once and cached by content.

The cache key covers the weights file's bytes (or the random-init seed), the feature kind, the
image size and every image's path, size and modification time, so a changed checkpoint or
dataset is never served stale features, and k-NN and the linear probe of the same weights and
data share one extraction. Cached files are plain tensors, loaded with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2
from tqdm import tqdm

from wtpipe.atomic import replacing
from wtpipe.eval.datasets import read_rgb
from wtpipe.eval.settings import Kind
from wtpipe.models.vit import ViTBackbone
from wtpipe.models.weights import WeightsInfo

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def center_crop_transform(size: int = 224) -> Callable[[np.ndarray], torch.Tensor]:
    """DINO's evaluation view: resize the short side to size * 256/224 (bicubic), centre crop."""
    steps = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(
                size * 256 // 224, interpolation=v2.InterpolationMode.BICUBIC, antialias=True
            ),
            v2.CenterCrop(size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )
    return lambda rgb: steps(Image.fromarray(rgb))


@torch.no_grad()
def embed(backbone: ViTBackbone, images: torch.Tensor, kind: Kind) -> torch.Tensor:
    """``cls``: [CLS] after the final norm (k-NN); ``last4``: [CLS] of the last 4 blocks, each
    through the final norm, concatenated (DINO's linear probe for ViT-S); ``cls_avgpool``: [CLS]
    and the mean patch token of the last block (DINO's linear probe for ViT-B)."""
    if kind == "cls":
        return backbone(images)
    blocks = 4 if kind == "last4" else 1
    outputs = backbone.vit.forward_intermediates(
        images,
        indices=blocks,
        norm=True,
        return_prefix_tokens=True,
        output_fmt="NLC",
        intermediates_only=True,
    )
    cls = torch.cat([prefix[:, 0] for _, prefix in outputs], dim=1)
    return cls if kind == "last4" else torch.cat([cls, outputs[-1][0].mean(1)], dim=1)


def _key(info: WeightsInfo, kind: str, size: int, paths: list[str]) -> str:
    digest = hashlib.sha256(f"{kind}|{size}|{info.arch}|{info.pos_interpolation}".encode())
    if os.path.isfile(info.source):
        with open(info.source, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    else:
        digest.update(info.source.encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def extract(
    backbone: ViTBackbone,
    info: WeightsInfo,
    paths: list[str],
    kind: Kind,
    cache_dir: str | None,
    size: int = 224,
    batch_size: int = 32,
    desc: str = "features",
) -> tuple[torch.Tensor, np.ndarray]:
    """(features (n_ok, D) float32 on the CPU, indices into ``paths`` of the images that were read)."""
    cache = None
    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)
        cache = os.path.join(cache_dir, f"{kind}-{_key(info, kind, size, paths)}.pt")
        if os.path.exists(cache):
            try:
                saved = torch.load(cache, map_location="cpu", weights_only=True)
                return saved["features"], saved["kept"].numpy()
            except (RuntimeError, EOFError, KeyError, OSError) as err:
                print(
                    f"{cache}: unreadable feature cache, recomputing ({str(err).splitlines()[0]})"
                )
    transform = center_crop_transform(size)
    device = next(backbone.parameters()).device
    features, kept, batch = [], [], []
    for index, path in enumerate(tqdm(paths, desc=desc, unit="img", leave=False)):
        rgb = read_rgb(path)
        if rgb is not None:
            batch.append(transform(rgb))
            kept.append(index)
        if batch and (len(batch) == batch_size or index == len(paths) - 1):
            features.append(embed(backbone, torch.stack(batch).to(device), kind).float().cpu())
            batch = []
    result = torch.cat(features) if features else torch.zeros(0, 0)
    kept_array = np.array(kept, dtype=np.int64)
    if cache:
        with replacing(cache) as tmp:
            torch.save({"features": result, "kept": torch.from_numpy(kept_array)}, tmp)
    return result, kept_array
