"""Random access into wtpipe shards: where every sample's members lie, from the tar headers.

Training draws samples by index (a pure function of seed, rank and step), so resuming at any
step costs nothing and no worker ever reads a shard it does not need. Building the index reads
only tar headers. A shard that is missing, truncated or corrupt, or whose sample count differs
from the manifest, is skipped with a warning and counted: training goes on without it.
"""

from __future__ import annotations

import logging
import os
import tarfile
from dataclasses import dataclass, field

from wtpipe.shards.read import load_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleRef:
    shard: str
    key: str
    json: tuple[int, int]  # (offset, size) of KEY.json
    frames: tuple[tuple[int, int], ...]  # JPEG frames in order, or one mp4
    is_mp4: bool


@dataclass
class ShardIndex:
    samples: list[SampleRef]
    skipped: list[str] = field(default_factory=list)  # "shard: reason" for every shard left out

    @classmethod
    def build(cls, directory: str) -> ShardIndex:
        manifest = load_manifest(directory)
        samples: list[SampleRef] = []
        skipped: list[str] = []
        for entry in manifest["shards"]:
            path = os.path.join(directory, entry["name"])
            try:
                refs = _index_shard(path)
                if len(refs) != entry["samples"]:
                    raise ValueError(f"{len(refs)} samples, manifest says {entry['samples']} (truncated?)")
            except (OSError, tarfile.TarError, ValueError) as err:
                reason = f"{entry['name']}: {' '.join(str(err).split())}"
                log.warning("skipping shard %s", reason)
                skipped.append(reason)
                continue
            samples.extend(refs)
        if not samples:
            raise ValueError(f"{directory}: no readable samples ({len(skipped)} shard(s) skipped)")
        return cls(samples, skipped)


def _index_shard(path: str) -> list[SampleRef]:
    groups: dict[str, dict[str, tuple[int, int]]] = {}
    with tarfile.open(path, mode="r:") as tar:
        for info in tar:
            if info.isfile():
                key, _, ext = info.name.partition(".")
                groups.setdefault(key, {})[ext] = (info.offset_data, info.size)
    refs = []
    for key, members in groups.items():
        if "json" not in members:
            raise ValueError(f"sample {key} has no json")
        frames = sorted(e for e in members if e.endswith(".jpg"))
        is_mp4 = "mp4" in members
        spans = (members["mp4"],) if is_mp4 else tuple(members[e] for e in frames)
        if not spans:
            raise ValueError(f"sample {key} has no frames")
        refs.append(SampleRef(path, key, members["json"], spans, is_mp4))
    return refs

