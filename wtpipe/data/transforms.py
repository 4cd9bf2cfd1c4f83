"""DINO's, SwAV's and DoRA's multi-crop views, as torchvision v2 transforms on uint8 tensors.

DINO (``MultiCrop``): two global crops (224 px, scale 0.4-1; blur p=1.0 on the first, blur p=0.1
+ solarize p=0.2 on the second) and ``local_crops`` local crops (96 px, scale 0.05-0.4, blur
p=0.5); all flipped and colour-jittered (0.4/0.4/0.2/0.1, p=0.8), greyscale p=0.2, normalised
with ImageNet statistics. SwAV (``photometric="swav"``): every crop flipped, jittered at
0.8/0.8/0.8/0.2 (p=0.8), greyscale p=0.2, blurred with p=0.5, never solarised. DoRA
(``ClipViews``): one global view per frame, its crop and flip shared by the whole clip,
optionally all cut from one per-clip pre-crop (``MultiCropSpec.precrop``).

Each view can also be *planned* instead of rendered: :func:`plan` walks the same transform objects
and draws every random parameter in the order their ``forward`` would (so a seed gives the same
views either way) without touching a pixel, as one row of :data:`FIELDS`; the pixel work then runs
batched on the training device (``wtpipe.ops.augment.render``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from wtpipe.data.config import DataConfig
from wtpipe.data.frames import EncodedFrame, on_device
from wtpipe.data.loader import collate_views
from wtpipe.ops.augment import FIELDS, MEAN, STD, F, crops, render, resize_mode


def _plan_into(transform: Any, row: torch.Tensor, height: int, width: int) -> None:
    """Draw ``transform``'s random parameters into ``row`` exactly as its ``forward`` would on an
    image of this size (same torch RNG calls, same order); no pixel is read or written."""
    if isinstance(transform, T.Compose):
        for t in transform.transforms:
            _plan_into(t, row, height, width)
    elif isinstance(transform, T.RandomApply):
        if torch.rand(1) >= transform.p:
            return
        for t in transform.transforms:
            _plan_into(t, row, height, width)
    elif isinstance(transform, T.RandomResizedCrop):
        shape = torch.zeros((), dtype=torch.uint8).expand(3, height, width)  # a size without pixels
        box = transform.make_params([shape])
        row[F["top"]], row[F["left"]], row[F["height"]], row[F["width"]] = (
            box["top"],
            box["left"],
            box["height"],
            box["width"],
        )
        row[F["size"]] = transform.size[0]
        row[F["bilinear"]] = transform.interpolation == InterpolationMode.BILINEAR
    elif isinstance(transform, (T.RandomHorizontalFlip, T.RandomGrayscale, T.RandomSolarize)):
        if torch.rand(1) >= transform.p:
            return
        if isinstance(transform, T.RandomSolarize):
            row[F["solarize"]], row[F["threshold"]] = 1, transform.threshold
        else:
            row[F["flip" if isinstance(transform, T.RandomHorizontalFlip) else "gray"]] = 1
    elif isinstance(transform, T.ColorJitter):
        drawn = transform.make_params([])
        row[F["jitter"]] = 1
        row[F["order0"] : F["order3"] + 1] = drawn["fn_idx"].to(row.dtype)
        for name in ("brightness", "contrast", "saturation", "hue"):
            value = drawn[f"{name}_factor"]
            row[F[name]] = (0.0 if name == "hue" else 1.0) if value is None else value
    elif isinstance(transform, T.GaussianBlur):
        row[F["blur"]], row[F["sigma"]] = 1, transform.make_params([])["sigma"][0]
        row[F["kernel"]] = transform.kernel_size[0]
    elif not isinstance(transform, (T.ToDtype, T.Normalize)):
        raise TypeError(
            f"cannot plan {type(transform).__name__}: render it in the loader (data.augment_on=loader)"
        )


def plan(transform: Any, height: int, width: int, row: torch.Tensor | None = None) -> torch.Tensor:
    """One view's parameters (a float64 row of :data:`FIELDS`); ``row`` continues a partial plan
    (DoRA's clip-wide crop and flip, then each frame's colour)."""
    row = torch.zeros(len(FIELDS), dtype=torch.float64) if row is None else row.clone()
    _plan_into(transform, row, height, width)
    return row


@dataclass(frozen=True)
class MultiCropSpec:
    global_size: int = 224
    local_size: int = 96
    local_crops: int = 8
    global_scale: tuple[float, float] = (0.4, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.4)
    local_flip: bool = True  # DINO flips its local crops; the official DoRA code does not
    bilinear: bool = (
        False  # pre-crop and global crops: bilinear, no antialias (official DoRA) or bicubic (DINO)
    )
    precrop: int = 0  # DoRA: pixels of the per-clip pre-crop the other crops are cut from; 0: none
    precrop_scale: tuple[float, float] = (0.2, 1.0)  # its area fraction of the frame
    photometric: str = "dino"  # colour, blur and solarisation recipe: "dino" or "swav"


def view_spec(data: DataConfig) -> MultiCropSpec:
    """The crop settings of a config's ``data`` section."""
    return MultiCropSpec(
        data.global_size,
        data.local_size,
        data.local_crops,
        data.global_scale,
        data.local_scale,
        data.local_flip,
        data.global_interpolation == "bilinear",
        data.clip_precrop,
        data.clip_precrop_scale,
        data.photometric,
    )


