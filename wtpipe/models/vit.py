"""timm ViT backbone with fused attention everywhere, plus the last block's CLS attention and q/k.

DoRA needs, from the teacher's last block only, the [CLS]->patch attention of every head and the
patch queries/keys. A forward hook on that block's ``qkv`` projection captures them; the block
itself still runs fused SDPA, so no N x N attention matrix is ever materialised: the CLS row is
one (heads x N) product.

Views of another size than the 14 x 14 grid (DINO's 96-px local crops, DoRA's 112-px ones) need
resized position embeddings. ``pos_interpolation="dino"`` (default) resizes them as the official
DINO/DoRA ViT does: bicubic with the scale factor (g + 0.1) / 14 and no antialiasing.
``"timm"`` keeps timm's ``dynamic_img_size`` resize (bicubic to the exact size, antialiased),
which differs by up to 6e-2 in the embeddings at 96 px. At 224 px both leave them untouched.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass

import timm
import torch
import torch.nn.functional as F
from torch import nn

from wtpipe.models.archs import ARCHS, PosInterpolation  # noqa: F401  (re-exported)


@dataclass
class LastBlockAttention:
    """From the last block: CLS->patch attention (B, H, P), patch queries and keys (B, H, P, d)."""

    cls_attn: torch.Tensor
    q: torch.Tensor
    k: torch.Tensor


def resample_pos_embed_dino(
    pos_embed: torch.Tensor, grid: tuple[int, int], prefix: int = 1
) -> torch.Tensor:
    """Position embeddings (1, prefix + N, D) for a ``grid`` (h, w) of patches, as DINO's
    ``interpolate_pos_encoding``: bicubic with scale factors ((h + 0.1) / sqrt(N), (w + 0.1) / sqrt(N)),
    no antialiasing; untouched when the grid is the trained one."""
    side = math.isqrt(pos_embed.shape[1] - prefix)
    if tuple(grid) == (side, side):
        return pos_embed
    patches = pos_embed[:, prefix:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    scale = (
        (grid[0] + 0.1) / side,
        (grid[1] + 0.1) / side,
    )  # +0.1: DINO's guard against rounding down
    patches = F.interpolate(patches.float(), scale_factor=scale, mode="bicubic").to(pos_embed.dtype)
    if tuple(patches.shape[-2:]) != tuple(grid):
        raise ValueError(
            f"DINO position-embedding interpolation gave {tuple(patches.shape[-2:])}, not {grid}"
        )
    return torch.cat(
        [pos_embed[:, :prefix], patches.permute(0, 2, 3, 1).reshape(1, -1, pos_embed.shape[-1])], 1
    )


def _pos_embed_dino(vit: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Replaces timm's ``_pos_embed`` (patch tokens arrive as (B, h, w, D) with dynamic_img_size)."""
    batch, h, w, dim = x.shape
    tokens = torch.cat([vit.cls_token.expand(batch, -1, -1), x.reshape(batch, h * w, dim)], dim=1)
    return vit.pos_drop(
        tokens + resample_pos_embed_dino(vit.pos_embed, (h, w), vit.num_prefix_tokens)
    )


class ViTBackbone(nn.Module):
    def __init__(
        self,
        arch: str = "vit_small_patch16_224",
        drop_path_rate: float = 0.0,
        pos_interpolation: PosInterpolation = "dino",
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")
        # pretrained=False: nothing is downloaded; weights come from our own training.
        self.vit = timm.create_model(
            arch,
            pretrained=False,
            num_classes=0,
            dynamic_img_size=True,
            drop_path_rate=drop_path_rate,
        )
        if pos_interpolation == "dino":
            self.vit._pos_embed = types.MethodType(_pos_embed_dino, self.vit)
        elif pos_interpolation != "timm":
            raise ValueError(
                f"pos_interpolation must be 'dino' or 'timm', not {pos_interpolation!r}"
            )
        for block in self.vit.blocks:
            block.attn.fused_attn = True
        self.arch, self.pos_interpolation = arch, pos_interpolation
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

    def forward_with_attention(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, LastBlockAttention]:
        """([CLS] (B, D), patch tokens (B, P, D), last-block attention) in one forward pass."""
        self._capture = True
        try:
            tokens = self.vit.forward_features(x)
        finally:
            self._capture = False
        qkv, self._captured = self._captured, None
        attn = self.vit.blocks[-1].attn
        batch, count, _ = qkv.shape
        q, k, _ = (
            qkv.reshape(batch, count, 3, attn.num_heads, attn.head_dim)
            .permute(2, 0, 3, 1, 4)
            .unbind(0)
        )
        q, k = attn.q_norm(q), attn.k_norm(k)
        prefix = self.vit.num_prefix_tokens
        logits = (q[:, :, :1] * attn.scale) @ k.transpose(-2, -1)  # (B, H, 1, N): the CLS row only
        cls_attn = logits.softmax(dim=-1)[:, :, 0, prefix:]
        return (
            tokens[:, 0],
            tokens[:, prefix:],
            LastBlockAttention(cls_attn, q[:, :, prefix:], k[:, :, prefix:]),
        )
