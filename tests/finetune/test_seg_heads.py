"""The segmentation heads: pyramid strides and blocks, logits at input size, gradients reach the backbone."""

from __future__ import annotations

import pytest
import torch

from wtpipe.finetune.seg_heads import MultiScaleViT, SegModel, pyramid_blocks
from wtpipe.models.vit import ViTBackbone


def test_pyramid_takes_blocks_4_6_8_12_at_strides_4_8_16_32():
    assert pyramid_blocks(12) == (4, 6, 8, 12)
    torch.manual_seed(0)
    backbone = ViTBackbone("vit_tiny_patch16_224")
    maps = MultiScaleViT(backbone).eval()(torch.randn(2, 3, 64, 96))
    assert [tuple(m.shape[-2:]) for m in maps] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    # The stride-16 level is block 8's output itself.
    direct = backbone.vit.forward_intermediates(
        torch.randn(1, 3, 32, 32), indices=[7], intermediates_only=True
    )
    assert direct[0].shape == (1, backbone.embed_dim, 2, 2)


@pytest.mark.parametrize("head", ["linear", "upernet"])
def test_logits_come_at_input_size_and_train_the_backbone(head):
    torch.manual_seed(0)
    model = SegModel(ViTBackbone("vit_tiny_patch16_224"), num_classes=5, head=head, channels=32)
    logits = model(torch.randn(2, 3, 64, 80))
    assert logits.shape == (2, 5, 64, 80)
    logits.logsumexp(1).mean().backward()
    assert model.features.backbone.vit.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_an_unknown_head_is_refused():
    with pytest.raises(ValueError, match="linear' or 'upernet"):
        SegModel(ViTBackbone("vit_tiny_patch16_224"), 3, head="fcn")
