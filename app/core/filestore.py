"""A content-addressed file store under var/files: evidence (telemetry, logs, photos) is kept by its
SHA-256, written once and never overwritten. Uploads are streamed to disk, bounded in size."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec

from app.core.errors import TooLarge


class StoredFile(msgspec.Struct, frozen=True):
    sha256: str
    size: int
    path: str
    created: bool  # False when the same content was already kept


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    async def save_stream(self, chunks: AsyncIterator[bytes], *, max_bytes: int) -> StoredFile:
        """Stream to a temporary file (constant memory), then move it to its content address."""
        incoming = self.root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, temp_name = tempfile.mkstemp(dir=incoming)
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(f"upload exceeds {max_bytes:,} bytes", max_bytes=max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
            return self._settle(Path(temp_name), digest.hexdigest(), size)
        except BaseException:
            os.unlink(temp_name)
            raise

    def save_bytes(self, data: bytes) -> StoredFile:
        incoming = self.root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=incoming)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return self._settle(Path(temp_name), hashlib.sha256(data).hexdigest(), len(data))

    def _settle(self, temp: Path, sha256: str, size: int) -> StoredFile:
        target = self.path_for(sha256)
        if target.exists():  # same content already kept: never overwrite
            temp.unlink()
            return StoredFile(sha256=sha256, size=size, path=str(target), created=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp.replace(target)
        target.chmod(0o440)
        return StoredFile(sha256=sha256, size=size, path=str(target), created=True)

    def discard(self, stored: StoredFile) -> None:
        """Remove a refused upload; content that was already kept for an earlier record stays."""
        if stored.created:
            Path(stored.path).unlink(missing_ok=True)
