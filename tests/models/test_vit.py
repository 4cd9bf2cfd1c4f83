"""ViTBackbone: timm ViTs, fused attention, and the last block's CLS attention without N x N maps."""

from __future__ import annotations

import pytest
import timm
import torch

from wtpipe.models.vit import ViTBackbone


def manual_last_block_attention(model: ViTBackbone, x: torch.Tensor) -> torch.Tensor:
    """Full attention matrix of the last block, computed the textbook way."""
    vit = model.vit
    tokens = vit.patch_embed(x)
    tokens = vit._pos_embed(tokens)
    tokens = vit.norm_pre(tokens)
    for block in vit.blocks[:-1]:
        tokens = block(tokens)
    block = vit.blocks[-1]
    h = block.norm1(tokens)
    b, n, _ = h.shape
    qkv = block.attn.qkv(h).reshape(b, n, 3, block.attn.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k = qkv[0], qkv[1]
    return ((q * block.attn.scale) @ k.transpose(-2, -1)).softmax(-1)


def test_cls_attention_equals_the_textbook_computation():
    torch.manual_seed(0)
    model = ViTBackbone("vit_tiny_patch16_224").eval()
    x = torch.randn(2, 3, 64, 96)  # dynamic image size: 4 x 6 patches
    with torch.no_grad():
        cls, patches, last = model.forward_with_attention(x)
        full = manual_last_block_attention(model, x)
    assert cls.shape == (2, 192) and patches.shape == (2, 24, 192)
    assert last.cls_attn.shape == (2, 3, 24) and last.q.shape == (2, 3, 24, 64)
    assert torch.allclose(last.cls_attn, full[:, :, 0, 1:], atol=1e-5)
    assert torch.allclose(cls, model(x), atol=1e-5)


def test_every_block_uses_fused_attention_and_no_attention_is_kept_after_forward():
    model = ViTBackbone("vit_tiny_patch16_224")
    assert all(block.attn.fused_attn for block in model.vit.blocks)
    model(torch.randn(1, 3, 32, 32))
    assert model._captured is None


def test_state_dict_is_timm_layout():
    model = ViTBackbone("vit_tiny_patch16_224")
    plain = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0)
    assert plain.load_state_dict(model.vit.state_dict(), strict=True)


def test_unknown_arch_is_refused():
    with pytest.raises(ValueError, match="unknown arch"):
        ViTBackbone("resnet50")
