"""Segmentation heads on a ViT, as the iBOT/BEiT ADE20K protocols build them in mmseg.

- :class:`LinearSegHead`: batch norm and a 1x1 convolution on the last block's patch tokens
  (the frozen-backbone "linear" protocol).
- :class:`MultiScaleViT` + :class:`UperNetHead`: blocks 4/6/8/12 resampled to strides 4/8/16/32
  (two 2x2 transposed convolutions / one / identity / 2x2 max-pool), then UperNet (pyramid pooling
  on the coarsest map, a top-down FPN, fusion of all levels, a 1x1 classifier).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wtpipe.models.vit import ViTBackbone

BLOCKS = (
    4,
    6,
    8,
    12,
)  # 1-based, for 12-block ViTs; :func:`pyramid_blocks` scales them to other depths


def pyramid_blocks(depth: int) -> tuple[int, ...]:
    """The blocks whose outputs feed the four pyramid levels (4/6/8/12 of 12)."""
    return tuple(round(b * depth / 12) for b in BLOCKS)


def conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class LinearSegHead(nn.Module):
    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(dim)
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.norm(features[-1]))


class MultiScaleViT(nn.Module):
    """The backbone's patch tokens after four blocks as (B, D, H/s, W/s) maps at strides 4/8/16/32."""

    def __init__(self, backbone: ViTBackbone) -> None:
        super().__init__()
        self.backbone = backbone
        self.indices = [b - 1 for b in pyramid_blocks(len(backbone.vit.blocks))]
        backbone.vit.norm.requires_grad_(
            False
        )  # the maps are taken before it: unused, so not trained (DDP)
        dim = backbone.embed_dim
        self.resample = nn.ModuleList(
            [
                nn.Sequential(
                    nn.ConvTranspose2d(dim, dim, 2, 2),
                    nn.BatchNorm2d(dim),
                    nn.GELU(),
                    nn.ConvTranspose2d(dim, dim, 2, 2),
                ),
                nn.ConvTranspose2d(dim, dim, 2, 2),
                nn.Identity(),
                nn.MaxPool2d(2, 2),
            ]
        )

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        maps = self.backbone.vit.forward_intermediates(
            images, indices=self.indices, intermediates_only=True
        )
        return [resample(m) for resample, m in zip(self.resample, maps)]


class UperNetHead(nn.Module):
    def __init__(
        self,
        dim: int,
        num_classes: int,
        channels: int = 512,
        pool_scales: tuple[int, ...] = (1, 2, 3, 6),
        levels: int = 4,
    ) -> None:
        super().__init__()
        self.pools = nn.ModuleList(
            [
                nn.Sequential(nn.AdaptiveAvgPool2d(s), conv_bn_relu(dim, channels, 1))
                for s in pool_scales
            ]
        )
        self.bottleneck = conv_bn_relu(dim + len(pool_scales) * channels, channels, 3)
        self.lateral = nn.ModuleList([conv_bn_relu(dim, channels, 1) for _ in range(levels - 1)])
        self.smooth = nn.ModuleList(
            [conv_bn_relu(channels, channels, 3) for _ in range(levels - 1)]
        )
        self.fuse = conv_bn_relu(levels * channels, channels, 3)
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def _ppm(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [
            F.interpolate(p(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
            for p in self.pools
        ]
        return self.bottleneck(torch.cat([x, *pooled], dim=1))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        maps = [lateral(f) for lateral, f in zip(self.lateral, features[:-1])] + [
            self._ppm(features[-1])
        ]
        for i in range(len(maps) - 1, 0, -1):  # top-down: each level gets the coarser one added
            maps[i - 1] = maps[i - 1] + F.interpolate(
                maps[i], size=maps[i - 1].shape[-2:], mode="bilinear", align_corners=False
            )
        outs = [smooth(m) for smooth, m in zip(self.smooth, maps[:-1])] + [maps[-1]]
        size = outs[0].shape[-2:]
        fused = self.fuse(
            torch.cat(
                [outs[0]]
                + [
                    F.interpolate(o, size=size, mode="bilinear", align_corners=False)
                    for o in outs[1:]
                ],
                dim=1,
            )
        )
        return self.classifier(self.dropout(fused))


class SegModel(nn.Module):
    """Backbone + head; logits at the input's resolution. ``head``: "linear" or "upernet"."""

    def __init__(
        self, backbone: ViTBackbone, num_classes: int, head: str = "upernet", channels: int = 512
    ) -> None:
        super().__init__()
        self.head_name = head
        if head == "linear":
            self.features = _LastBlock(backbone)
            self.head = LinearSegHead(backbone.embed_dim, num_classes)
        elif head == "upernet":
            self.features = MultiScaleViT(backbone)
            self.head = UperNetHead(backbone.embed_dim, num_classes, channels)
        else:
            raise ValueError(f"head must be 'linear' or 'upernet', not {head!r}")

    def new_modules(self) -> nn.Module:
        """Everything that is not the pretrained ViT (trained at the full learning rate)."""
        resample = getattr(self.features, "resample", None)
        return nn.ModuleList([self.head] if resample is None else [resample, self.head])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(images))
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)


class _LastBlock(nn.Module):
    def __init__(self, backbone: ViTBackbone) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        last = len(self.backbone.vit.blocks) - 1
        return self.backbone.vit.forward_intermediates(
            images, indices=[last], norm=True, intermediates_only=True
        )
