"""ViTBackbone: timm ViTs, fused attention, and the last block's CLS attention without N x N maps."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from wtpipe.models.vit import ViTBackbone, resample_pos_embed_dino


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


def keys_cubic(distance: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution kernel (a = -0.75, as PyTorch's bicubic)."""
    s = np.abs(distance)
    near = ((a + 2) * s - (a + 3)) * s * s + 1
    far = ((a * s - 5 * a) * s + 8 * a) * s - 4 * a
    return np.where(s <= 1, near, np.where(s < 2, far, 0.0))


def dino_resize_1d(values: np.ndarray, out: int, scale_factor: float) -> np.ndarray:
    """Resample axis 0 of ``values`` as bicubic interpolation with a given scale factor: output i
    samples the input at (i + 0.5) / scale_factor - 0.5 with the kernel over the 4 nearest
    inputs, indices clamped at the borders."""
    n = values.shape[0]
    result = np.zeros((out, *values.shape[1:]))
    for i in range(out):
        x = (i + 0.5) / scale_factor - 0.5
        base = int(np.floor(x))
        for j in range(base - 1, base + 3):
            result[i] += keys_cubic(x - j) * values[min(max(j, 0), n - 1)]
    return result


def test_dino_position_embedding_interpolation_equals_an_independent_computation():
    """96-px views (6 x 6 patches): DINO's bicubic resize with scale (6 + 0.1) / 14, no antialias."""
    torch.manual_seed(0)
    model = ViTBackbone("vit_tiny_patch16_224")
    pos = model.vit.pos_embed.detach()
    grid = pos[0, 1:].reshape(14, 14, -1).double().numpy()
    rows = dino_resize_1d(grid, 6, 6.1 / 14)
    expected = (
        dino_resize_1d(rows.transpose(1, 0, 2), 6, 6.1 / 14).transpose(1, 0, 2).reshape(36, -1)
    )
    got = resample_pos_embed_dino(pos, (6, 6))
    np.testing.assert_allclose(got[0, 1:].numpy(), expected, atol=1e-6)
    assert torch.equal(got[0, 0], pos[0, 0]) and resample_pos_embed_dino(pos, (14, 14)) is pos
    x = torch.randn(2, 3, 96, 96)
    vit = model.vit
    with torch.no_grad():
        tokens = torch.cat([vit.cls_token.expand(2, -1, -1), vit.patch_embed(x).flatten(1, 2)], 1)
        tokens = vit.norm(
            vit.blocks(
                tokens + torch.cat([pos[:, :1], torch.from_numpy(expected)[None].float()], 1)
            )
        )
        assert torch.allclose(model(x), tokens[:, 0], atol=1e-5)
        timm_model = ViTBackbone("vit_tiny_patch16_224", pos_interpolation="timm")
        timm_model.load_state_dict(model.state_dict())
        assert (timm_model(x) - model(x)).abs().max() > 1e-3  # the two resizes really differ
    big = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(big), timm_model(big))  # the trained grid is never resized
