"""Reading shards: samples group their members; malformed shards are named, not guessed at."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wtpipe.shards.read import ShardFormatError, iter_samples, load_manifest
from wtpipe.shards.staging import encode_jpeg
from wtpipe.shards.tarwriter import AtomicTarWriter


def write(path: str, members: list[tuple[str, bytes]]) -> None:
    with AtomicTarWriter(path) as writer:
        for name, data in members:
            writer.add(name, data)
        writer.commit()


def test_samples_group_their_frames_in_order(tmp_path):
    frames = [np.full((8, 8, 3), v, dtype=np.uint8) for v in (10, 200)]
    meta = json.dumps({"frames": 2, "pts": [0.0, 0.25]}).encode()
    write(
        str(tmp_path / "s.tar"),
        [
            ("k_1.json", meta),
            ("k_1.000000.jpg", encode_jpeg(frames[0], 95)),
            ("k_1.000001.jpg", encode_jpeg(frames[1], 95)),
        ],
    )
    (sample,) = iter_samples(str(tmp_path / "s.tar"))
    decoded = sample.frames()
    assert sample.key == "k_1" and sample.meta["frames"] == 2
    assert [int(f.mean()) for f in decoded] == pytest.approx([10, 200], abs=2)
    assert [int(f.mean()) for f in sample.frames([1])] == pytest.approx([200], abs=2)


def test_split_samples_and_missing_json_are_errors(tmp_path):
    meta = b'{"frames": 0, "pts": []}'
    write(str(tmp_path / "split.tar"), [("a.json", meta), ("b.json", meta), ("a.000000.jpg", b"x")])
    with pytest.raises(ShardFormatError, match="not contiguous"):
        list(iter_samples(str(tmp_path / "split.tar")))
    write(str(tmp_path / "nojson.tar"), [("a.000000.jpg", b"x")])
    with pytest.raises(ShardFormatError, match="has no json"):
        list(iter_samples(str(tmp_path / "nojson.tar")))


def test_missing_or_broken_manifest_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest"):
        load_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_manifest(str(tmp_path))
