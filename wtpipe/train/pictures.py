"""DoRA mask pictures from a saved checkpoint (``wtpipe-viz masks``)."""

from __future__ import annotations

import os

from wtpipe.config import from_dict
from wtpipe.data.index import ShardIndex
from wtpipe.data.loader import ClipDataset
from wtpipe.engine import checkpoint, rundir
from wtpipe.methods.dora import DoRAMethod
from wtpipe.methods.dora_viz import write_mask_pngs
from wtpipe.train.config import TrainConfig


def masks_from_checkpoint(path: str, shards: str, out_dir: str, clips: int = 4) -> list[str]:
    """``path``: a checkpoint directory or a run directory (its latest checkpoint)."""
    if os.path.isdir(os.path.join(path, rundir.CHECKPOINTS)):
        found = rundir.latest(os.path.join(path, rundir.CHECKPOINTS))
        if found is None:
            raise FileNotFoundError(f"{path}: no finished checkpoint")
        path = found
    state, _ = checkpoint.load(path)
    config = from_dict(TrainConfig, state["config"])
    if config.method.name != "dora":
        raise ValueError(
            f"{path} is a {config.method.name} checkpoint; mask pictures need a DoRA run"
        )
    method = DoRAMethod(config)
    method.teacher.load_state_dict(state["teacher"])
    method.teacher.eval()
    dataset = ClipDataset(
        ShardIndex.build(shards), config.data.clip_frames, config.data.frame_gap, method.views()
    )
    return write_mask_pngs(method, dataset, out_dir, clips, prefix=f"step{state['step']:08d}")
