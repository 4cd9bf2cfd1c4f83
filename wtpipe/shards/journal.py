"""The assembly's resume journal: one line per finished shard, for one layout, fsynced; a re-run
of the same layout skips the shards it lists (and still finds on disk with their size)."""

from __future__ import annotations

import json
import os
from typing import Any


class ShardJournal:
    def __init__(self, path: str, layout_id: str) -> None:
        self.path, self.layout_id = path, layout_id
        self.done: dict[str, dict[str, Any]] = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    record = (
                        json.loads(line) if line.strip().endswith("}") else None
                    )  # a torn last line
                    if record and record.pop("layout") == layout_id:
                        self.done[record["name"]] = record

    def finished(self, name: str, path: str) -> dict[str, Any] | None:
        """The record of shard ``name`` if it was finished and is still whole at ``path``."""
        record = self.done.get(name)
        if record is None or not os.path.exists(path) or os.path.getsize(path) != record["bytes"]:
            return None
        return record

    def add(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"layout": self.layout_id, **record}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
