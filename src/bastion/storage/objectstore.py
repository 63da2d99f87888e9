"""Content-addressed object storage for uploaded documents.

An object's name is the SHA-256 of its bytes (64 lowercase hex digits), so identical uploads are
stored once and a name always means the same bytes. Several archive records may share one
object: the archive counts them (table `blobs`) and removes the object with the last one.
`ObjectStore` is the interface the pipeline uses; `LocalObjectStore` keeps objects in a local
folder as `root/ab/cd/<sha>` (files 0600, folders 0700), written through a temporary file and
an atomic rename so a reader never sees a partial object. Another backend (S3, ...) only has to
implement the protocol.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

# An object's name: the object store's own check, not the document-id format.
SHA256_PATTERN = r"^[0-9a-f]{64}$"
_SHA256_RE = re.compile(SHA256_PATTERN)


class ObjectNotFoundError(KeyError):
    """No object is stored under this name."""


def validate_sha256(sha: str) -> str:
    """Return `sha` if it is 64 lowercase hex digits; raise ValueError otherwise."""
    if not isinstance(sha, str) or _SHA256_RE.fullmatch(sha) is None:
        raise ValueError("object name must be 64 lowercase hex digits (sha256)")
    return sha


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@runtime_checkable
class ObjectStore(Protocol):
    """Where document bytes live, addressed by their SHA-256."""

    def put(self, data: bytes, *, sha256: str | None = None) -> str:
        """Store `data` (once) and return its SHA-256 hex digest; `sha256`: the digest the
        caller has just computed of these very bytes, so they are not hashed twice."""
        ...

    def get(self, sha: str) -> bytes:
        """The object's bytes; ObjectNotFoundError if absent."""
        ...

    def open(self, sha: str) -> BinaryIO:
        """A binary file object for reading the object; ObjectNotFoundError if absent."""
        ...

    def exists(self, sha: str) -> bool: ...

    def delete(self, sha: str) -> bool:
        """Remove the object; False if it was not there."""
        ...


class LocalObjectStore:
    """Objects as files under `root`, sharded by the first two bytes of the digest."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, sha: str) -> Path:
        """Where the object named `sha` lives (whether or not it exists)."""
        validate_sha256(sha)
        return self.root / sha[0:2] / sha[2:4] / sha

    def put(self, data: bytes, *, sha256: str | None = None) -> str:
        sha = sha256_hex(data) if sha256 is None else sha256
        target = self.path(sha)
        if target.is_file() and target.stat().st_size == len(data):
            return sha
        # One level at a time: `parents=True` would create the first shard folder with the
        # default mode, not 0700.
        for folder in (self.root, target.parent.parent, target.parent):
            folder.mkdir(exist_ok=True, mode=0o700)
        # mkstemp creates the file with mode 0600 in the target folder (same filesystem).
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp_name, 0o600)
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        self._fsync_dir(target.parent)
        return sha

    def get(self, sha: str) -> bytes:
        try:
            return self.path(sha).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFoundError(sha) from None

    def open(self, sha: str) -> BinaryIO:
        try:
            return self.path(sha).open("rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(sha) from None

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def delete(self, sha: str) -> bool:
        try:
            self.path(sha).unlink()
        except FileNotFoundError:
            return False
        return True

    @staticmethod
    def _fsync_dir(folder: Path) -> None:
        """Make the rename durable; not every platform can open a folder."""
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
