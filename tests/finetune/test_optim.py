"""Layer-wise lr decay groups and the poly schedule."""

from __future__ import annotations

import pytest
import torch

from wtpipe.finetune.optim import layer_decay_groups, layer_id
from wtpipe.finetune.seg_heads import SegModel
from wtpipe.models.vit import ViTBackbone
from wtpipe.ops.schedules import poly


def test_each_block_gets_decay_to_the_depth_and_the_head_full_rate():
    model = SegModel(
        ViTBackbone("vit_tiny_patch16_224"), num_classes=3, head="upernet", channels=16
    )
    head = torch.nn.ModuleList(
        [model.features.resample, model.head]
    )  # everything that is not the ViT
    groups = layer_decay_groups(model.features.backbone, head, weight_decay=0.05, layer_decay=0.65)
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    vit = model.features.backbone.vit
    assert len(scale) == sum(
        1 for p in model.parameters() if p.requires_grad
    )  # every parameter, once
    assert scale[id(vit.patch_embed.proj.weight)] == pytest.approx(0.65**13)
    assert scale[id(vit.blocks[0].mlp.fc1.weight)] == pytest.approx(0.65**12)
    assert scale[id(vit.blocks[11].mlp.fc1.weight)] == pytest.approx(0.65**1)
    assert scale[id(model.head.classifier.weight)] == 1.0 and layer_id("norm.weight", 12) == 13
    assert (
        id(vit.norm.weight) not in scale
    )  # the pyramid's maps come before the final norm: not trained
    assert scale[id(model.features.resample[0][0].weight)] == 1.0
    assert decay[id(vit.pos_embed)] == 0.0 and decay[id(vit.blocks[3].norm1.weight)] == 0.0
    assert decay[id(vit.blocks[3].attn.qkv.weight)] == 0.05
    torch.optim.AdamW(groups)  # a valid optimizer spec


def test_poly_with_linear_warmup_matches_mmcv():
    assert poly(0, 100, 1e-4, warmup_steps=10) == pytest.approx(1e-4 * 1e-6)
    assert poly(5, 100, 1e-4, warmup_steps=10) == pytest.approx(
        1e-4 * 0.95 * (1 - 0.5 * (1 - 1e-6))
    )
    assert poly(10, 100, 1e-4, warmup_steps=10) == pytest.approx(1e-4 * 0.9)
    assert poly(50, 100, 1e-4, final=1e-6, power=1.0) == pytest.approx((1e-4 - 1e-6) * 0.5 + 1e-6)
    assert poly(100, 100, 1e-4) == 0.0 and poly(150, 100, 1e-4) == 0.0
