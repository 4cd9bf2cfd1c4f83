"""Frames as the loader hands them over: decoded (uint8 (3, H, W) tensors) or still JPEG-encoded.

Decoding is torchvision's libjpeg-turbo path (the same pixels as Pillow, in about half the time
on CPU); on CUDA a list of encoded frames is decoded in one nvJPEG batch.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

# torchvision 0.29 announces that TorchCodec will take over image decoding; the pinned version decodes
# (the same pixels as Pillow, tested), and moving needs TorchCodec built against the pinned torch.
warnings.filterwarnings(
    "ignore",
    message="The image decoding and encoding capabilities of TorchVision",
    category=DeprecationWarning,
)


@dataclass
class EncodedFrame:
    """A JPEG frame's bytes (a uint8 tensor, so it crosses processes in shared memory) and the size
    its header gives: planning views needs only the size, and the training device decodes."""

    data: torch.Tensor
    height: int
    width: int

    @staticmethod
    def of(payload: bytes) -> EncodedFrame:
        width, height = Image.open(io.BytesIO(payload)).size  # parses the header only
        return EncodedFrame(torch.frombuffer(bytearray(payload), dtype=torch.uint8), height, width)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.height, self.width)

    def pin_memory(self) -> EncodedFrame:
        return EncodedFrame(self.data.pin_memory(), self.height, self.width)


def decode(payload: bytes) -> torch.Tensor:
    """One JPEG as a uint8 (3, H, W) RGB tensor (greyscale and CMYK converted)."""
    return decode_jpeg(
        torch.frombuffer(bytearray(payload), dtype=torch.uint8), mode=ImageReadMode.RGB
    )


def on_device(
    frames: list[torch.Tensor | EncodedFrame], device: torch.device | str
) -> list[torch.Tensor]:
    """Frames on ``device``: decoded ones copied (asynchronously from pinned memory), encoded ones
    decoded there, all in one batched call."""
    encoded = [i for i, f in enumerate(frames) if isinstance(f, EncodedFrame)]
    out = [f if isinstance(f, EncodedFrame) else f.to(device, non_blocking=True) for f in frames]
    if encoded:
        decoded = decode_jpeg(
            [frames[i].data for i in encoded], mode=ImageReadMode.RGB, device=device
        )
        for i, frame in zip(encoded, decoded):
            out[i] = frame
    return out
