"""The one place that writes tar files: atomically, reproducibly, with a running sha256.

A tar is written under a temporary name, fsynced and renamed (``wtpipe.atomic``), so a file under its final name is
always complete; a kill leaves only a temp file that the next run removes. Member headers carry
a fixed mtime, owner and mode, so the same content gives byte-identical files on every run.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from types import TracebackType

from wtpipe.atomic import publish, temporary_name


class _HashingFile(io.RawIOBase):
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, raw: io.BufferedWriter) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)


class AtomicTarWriter:
    """Write members in order, then :meth:`commit` to publish; leaving the block uncommitted discards."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tmp_path = temporary_name(path)
        self._raw = open(self.tmp_path, "wb")
        self._file = _HashingFile(self._raw)
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.USTAR_FORMAT)
        self.members = 0

    def add(self, name: str, data: bytes) -> int:
        """Append a member; return the byte offset of its data in the tar."""
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self._tar.addfile(info, io.BytesIO(data))
        self.members += 1
        blocks = -(-len(data) // tarfile.BLOCKSIZE)
        return self._tar.offset - blocks * tarfile.BLOCKSIZE

    def commit(self) -> tuple[str, int]:
        """Finish the tar, make it durable under its final name; return (sha256, bytes)."""
        self._tar.close()
        self._raw.close()
        publish(self.tmp_path, self.path)
        return self._file.sha256.hexdigest(), self._file.size

    def discard(self) -> None:
        if not self._raw.closed:
            self._raw.close()
        if os.path.exists(self.tmp_path):
            os.remove(self.tmp_path)

    def __enter__(self) -> AtomicTarWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._raw.closed:
            self.discard()
