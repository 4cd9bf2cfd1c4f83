"""The ``data`` section of a pretraining config: what the shards are turned into, and where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wtpipe.config import PathStr, resumable


# Each field's help is the comment on its line (wtpipe.config.field_help): not reformatted.
# fmt: off
@dataclass
class DataConfig:
    shards: PathStr = resumable("")  # a wtpipe-shards output directory (manifest.json)
    batch_size: int = 64  # clips per rank per micro-step
    num_workers: int = resumable(4)  # loader processes per rank (each single-threaded; see run.threads)
    clip_frames: int = 1  # DINO: single frames
    frame_gap: int = 1  # stored frames between clip frames
    global_size: int = 224  # pixels of the two global views
    local_size: int = 96  # pixels of the local views
    local_crops: int = 8  # local views per clip
    global_scale: tuple[float, float] = (0.4, 1.0)  # area fraction of the random-resized global crops
    local_scale: tuple[float, float] = (0.05, 0.4)  # area fraction of the local crops
    local_flip: bool = True  # random horizontal flip of the local crops (DINO: yes; official DoRA: no)
    global_interpolation: Literal["bicubic", "bilinear"] = "bicubic"  # global and pre-crop: bilinear in official DoRA
    clip_precrop: int = 0  # DoRA: px of a per-clip crop the global and local crops are cut from (official 300); 0: none
    clip_precrop_scale: tuple[float, float] = (0.2, 1.0)  # DoRA: area fraction of the frame the pre-crop covers
    photometric: Literal["dino", "swav"] = "dino"  # single-frame views' colour/blur/solarise recipe: DINO's or SwAV's
    augment_on: Literal["auto", "device", "loader"] = resumable("auto")  # views' pixels: workers or device (auto: CUDA)
    decode_on: Literal["auto", "loader", "device"] = resumable("auto")  # JPEG decoding: workers or nvJPEG (auto: CUDA)

    def __post_init__(self) -> None:
        if self.decode_on == "device" and self.augment_on == "loader":
            raise ValueError("data.decode_on=device needs the views rendered there too "
                             "(data.augment_on=device or auto)")

    def views_on_device(self) -> bool:
        if self.augment_on == "auto":
            return self.decode_on == "device" or _cuda()
        return self.augment_on == "device"

    def decodes_on_device(self) -> bool:
        """auto: nvJPEG where CUDA renders the views (on an H100, DoRA ViT-S/16 +16 % clips/s, DINO level)."""
        if self.decode_on == "auto":
            return self.views_on_device() and _cuda()
        return self.decode_on == "device"


def _cuda() -> bool:
    """Whether CUDA is here; torch is imported only when asked (config errors stay fast)."""
    import torch

    return torch.cuda.is_available()
