"""verify / describe / contact_sheet on a real build: they find damage and show what is there."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from wtpipe.shards.info import describe
from wtpipe.shards.preview import contact_sheet
from wtpipe.shards.read import load_manifest
from wtpipe.shards.verify import verify

from ..conftest import shard_names


@pytest.fixture(scope="module")
def built(tmp_path_factory, sources):
    from wtpipe.shards.build import ShardBuilder
    from wtpipe.shards.settings import BuildSettings

    out = str(tmp_path_factory.mktemp("v") / "shards")
    ShardBuilder(
        [sources["bikes.mp4"], sources["vtest.avi"]],
        out,
        BuildSettings(fps="2", min_shards=3),
        progress=False,
    ).run()
    return out


@pytest.fixture
def copy(built, tmp_path):
    target = str(tmp_path / "copy")
    shutil.copytree(built, target)
    return target


def test_a_sound_build_verifies(built):
    assert verify(built, progress=False) == []


def test_a_flipped_byte_is_named(copy):
    name = shard_names(copy)[1]
    path = os.path.join(copy, name)
    data = bytearray(open(path, "rb").read())
    data[5000] ^= 0xFF
    open(path, "wb").write(bytes(data))
    problems = verify(copy, progress=False)
    assert any(p.startswith(name) and "sha256" in p for p in problems)


def test_truncated_and_missing_shards_are_named(copy):
    first, second = shard_names(copy)[:2]
    with open(os.path.join(copy, first), "r+b") as handle:
        handle.truncate(3000)
    os.remove(os.path.join(copy, second))
    problems = verify(copy, progress=False)
    assert any(p.startswith(first) and "bytes" in p for p in problems)
    assert any(p.startswith(second) and "missing" in p for p in problems)


def test_count_mismatch_is_named(copy):
    manifest = load_manifest(copy)
    manifest["shards"][0]["samples"] += 1
    json.dump(manifest, open(os.path.join(copy, "manifest.json"), "w"))
    assert any("samples" in p and "manifest says" in p for p in verify(copy, progress=False))


def test_describe_gives_totals_and_videos(built):
    text = describe(load_manifest(built))
    assert text.startswith("2 video(s)")
    assert "bikes" in text and "vtest" in text and "per stored frame" in text


def test_contact_sheet_is_a_picture_of_the_frames(built, tmp_path):
    out = str(tmp_path / "sheet.png")
    count = contact_sheet(built, out, tiles=12, columns=4)
    image = Image.open(out)
    assert count == 12 and image.size[0] == 4 * 240
    assert len(np.unique(np.asarray(image.convert("L")))) > 50  # real pictures, not a blank canvas
