"""timm ViT backbone with fused attention everywhere, plus the last block's CLS attention and q/k.

DoRA needs, from the teacher's last block only, the [CLS]->patch attention of every head and the
patch queries/keys. A forward hook on that block's ``qkv`` projection captures them; the block
itself still runs fused SDPA, so no N x N attention matrix is ever materialised: the CLS row is
one (heads x N) product.
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
from torch import nn

ARCHS = ("vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224")


@dataclass
class LastBlockAttention:
    """From the last block: CLS->patch attention (B, H, P), patch queries and keys (B, H, P, d)."""

    cls_attn: torch.Tensor
    q: torch.Tensor
    k: torch.Tensor


class ViTBackbone(nn.Module):
    def __init__(self, arch: str = "vit_small_patch16_224", drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")
        # pretrained=False: nothing is downloaded; weights come from our own training.
        self.vit = timm.create_model(arch, pretrained=False, num_classes=0, dynamic_img_size=True,
                                     drop_path_rate=drop_path_rate)
        for block in self.vit.blocks:
            block.attn.fused_attn = True
        self.embed_dim = self.vit.embed_dim
        self.num_heads = self.vit.blocks[-1].attn.num_heads
        self.patch_size = self.vit.patch_embed.patch_size[0]
        self._captured: torch.Tensor | None = None
        self.vit.blocks[-1].attn.qkv.register_forward_hook(self._capture_qkv)
        self._capture = False

    def _capture_qkv(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if self._capture:
            self._captured = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[CLS] token after the final norm, (B, D)."""
        return self.vit(x)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, LastBlockAttention]:
        """([CLS] (B, D), patch tokens (B, P, D), last-block attention) in one forward pass."""
        self._capture = True
        try:
            tokens = self.vit.forward_features(x)
        finally:
            self._capture = False
        qkv, self._captured = self._captured, None
        attn = self.vit.blocks[-1].attn
        batch, count, _ = qkv.shape
        q, k, _ = qkv.reshape(batch, count, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = attn.q_norm(q), attn.k_norm(k)
        prefix = self.vit.num_prefix_tokens
        logits = (q[:, :, :1] * attn.scale) @ k.transpose(-2, -1)  # (B, H, 1, N): the CLS row only
        cls_attn = logits.softmax(dim=-1)[:, :, 0, prefix:]
        return tokens[:, 0], tokens[:, prefix:], LastBlockAttention(cls_attn, q[:, :, prefix:], k[:, :, prefix:])
