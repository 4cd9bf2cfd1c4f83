"""The training data stream: each batch is a pure function of (seed, rank, step).

A batch sampler draws sample indices with replacement (resampling) from a generator seeded by
(seed, rank, step); each item carries its own augmentation seed. So every rank gets a batch at
every step (no uneven epoch ends to hang DDP), batches do not depend on worker count or timing,
and resuming at step ``s`` is just starting the sampler at ``s``: no batches are decoded and
thrown away. The loader is deliberately not passed through ``accelerator.prepare``.
"""

from __future__ import annotations

import json
import logging
import random
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from wtpipe.data.clips import clip_indices
from wtpipe.data.frames import EncodedFrame, decode
from wtpipe.data.index import SampleRef, ShardIndex
from wtpipe.shards.read import read_span
from wtpipe.video.clipcodec import decode_clip

log = logging.getLogger(__name__)


def decode_frames(
    ref: SampleRef, wanted: list[int], encoded: bool = False
) -> list[torch.Tensor | EncodedFrame]:
    """Frames ``wanted`` of a sample as (3, H, W) uint8 tensors; JPEG decodes only those, or with
    ``encoded`` leaves them encoded for the training device (an MP4 sample is decoded here anyway)."""
    if ref.is_mp4:
        frames = decode_clip(read_span(ref.shard, ref.frames[0]))
        return [torch.from_numpy(frames[min(i, len(frames) - 1)]).permute(2, 0, 1) for i in wanted]
    payloads = [read_span(ref.shard, ref.frames[i]) for i in wanted]
    return [EncodedFrame.of(p) for p in payloads] if encoded else [decode(p) for p in payloads]


class ClipDataset(Dataset):
    """Item ``(index, seed)`` -> views of a clip drawn from sample ``index``.

    ``views`` maps the clip's frames (a list of uint8 tensors) to the method's views. A sample
    that fails to read or decode is logged, counted and replaced by the next one.
    """

    def __init__(
        self,
        index: ShardIndex,
        clip_frames: int,
        frame_gap: int,
        views: Callable[[list[torch.Tensor]], Any],
        encoded: bool = False,
    ) -> None:
        self.index = index
        self.encoded = encoded  # JPEG frames stay encoded (the views must be planned ones)
        self.clip_frames = clip_frames
        self.frame_gap = frame_gap
        self.views = views
        self.failures = 0

    def __len__(self) -> int:
        return len(self.index.samples)

    def __getitem__(self, item: tuple[int, int]) -> Any:
        position, seed = item
        for attempt in range(len(self.index.samples)):
            ref = self.index.samples[(position + attempt) % len(self.index.samples)]
            try:
                return self._load(ref, seed)
            except (OSError, RuntimeError, ValueError) as err:
                self.failures += 1
                log.warning(
                    "skipping sample %s in %s: %s", ref.key, ref.shard, " ".join(str(err).split())
                )
        raise RuntimeError("no sample in the index could be read")

    def _load(self, ref: SampleRef, seed: int) -> Any:
        rng = random.Random(seed)
        count = (
            len(json.loads(read_span(ref.shard, ref.json))["pts"])
            if ref.is_mp4
            else len(ref.frames)
        )
        wanted = clip_indices(count, self.clip_frames, self.frame_gap, rng)
        frames = decode_frames(ref, wanted, self.encoded)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(
                seed
            )  # CPU only: torch.manual_seed also queues CUDA work
            return self.views(frames)


class StepBatchSampler(Sampler):
    """Infinite batches of ``(index, seed)``; batch ``s`` of rank ``r`` depends only on (seed, r, s)."""

    def __init__(
        self, num_samples: int, batch_size: int, seed: int, rank: int, start_step: int = 0
    ) -> None:
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.start_step = start_step

    def batch(self, step: int) -> list[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.rank, step])
        indices = rng.integers(0, self.num_samples, self.batch_size)
        seeds = rng.integers(0, 2**31 - 1, self.batch_size)
        return [(int(i), int(s)) for i, s in zip(indices, seeds)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while True:
            yield self.batch(step)
            step += 1


def stack_shared(tensors: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """``torch.stack``, straight into shared memory when run in a loader worker (saves a copy
    when the batch crosses to the training process), as PyTorch's default collate does."""
    if get_worker_info() is None:
        return torch.stack(tensors)
    out = torch.empty((len(tensors), *tensors[0].shape), dtype=tensors[0].dtype).share_memory_()
    return torch.stack(tensors, out=out)


def collate_views(items: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """Per view position, stack the batch: [global_1 (B,3,H,W), global_2, local_1, ...]."""
    return [stack_shared(view) for view in zip(*items)]


def quiet_worker(worker_id: int) -> None:
    """Loader worker start: ignore the stop signals that a Ctrl-C or a scheduler sends to the whole
    process group. The main process decides when to stop and shuts its workers down; a worker
    killed first would fail the run ("DataLoader worker killed by signal") before it could save.
    (PyTorch already runs each worker with one intra-op thread.)"""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)


def make_loader(
    dataset: ClipDataset,
    batch_size: int,
    seed: int,
    rank: int,
    start_step: int,
    num_workers: int,
    collate: Callable = collate_views,
) -> DataLoader:
    """Batches in page-locked memory when CUDA is present, so :func:`to_device`'s copies overlap."""
    sampler = StepBatchSampler(len(dataset), batch_size, seed, rank, start_step)
    workers = num_workers > 0
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate,
        worker_init_fn=quiet_worker if workers else None,
        persistent_workers=workers,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=2 if workers else None,
    )


def to_device(batch: Any, device: torch.device | str) -> Any:
    """A batch on ``device``: tensors copied (asynchronously from pinned memory), containers walked,
    planned views (anything with ``render``) rendered there."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if hasattr(batch, "render"):
        return batch.render(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


@contextmanager
def running(loader: DataLoader) -> Iterator[Iterator[Any]]:
    """Iterate ``loader`` and shut its workers down on the way out, whatever happened.

    Needed because the workers ignore SIGTERM (:func:`quiet_worker`): Python's exit-time
    ``terminate()`` of daemon children would otherwise wait on them forever.
    """
    batches = iter(loader)
    try:
        yield batches
    finally:
        shutdown = getattr(
            batches, "_shutdown_workers", None
        )  # no public API closes a loader's workers
        if shutdown is not None:
            shutdown()
