"""Read wtpipe shards without a training pipeline: samples as (key, json, frame payloads)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from wtpipe.video.clipcodec import decode_clip


class ShardFormatError(Exception):
    """A shard whose members do not form wtpipe samples."""


@dataclass
class Sample:
    key: str
    meta: dict[str, Any]
    members: dict[str, bytes]  # extension -> bytes, e.g. "000003.jpg" or "mp4"

    def frames(self, indices: list[int] | None = None) -> list[np.ndarray]:
        """Decoded RGB frames in time order (only ``indices``, if given)."""
        if "mp4" in self.members:
            frames = decode_clip(self.members["mp4"])
            return frames if indices is None else [frames[i] for i in indices]
        names = sorted(n for n in self.members if n.endswith(".jpg"))
        names = names if indices is None else [names[i] for i in indices]
        return [np.asarray(Image.open(io.BytesIO(self.members[n])).convert("RGB")) for n in names]


def read_span(path: str, span: tuple[int, int]) -> bytes:
    """``size`` bytes at ``offset`` of a tar: one member's data, read without parsing the tar."""
    offset, size = span
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size)
    if len(data) != size:
        raise OSError(f"{path}: member at {offset} is cut short")
    return data


def load_manifest(directory: str) -> dict[str, Any]:
    path = os.path.join(directory, "manifest.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: no manifest (is this a wtpipe shard directory?)"
        ) from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: manifest is not valid JSON ({err})") from None


def iter_samples(path: str) -> Iterator[Sample]:
    """Samples of one shard in stored order; members of a sample must be contiguous."""
    current: Sample | None = None
    seen: set[str] = set()
    with tarfile.open(path, mode="r:") as tar:
        for info in tar:
            if not info.isfile():
                continue
            key, dot, ext = info.name.partition(".")
            if not dot:
                raise ShardFormatError(f"{path}: member {info.name!r} has no extension")
            data = tar.extractfile(info).read()
            if current is None or key != current.key:
                if current is not None:
                    yield _finish(path, current)
                if key in seen:
                    raise ShardFormatError(f"{path}: members of sample {key} are not contiguous")
                seen.add(key)
                current = Sample(key, {}, {})
            current.members[ext] = data
    if current is not None:
        yield _finish(path, current)


def _finish(path: str, sample: Sample) -> Sample:
    raw = sample.members.pop("json", None)
    if raw is None:
        raise ShardFormatError(f"{path}: sample {sample.key} has no json")
    sample.meta = json.loads(raw)
    return sample