def _resized_crop(
    size: int, scale: tuple[float, float], bilinear: bool = False
) -> T.RandomResizedCrop:
    interpolation, antialias = resize_mode(bilinear)
    return T.RandomResizedCrop(size, scale=scale, interpolation=interpolation, antialias=antialias)


def _blur(p: float) -> T.Transform:
    return T.RandomApply([T.GaussianBlur(kernel_size=23, sigma=(0.1, 2.0))], p=p)


DINO_JITTER = (0.4, 0.4, 0.2, 0.1)  # brightness, contrast, saturation, hue
SWAV_JITTER = (0.8, 0.8, 0.8, 0.2)  # SwAV's colour distortion at strength 1


def _colour(flip: bool = True, jitter: tuple[float, ...] = DINO_JITTER) -> list[T.Transform]:
    return [
        *([T.RandomHorizontalFlip()] if flip else []),
        T.RandomApply([T.ColorJitter(*jitter)], p=0.8),
        T.RandomGrayscale(p=0.2),
    ]


def _finish() -> list[T.Transform]:
    return [T.ToDtype(torch.float32, scale=True), T.Normalize(MEAN, STD)]


@dataclass
class PlannedCrops:
    """DINO's multi-crop views of B frames, planned: the frames (uint8 (3, H, W) each; sizes may
    differ) and every view's parameters (B, 2 + L, len(FIELDS)), host-side."""

    frames: list[torch.Tensor | EncodedFrame]
    params: torch.Tensor

    @staticmethod
    def cat(items: list[PlannedCrops]) -> PlannedCrops:
        return PlannedCrops(
            [f for item in items for f in item.frames], torch.cat([item.params for item in items])
        )

    def pin_memory(self) -> PlannedCrops:
        return PlannedCrops([f.pin_memory() for f in self.frames], self.params)

    def render(self, device: torch.device | str) -> list[torch.Tensor]:
        """The views, as the loader path collates them: [global_1 (B, 3, S, S), global_2, local_1, ...]."""
        frames = on_device(self.frames, device)
        b, views = self.params.shape[:2]
        out = []
        for first, last in ((0, 2), (2, views)):  # the globals, then the locals: one size each
            rows = self.params[:, first:last].transpose(0, 1).reshape(-1, len(FIELDS))  # view-major
            out += list(render(frames, [i % b for i in range(len(rows))], rows).split(b))
        return out


