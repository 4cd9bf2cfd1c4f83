"""Mask R-CNN on a plain ViT with ViTDet's simple feature pyramid (Li et al., 2022), in torchvision.

The pyramid is built from the last block alone (stride 16): two 2x2 transposed convolutions
(LayerNorm and GELU between) give stride 4, one gives 8, identity 16, a 2x2 max-pool 32; each
level then goes through a 1x1 and a 3x3 convolution, each followed by a channel LayerNorm, to 256
channels, and a max-pool of the stride-32 level adds stride 64 (P2-P6). No FPN top-down path:
that is ViTDet's point. torchvision's RPN, RoI heads and mask head do the rest.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

from wtpipe.eval.features import MEAN, STD
from wtpipe.models.vit import ViTBackbone

LEVELS = ("p2", "p3", "p4", "p5", "p6")


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map (detectron2's ``LayerNorm`` for convs)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SimpleFeaturePyramid(nn.Module):
    def __init__(self, backbone: ViTBackbone, out_channels: int = 256) -> None:
        super().__init__()
        self.backbone = backbone
        self.out_channels = out_channels
        dim = backbone.embed_dim
        scales = [
            nn.Sequential(
                nn.ConvTranspose2d(dim, dim // 2, 2, 2),
                ChannelNorm(dim // 2),
                nn.GELU(),
                nn.ConvTranspose2d(dim // 2, dim // 4, 2, 2),
            ),
            nn.ConvTranspose2d(dim, dim // 2, 2, 2),
            nn.Identity(),
            nn.MaxPool2d(2, 2),
        ]
        widths = [dim // 4, dim // 2, dim, dim]
        self.levels = nn.ModuleList(
            [
                nn.Sequential(
                    scale,
                    nn.Conv2d(w, out_channels, 1, bias=False),
                    ChannelNorm(out_channels),
                    nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                    ChannelNorm(out_channels),
                )
                for scale, w in zip(scales, widths)
            ]
        )
        self.top = nn.MaxPool2d(1, 2)  # P6 from P5, as detectron2's LastLevelMaxPool

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        last = len(self.backbone.vit.blocks) - 1
        tokens = self.backbone.vit.forward_intermediates(
            images, indices=[last], norm=True, intermediates_only=True
        )[0]
        maps = [level(tokens) for level in self.levels]
        maps.append(self.top(maps[-1]))
        return OrderedDict(zip(LEVELS, maps))


def mask_rcnn(
    backbone: ViTBackbone,
    num_classes: int,
    min_size: int | tuple[int, ...] = 800,
    max_size: int = 1333,
    rpn_proposals: int = 2000,
    roi_samples: int = 512,
) -> MaskRCNN:
    """Mask R-CNN (``num_classes`` without background) on the ViT's simple pyramid; images are
    normalised with the pretraining's mean/std, resized to a short side of ``min_size`` (one
    drawn per training batch from a tuple) and padded to a multiple of 32 by torchvision."""
    anchors = AnchorGenerator(
        sizes=((32,), (64,), (128,), (256,), (512,)), aspect_ratios=((0.5, 1.0, 2.0),) * 5
    )
    return MaskRCNN(
        SimpleFeaturePyramid(backbone),
        num_classes=num_classes + 1,
        min_size=min_size,
        max_size=max_size,
        image_mean=list(MEAN),
        image_std=list(STD),
        rpn_anchor_generator=anchors,
        box_roi_pool=MultiScaleRoIAlign(["p2", "p3", "p4", "p5"], 7, 2),
        mask_roi_pool=MultiScaleRoIAlign(["p2", "p3", "p4", "p5"], 14, 2),
        rpn_pre_nms_top_n_train=rpn_proposals,
        rpn_post_nms_top_n_train=rpn_proposals,
        rpn_pre_nms_top_n_test=min(rpn_proposals, 1000),
        rpn_post_nms_top_n_test=min(rpn_proposals, 1000),
        box_batch_size_per_image=roi_samples,
    )


def new_modules(model: MaskRCNN) -> nn.Module:
    """Everything but the pretrained ViT: the pyramid, RPN and RoI heads (full learning rate)."""
    return nn.ModuleList([model.backbone.levels, model.rpn, model.roi_heads])
