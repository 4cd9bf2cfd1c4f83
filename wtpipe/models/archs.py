"""The backbones wtpipe trains, as plain names: configs import this without importing torch."""

from __future__ import annotations

from typing import Literal

ARCHS = ("vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224")

PosInterpolation = Literal["dino", "timm"]
