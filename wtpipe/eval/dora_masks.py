"""Write DoRA mask pictures for a few clips, from a live method or from a checkpoint."""

from __future__ import annotations

import os

import torch

from wtpipe.config import from_dict
from wtpipe.data.index import ShardIndex
from wtpipe.data.loader import ClipDataset
from wtpipe.eval.visualize import mask_sheet, save_png
from wtpipe.methods.dora import DoRAMethod
from wtpipe.train import checkpoint
from wtpipe.train.config import TrainConfig


@torch.no_grad()
def write_mask_pngs(method: DoRAMethod, dataset: ClipDataset, out_dir: str, clips: int = 4,
                    prefix: str = "masks") -> list[str]:
    """One PNG per clip (clip i = sample i * stride, fixed seeds, so sheets are comparable over time).

    Runs under ``fork_rng`` so that drawing the heads does not move the training RNG.
    """
    os.makedirs(out_dir, exist_ok=True)
    device = next(method.teacher.parameters()).device
    stride = max(1, len(dataset) // clips)
    paths = []
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)
        for i in range(min(clips, len(dataset))):
            globals_, _ = dataset[(i * stride, i)]
            found = method.masks(globals_[None].to(device))
            sheet = mask_sheet(globals_, found.masks[0], found.attention[0], found.heads.tolist())
            paths.append(save_png(sheet, os.path.join(out_dir, f"{prefix}-clip{i}.png")))
    return paths


def masks_from_checkpoint(path: str, shards: str, out_dir: str, clips: int = 4) -> list[str]:
    """``path``: a checkpoint directory or a run directory (its latest checkpoint)."""
    if os.path.isdir(os.path.join(path, "checkpoints")):
        found = checkpoint.latest(os.path.join(path, "checkpoints"))
        if found is None:
            raise FileNotFoundError(f"{path}: no finished checkpoint")
        path = found
    state, _ = checkpoint.load(path)
    config = from_dict(TrainConfig, state["config"])
    if config.method.name != "dora":
        raise ValueError(f"{path} is a {config.method.name} checkpoint; mask pictures need a DoRA run")
    method = DoRAMethod(config)
    method.teacher.load_state_dict(state["teacher"])
    method.teacher.eval()
    dataset = ClipDataset(ShardIndex.build(shards), config.data.clip_frames, config.data.frame_gap, method.views())
    return write_mask_pngs(method, dataset, out_dir, clips, prefix=f"step{state['step']:08d}")
