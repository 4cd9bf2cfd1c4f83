"""Files that are complete or absent: every write that must survive a kill goes through here.

A file is written under a temporary name beside its target (``NAME.tmp-PID`` plus the target's
extension, so format-sniffing writers such as matplotlib and PIL still work), flushed to disk and
renamed over the target; a kill leaves only a temporary file, which :func:`remove_stale_temps`
(or the next writer of the same folder) clears. Readers see the old version or the new, never a mix.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

TMP_MARK = ".tmp-"


def fsync_dir(path: str) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_name(path: str) -> str:
    """Where ``path`` is written before it is renamed into place (same folder, same extension)."""
    return f"{path}{TMP_MARK}{os.getpid()}{os.path.splitext(path)[1]}"


@contextlib.contextmanager
def replacing(path: str, mode: int | None = None) -> Iterator[str]:
    """Yield a temporary path for a writer to fill; on success it is synced and renamed to ``path``
    (with permission bits ``mode`` if given), on failure deleted. Creates the folder."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def publish(tmp: str, path: str) -> None:
    """Sync a finished temporary file to disk and rename it to ``path``, durably."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def replace_dir(tmp: str, path: str) -> None:
    """Rename a finished folder (or move one out of the way) in a single step, durably: no reader
    ever sees it half there."""
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def write_bytes_atomic(path: str, data: bytes, mode: int | None = None) -> None:
    """Write a file so that readers see the old or the new version, never a mix."""
    with replacing(path, mode) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def write_json_atomic(path: str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def remove_stale_temps(directory: str) -> int:
    """Delete temporary files left by killed writers under ``directory``; return how many."""
    removed = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            if TMP_MARK in name:
                os.remove(os.path.join(root, name))
                removed += 1
    return removed
