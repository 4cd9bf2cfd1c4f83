"""Check a shard directory against its manifest: hashes, sizes, counts, and every frame decodes."""

from __future__ import annotations

import hashlib
import os
import tarfile
from typing import Any

from tqdm import tqdm

from wtpipe.shards.read import ShardFormatError, iter_samples, load_manifest


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_shard(directory: str, entry: dict[str, Any]) -> list[str]:
    path = os.path.join(directory, entry["name"])
    if not os.path.exists(path):
        return [f"{entry['name']}: missing"]
    problems = []
    size = os.path.getsize(path)
    if size != entry["bytes"]:
        problems.append(f"{entry['name']}: {size} bytes, manifest says {entry['bytes']}")
    if sha256_file(path) != entry["sha256"]:
        problems.append(f"{entry['name']}: sha256 differs from the manifest")
    samples = frames = 0
    try:
        for sample in iter_samples(path):
            decoded = sample.frames()
            if (
                len(decoded) != sample.meta["frames"]
                or len(sample.meta["pts"]) != sample.meta["frames"]
            ):
                problems.append(
                    f"{entry['name']}: sample {sample.key} decodes {len(decoded)} frames, "
                    f"its json says {sample.meta['frames']}"
                )
            samples += 1
            frames += len(decoded)
    except (ShardFormatError, tarfile.TarError, OSError, ValueError, KeyError) as err:
        problems.append(f"{entry['name']}: unreadable ({' '.join(str(err).split())})")
        return problems
    if samples != entry["samples"] or frames != entry["frames"]:
        problems.append(
            f"{entry['name']}: {samples} samples / {frames} frames, manifest says "
            f"{entry['samples']} / {entry['frames']}"
        )
    return problems


def verify(directory: str, progress: bool = True) -> list[str]:
    """All problems found (empty when the directory is sound)."""
    manifest = load_manifest(directory)
    problems: list[str] = []
    if not manifest["shards"]:
        problems.append(
            "manifest: the build produced no shards (no frame of any input was stored; "
            "its failures are listed in manifest.json)"
        )
    for entry in tqdm(manifest["shards"], desc="verify", unit="shard", disable=not progress):
        problems.extend(_check_shard(directory, entry))
    listed = {s["name"] for s in manifest["shards"]}
    for name in sorted(os.listdir(directory)):
        if name.startswith("shard-") and name not in listed:
            problems.append(f"{name}: not in the manifest (left over from another build?)")
    totals = manifest["totals"]
    if sum(s["samples"] for s in manifest["shards"]) != totals["samples"]:
        problems.append("manifest: shard sample counts do not add up to the total")
    if sum(s["frames"] for s in manifest["shards"]) != totals["frames"]:
        problems.append("manifest: shard frame counts do not add up to the total")
    return problems