@dataclass
class PlannedClips:
    """DoRA's views of B clips, planned: the frames (T per clip, uint8 (3, H, W) or encoded), each
    clip's pre-crop (B, len(FIELDS); a row of size 0: none), the global views' parameters
    (B, T, len(FIELDS); one crop per clip) and the local ones' (B, T, L, ...). The global and
    local boxes lie in the pre-crop where there is one, in the frame otherwise."""

    frames: list[list[torch.Tensor | EncodedFrame]]
    precrops: torch.Tensor
    globals_: torch.Tensor
    locals_: torch.Tensor

    @staticmethod
    def cat(items: list[PlannedClips]) -> PlannedClips:
        return PlannedClips(
            [f for item in items for f in item.frames],
            torch.cat([i.precrops for i in items]),
            torch.cat([i.globals_ for i in items]),
            torch.cat([i.locals_ for i in items]),
        )

    def pin_memory(self) -> PlannedClips:
        return PlannedClips(
            [[f.pin_memory() for f in clip] for clip in self.frames],
            self.precrops,
            self.globals_,
            self.locals_,
        )

    def render(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """(globals (B, T, 3, S, S), locals (B, T, L, 3, s, s)), as the loader path collates them."""
        b, t, local = self.locals_.shape[:3]
        frames = on_device(
            [frame for clip in self.frames for frame in clip], device
        )  # one decode batch
        clip_of_frame = [i // t for i in range(b * t)]
        if (self.precrops[:, F["size"]] > 0).all():  # every frame of a clip through its clip's box
            frames = list(
                crops(
                    [torch.stack(frames[i * t : (i + 1) * t]) for i in range(b)],
                    clip_of_frame,
                    self.precrops.repeat_interleave(t, dim=0),
                )
            )
        clips = [torch.stack(frames[i * t : (i + 1) * t]) for i in range(b)]
        globals_ = render(clips, clip_of_frame, self.globals_.reshape(b * t, -1))
        locals_ = render(
            frames,
            [i // local for i in range(b * t * local)],
            self.locals_.reshape(b * t * local, -1),
        )
        return globals_.unflatten(0, (b, t)), locals_.unflatten(0, (b, t, local))


class MultiCrop:
    """``frame (3, H, W) uint8 -> [global_1, global_2, local_1, ...]`` float tensors."""

    def __init__(self, spec: MultiCropSpec) -> None:
        if spec.precrop:
            raise ValueError(
                "data.clip_precrop is DoRA's per-clip pre-crop; DINO's views have none"
            )
        glob = _resized_crop(spec.global_size, spec.global_scale, spec.bilinear)
        local = _resized_crop(spec.local_size, spec.local_scale)
        if spec.photometric == "swav":  # every crop alike: strong jitter, blur p=0.5, no solarise
            self.global_1 = self.global_2 = T.Compose(
                [glob, *_colour(jitter=SWAV_JITTER), _blur(0.5), *_finish()]
            )
            self.local = T.Compose(
                [local, *_colour(spec.local_flip, SWAV_JITTER), _blur(0.5), *_finish()]
            )
        else:
            self.global_1 = T.Compose([glob, *_colour(), _blur(1.0), *_finish()])
            self.global_2 = T.Compose(
                [glob, *_colour(), _blur(0.1), T.RandomSolarize(threshold=128, p=0.2), *_finish()]
            )
            self.local = T.Compose([local, *_colour(spec.local_flip), _blur(0.5), *_finish()])
        self.local_crops = spec.local_crops

    def __call__(self, frame: torch.Tensor) -> list[torch.Tensor]:
        return [
            self.global_1(frame),
            self.global_2(frame),
            *(self.local(frame) for _ in range(self.local_crops)),
        ]

    def plan(self, frame: torch.Tensor) -> PlannedCrops:
        """The frame and its views' parameters: the same draws as ``__call__``, no pixel work."""
        height, width = frame.shape[-2:]
        transforms = [self.global_1, self.global_2, *[self.local] * self.local_crops]
        return PlannedCrops(
            [frame], torch.stack([plan(t, height, width) for t in transforms])[None]
        )


class FirstFrameCrops:
    """Single-frame methods' views of a clip (DINO, SwAV): the multi-crop of its (only) frame,
    rendered, or only planned when the training device does the pixel work. A class, so workers
    can pickle it."""

    def __init__(self, crops: MultiCrop, planned: bool = False) -> None:
        self.crops, self.planned = crops, planned

    def __call__(self, frames: list[torch.Tensor]) -> list[torch.Tensor] | PlannedCrops:
        return self.crops.plan(frames[0]) if self.planned else self.crops(frames[0])


def collate_crops(
    items: list[list[torch.Tensor]] | list[PlannedCrops],
) -> list[torch.Tensor] | PlannedCrops:
    """Multi-crop views of several frames -> one batch, rendered or planned."""
    return PlannedCrops.cat(items) if isinstance(items[0], PlannedCrops) else collate_views(items)


class ClipViews:
    """DoRA's views of a clip of T frames: one clip-consistent global crop and flip (so an object
    keeps its place across frames) with per-frame colour, blur and solarisation, plus
    ``local_crops`` independent local crops of every frame. With ``spec.precrop`` (the official
    code's 300 px) one random crop of the clip is taken first and both kinds of crop are cut
    from it, so the global views range from a small part of the frame to all of it.

    ``frames`` (T x (3, H, W) uint8) -> (globals (T, 3, S, S), locals (T, L, 3, s, s)).
    """

    def __init__(self, spec: MultiCropSpec, planned: bool = False) -> None:
        if spec.photometric != "dino":
            raise ValueError(
                f"data.photometric={spec.photometric} is for single-frame "
                "multi-crop (DINO, SwAV); DoRA's clip views use DINO's"
            )
        self.planned = planned  # __call__ only plans (the training device renders)
        self.precrop = (
            _resized_crop(spec.precrop, spec.precrop_scale, spec.bilinear) if spec.precrop else None
        )
        self.crop = _resized_crop(spec.global_size, spec.global_scale, spec.bilinear)
        self.flip = T.RandomHorizontalFlip()
        self.frame = T.Compose([*_colour(flip=False), _blur(0.1), *_finish()])
        self.local = T.Compose(
            [
                _resized_crop(spec.local_size, spec.local_scale),
                *_colour(spec.local_flip),
                _blur(0.5),
                *_finish(),
            ]
        )
        self.local_crops = spec.local_crops

    def __call__(
        self, frames: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor] | PlannedClips:
        if self.planned:
            return self.plan(frames)
        clip = torch.stack(frames)
        if self.precrop is not None:
            clip = self.precrop(clip)  # (T, 3, P, P): one box for the clip
        globals_ = torch.stack(
            [self.frame(f) for f in self.flip(self.crop(clip))]
        )  # one crop and flip for all
        locals_ = torch.stack(
            [torch.stack([self.local(f) for _ in range(self.local_crops)]) for f in clip]
        )
        return globals_, locals_

    def plan(self, frames: list[torch.Tensor]) -> PlannedClips:
        """The clip's frames and its views' parameters: the same draws, in the same order, as
        ``__call__``, no pixel work."""
        height, width = frames[0].shape[-2:]
        precrop = torch.zeros(len(FIELDS), dtype=torch.float64)
        if self.precrop is not None:
            precrop = plan(self.precrop, height, width)
            height = width = self.precrop.size[0]
        shared = plan(self.flip, height, width, plan(self.crop, height, width))
        globals_ = torch.stack([plan(self.frame, height, width, shared) for _ in frames])
        locals_ = torch.stack(
            [
                torch.stack([plan(self.local, height, width) for _ in range(self.local_crops)])
                for _ in frames
            ]
        )
        return PlannedClips([list(frames)], precrop[None], globals_[None], locals_[None])
