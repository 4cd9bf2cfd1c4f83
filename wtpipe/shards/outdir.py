"""A build's output folder: checked, locked, tidied, cleared and, once the build is done, rid of
its staging area; and the files in it that say where a build stands (the plan, the manifest)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from typing import IO, Any

from wtpipe.atomic import TMP_MARK, remove_stale_temps, replace_dir, write_json_atomic

MANIFEST = "manifest.json"
WORK = ".work"


class BuildError(Exception):
    """A problem with the whole build (not one input): bad output dir, changed settings."""


class BuildDir:
    """``out`` with its work area ``out/.work`` (staged units in ``units/``, ``plan.json``, the lock)."""

    def __init__(self, out: str) -> None:
        self.out = os.path.abspath(out)
        self.work = os.path.join(self.out, WORK)
        self.staging = os.path.join(self.work, "units")
        self.plan_path = os.path.join(self.work, "plan.json")
        self.manifest_path = os.path.join(self.out, MANIFEST)

    def check_path(self) -> None:
        if os.path.exists(self.out) and not os.path.isdir(self.out):
            raise BuildError(f"{self.out}: output path exists and is not a directory")

    def prepare(self) -> None:
        """Create the work area and prove it is writable, with one clear error if it is not."""
        try:
            os.makedirs(self.staging, exist_ok=True)
            probe_file = os.path.join(self.work, f"write-test{TMP_MARK}{os.getpid()}")
            with open(probe_file, "w") as handle:
                handle.write("ok")
            os.remove(probe_file)
        except OSError as err:
            raise BuildError(
                f"{self.out}: cannot write output directory ({err.strerror or err})"
            ) from None

    def lock(self) -> IO[str]:
        """Hold an exclusive lock on the folder (use as a context manager); the kernel drops it if
        the holder is killed."""
        handle = open(os.path.join(self.work, "lock"), "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise BuildError(f"{self.out}: another build is running in this directory") from None
        return handle

    def tidy(self, overwrite: bool) -> None:
        """Under the lock: clear for --overwrite, drop earlier trash and stale temporary files."""
        if overwrite:
            self._clear()
        for name in os.listdir(self.out):
            if name.startswith(f"{WORK}.trash"):
                shutil.rmtree(os.path.join(self.out, name))
        remove_stale_temps(self.out)
        os.makedirs(self.staging, exist_ok=True)

    def _clear(self) -> None:
        """Remove an earlier build's files (``--overwrite``), keeping only our own lock."""
        for name in os.listdir(self.out):
            path = os.path.join(self.out, name)
            if name == WORK:
                for entry in os.listdir(path):
                    if entry != "lock":
                        target = os.path.join(path, entry)
                        if os.path.isdir(target):
                            shutil.rmtree(target)
                        else:
                            os.remove(target)
            elif name.startswith(f"{WORK}.trash"):
                shutil.rmtree(path)
            elif name == MANIFEST or (name.startswith("shard-") and ".tar" in name):
                os.remove(path)

    def recorded(self) -> dict[str, Any] | None:
        """What an earlier build here was asked to do (its plan, else its manifest), if any."""
        for path in (self.plan_path, self.manifest_path):
            if os.path.exists(path):
                with open(path, encoding="utf-8") as handle:
                    return json.load(handle)
        return None

    def finished_manifest(self) -> dict[str, Any] | None:
        """The manifest of a finished, failure-free build here, if there is one."""
        if not os.path.exists(self.manifest_path) or os.path.isdir(self.work):
            return None
        with open(self.manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        if all(os.path.exists(os.path.join(self.out, s["name"])) for s in manifest["shards"]):
            return manifest
        return None

    def read_plan(self) -> dict[str, Any]:
        with open(self.plan_path, encoding="utf-8") as handle:
            return json.load(handle)

    def write_plan(self, plan: dict[str, Any]) -> None:
        write_json_atomic(self.plan_path, json.dumps(plan, indent=1, sort_keys=True))

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.manifest_path, json.dumps(manifest, indent=1))

    def retire_work(self) -> None:
        """Remove the staging area in one rename first: a kill never leaves it half-deleted."""
        trash = f"{self.work}.trash{TMP_MARK}{os.getpid()}"
        replace_dir(self.work, trash)
        shutil.rmtree(trash)
