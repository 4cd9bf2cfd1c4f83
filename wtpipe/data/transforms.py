"""DINO multi-crop views (DESIGN section 4), as torchvision v2 transforms on uint8 tensors.

Two global crops (224 px, scale 0.4-1; blur p=1.0 on the first, blur p=0.1 + solarize p=0.2 on
the second) and ``local_crops`` local crops (96 px, scale 0.05-0.4, blur p=0.5); all flipped and
colour-jittered (0.4/0.4/0.2/0.1, p=0.8), greyscale p=0.2, normalised with ImageNet statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class MultiCropSpec:
    global_size: int = 224
    local_size: int = 96
    local_crops: int = 8
    global_scale: tuple[float, float] = (0.4, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.4)


def _blur(p: float) -> T.Transform:
    return T.RandomApply([T.GaussianBlur(kernel_size=23, sigma=(0.1, 2.0))], p=p)


def _colour() -> list[T.Transform]:
    return [T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2)]


def _finish() -> list[T.Transform]:
    return [T.ToDtype(torch.float32, scale=True), T.Normalize(MEAN, STD)]


class MultiCrop:
    """``frame (3, H, W) uint8 -> [global_1, global_2, local_1, ...]`` float tensors."""

    def __init__(self, spec: MultiCropSpec) -> None:
        bicubic = InterpolationMode.BICUBIC
        def crop(size: int, scale: tuple[float, float]) -> T.Transform:
            return T.RandomResizedCrop(size, scale=scale, interpolation=bicubic, antialias=True)

        self.global_1 = T.Compose([crop(spec.global_size, spec.global_scale), *_colour(), _blur(1.0), *_finish()])
        self.global_2 = T.Compose([crop(spec.global_size, spec.global_scale), *_colour(), _blur(0.1),
                                   T.RandomSolarize(threshold=128, p=0.2), *_finish()])
        self.local = T.Compose([crop(spec.local_size, spec.local_scale), *_colour(), _blur(0.5), *_finish()])
        self.local_crops = spec.local_crops

    def __call__(self, frame: torch.Tensor) -> list[torch.Tensor]:
        return [self.global_1(frame), self.global_2(frame), *(self.local(frame) for _ in range(self.local_crops))]


class ClipViews:
    """DoRA's views of a clip of T frames: one clip-consistent global crop and flip (so an object
    keeps its place across frames) with per-frame colour, blur and solarisation, plus
    ``local_crops`` independent local crops of every frame.

    ``frames`` (T x (3, H, W) uint8) -> (globals (T, 3, S, S), locals (T, L, 3, s, s)).
    """

    def __init__(self, spec: MultiCropSpec) -> None:
        bicubic = InterpolationMode.BICUBIC
        self.crop = T.RandomResizedCrop(spec.global_size, scale=spec.global_scale, interpolation=bicubic,
                                        antialias=True)
        self.flip = T.RandomHorizontalFlip()
        self.frame = T.Compose([T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
                                T.RandomGrayscale(p=0.2), _blur(0.1), *_finish()])
        self.local = T.Compose([T.RandomResizedCrop(spec.local_size, scale=spec.local_scale,
                                                    interpolation=bicubic, antialias=True),
                                *_colour(), _blur(0.5), *_finish()])
        self.local_crops = spec.local_crops

    def __call__(self, frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        clip = self.flip(self.crop(torch.stack(frames)))  # (T, 3, S, S): one crop and flip for all
        globals_ = torch.stack([self.frame(f) for f in clip])
        locals_ = torch.stack([torch.stack([self.local(f) for _ in range(self.local_crops)]) for f in frames])
        return globals_, locals_
