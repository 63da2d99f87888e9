"""The local content-addressed object store."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from bastion.storage.objectstore import LocalObjectStore, ObjectNotFoundError, ObjectStore


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def test_put_get_roundtrip(store: LocalObjectStore) -> None:
    data = b"%PDF-1.7 hello"
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.exists(sha)
    assert store.get(sha) == data
    with store.open(sha) as fh:
        assert fh.read() == data
    assert isinstance(store, ObjectStore)


def test_layout_and_permissions(store: LocalObjectStore) -> None:
    sha = store.put(b"abc")
    path = store.path(sha)
    assert path == store.root / sha[:2] / sha[2:4] / sha
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert [p.name for p in path.parent.iterdir()] == [sha]  # no temp file left behind


def test_identical_bytes_stored_once(store: LocalObjectStore) -> None:
    first = store.put(b"same")
    mtime = store.path(first).stat().st_mtime_ns
    assert store.put(b"same") == first
    assert store.path(first).stat().st_mtime_ns == mtime
    assert len([p for p in store.root.rglob("*") if p.is_file()]) == 1


def test_missing_object(store: LocalObjectStore) -> None:
    sha = "0" * 64
    assert not store.exists(sha)
    with pytest.raises(ObjectNotFoundError):
        store.get(sha)
    with pytest.raises(ObjectNotFoundError):
        store.open(sha)
    assert not store.delete(sha)


def test_delete(store: LocalObjectStore) -> None:
    sha = store.put(b"gone soon")
    assert store.delete(sha)
    assert not store.exists(sha)
    assert not store.delete(sha)


@pytest.mark.parametrize(
    "name",
    ["", "abc", "A" * 64, "g" * 64, "../" + "a" * 61, "a" * 63 + "/", "a" * 65, "/etc/passwd"],
)
def test_names_are_validated(store: LocalObjectStore, name: str) -> None:
    for op in (store.path, store.get, store.exists, store.delete, store.open):
        with pytest.raises(ValueError):
            op(name)


def test_empty_object(store: LocalObjectStore) -> None:
    sha = store.put(b"")
    assert store.get(sha) == b""
