"""AtomicTarWriter: complete files only under the final name, reproducible bytes."""

from __future__ import annotations

import os
import tarfile

import pytest

from wtpipe.atomic import remove_stale_temps
from wtpipe.shards.tarwriter import AtomicTarWriter


def write(path: str, members: dict[str, bytes]) -> tuple[str, int, list[int]]:
    with AtomicTarWriter(path) as writer:
        offsets = [writer.add(name, data) for name, data in members.items()]
        sha, size = writer.commit()
    return sha, size, offsets


def test_same_content_gives_identical_bytes(tmp_path):
    members = {"a_0001.000000.jpg": b"x" * 1000, "a_0001.json": b"{}"}
    first = write(str(tmp_path / "one.tar"), members)
    second = write(str(tmp_path / "two.tar"), members)
    assert first[:2] == second[:2]
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()


def test_offsets_point_at_member_data(tmp_path):
    members = {"k.000000.jpg": b"first" * 300, "k.000001.jpg": b"second"}
    _, size, offsets = write(str(tmp_path / "s.tar"), members)
    raw = (tmp_path / "s.tar").read_bytes()
    assert size == len(raw)
    for data, offset in zip(members.values(), offsets):
        assert raw[offset : offset + len(data)] == data
    with tarfile.open(tmp_path / "s.tar") as tar:
        info = tar.getmember("k.000000.jpg")
        assert info.mtime == 0 and info.uid == 0 and info.uname == ""


def test_failure_leaves_no_file_under_the_final_name(tmp_path):
    path = str(tmp_path / "s.tar")
    with pytest.raises(RuntimeError):
        with AtomicTarWriter(path) as writer:
            writer.add("k.json", b"{}")
            raise RuntimeError("killed mid-write")
    assert os.listdir(tmp_path) == []


def test_stale_temps_from_killed_writers_are_removed(tmp_path):
    AtomicTarWriter(str(tmp_path / "s.tar")).add("k.json", b"{}")  # never committed: a kill
    assert any(".tmp-" in n for n in os.listdir(tmp_path))
    assert remove_stale_temps(str(tmp_path)) == 1
    assert os.listdir(tmp_path) == []
