#!/usr/bin/env python3
"""DoRA clips per worker CPU-second: the official loader reading the 4K video vs wtpipe's loader.

The official DoRA_ICLR24 loader (re-derived here for timing, from its ``WTDataloader.py`` and
``DataAugmentationDINO``): for every sample it opens the whole video with decord (one thread),
reads 8 full-resolution frames a gap apart, converts them to float, crops the clip to 300 px
(scale 0.2-1) and to 224 px (scale 0.4-1, flipped), then works per frame through PIL: colour
jitter, greyscale, blur (p 0.1) on the global view, and 6 local crops of 112 px (bicubic,
jitter, greyscale, blur p 0.5) taken from the 300-px clip. wtpipe's worker reads the same
8 frames (same 1-s gap) from shards of the same video (ingestion defaults: 4 fps, short side 320,
JPEG) and makes DoRA's views (224 + 6 x 112) itself, or only plans them for the GPU.
Everything runs single-threaded in this process, as a loader worker; CPU time per clip, and the
ratio of clips per CPU-second. The project's target: wtpipe >= 50 x the official loader.

Usage: python benchmarks/official_loader.py [--clips 6] [--video 4K60.mp4]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FRAMES, GAP_S, LOCAL_CROPS = 8, 1.0, 6


class OfficialStyleViews:
    """The official augmentation's work on a clip of full-resolution frames (T, H, W, 3) uint8."""

    def __init__(self) -> None:
        from PIL import ImageFilter
        from torchvision import transforms as T

        class Blur:  # DINO's utils.GaussianBlur: PIL blur of radius U(0.1, 2) with probability p
            def __init__(self, p: float) -> None:
                self.p = p

            def __call__(self, image):
                if random.random() > self.p:
                    return image
                return image.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))

        colour = [
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
        ]
        finish = [T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
        self.T = T
        self.global_frame = T.Compose([T.ToPILImage(), *colour, Blur(0.1), *finish])
        self.local_frame = T.Compose(
            [
                T.ToPILImage(),
                T.RandomResizedCrop(
                    112, scale=(0.05, 0.4), interpolation=T.InterpolationMode.BICUBIC
                ),
                *colour,
                Blur(0.5),
                *finish,
            ]
        )

    def _clip_crop(self, clip: torch.Tensor, size: int, scale: tuple[float, float]) -> torch.Tensor:
        """One random resized crop of the whole clip (T, C, H, W), bilinear as the video transforms."""
        top, left, h, w = self.T.RandomResizedCrop.get_params(clip[0], scale, (3 / 4, 4 / 3))
        return torch.nn.functional.interpolate(
            clip[..., top : top + h, left : left + w],
            size=(size, size),
            mode="bilinear",
            align_corners=False,
        )

    def __call__(self, frames) -> list[torch.Tensor]:
        clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255  # (T, C, H, W), float
        clip = self._clip_crop(clip, 300, (0.2, 1.0))
        globals_ = self._clip_crop(clip, 224, (0.4, 1.0))
        if random.random() < 0.5:
            globals_ = globals_.flip(-1)
        crops = [torch.stack([self.global_frame(f) for f in globals_])]
        crops += [torch.stack([self.local_frame(f) for f in clip]) for _ in range(LOCAL_CROPS)]
        return crops


def official_ms(video: str, clips: int) -> tuple[float, float]:
    """CPU ms per clip: (decord reading the frames, the augmentation)."""
    import decord

    views = OfficialStyleViews()
    fps = decord.VideoReader(video, ctx=decord.cpu(0), num_threads=1).get_avg_fps()
    gap = round(GAP_S * fps)
    read = augment = 0.0
    rng = random.Random(0)
    for _ in range(clips):
        start = time.process_time()
        reader = decord.VideoReader(
            video, ctx=decord.cpu(0), num_threads=1
        )  # per sample, as the official code
        first = rng.randrange(len(reader) - FRAMES * gap)
        frames = reader.get_batch(list(range(first, first + FRAMES * gap, gap))).asnumpy()
        del reader
        middle = time.process_time()
        views(frames)
        augment += time.process_time() - middle
        read += middle - start
    return 1000 * read / clips, 1000 * augment / clips


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument(
        "--video", help="a 4K video (default: benchmarks/ingest.py's 1-minute 4K60 H.264)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a loader worker
    sys.path.insert(0, HERE)
    from ingest import make_4k
    from views import Frames, cpu_ms_per_clip

    from wtpipe.data.index import ShardIndex
    from wtpipe.data.loader import ClipDataset
    from wtpipe.data.transforms import ClipViews, MultiCropSpec
    from wtpipe.shards.build import ShardBuilder
    from wtpipe.shards.settings import BuildSettings

    video = args.video or make_4k(1)
    spec = MultiCropSpec(224, 112, LOCAL_CROPS)
    with tempfile.TemporaryDirectory() as tmp:
        settings = BuildSettings()
        ShardBuilder([video], os.path.join(tmp, "shards"), settings, progress=False).run()
        index = ShardIndex.build(os.path.join(tmp, "shards"))
        gap = round(GAP_S * float(settings.fps))
        ours = {
            name: cpu_ms_per_clip(ClipDataset(index, FRAMES, gap, views), args.clips * 4)
            for name, views in (
                ("read + decode only", Frames()),
                ("views made in the worker", ClipViews(spec)),
                ("views planned (pixels on the GPU)", ClipViews(spec, planned=True)),
            )
        }
    read, augment = official_ms(video, args.clips)
    official = read + augment
    print(
        f"DoRA clip: {FRAMES} frames {GAP_S:g} s apart, 224 + {LOCAL_CROPS} x 112 px views; worker CPU per clip"
    )
    print(f"{'':52} {'ms/clip':>9} {'clips/CPU-s':>12} {'x official':>11}")
    print(f"{'official: decord reads the 4K frames':52} {read:9.1f}")
    print(f"{'official: its augmentation':52} {augment:9.1f}")
    print(f"{'official loader, in all':52} {official:9.1f} {1000 / official:12.2f} {1.0:11.2f}")
    for name, ms in ours.items():
        print(f"{'wtpipe, ' + name:52} {ms:9.1f} {1000 / ms:12.2f} {official / ms:11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
