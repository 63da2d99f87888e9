"""The watched folder on a real folder and database, recording through a real archivist: once
per file, across restarts."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bastion.config import Settings
from bastion.core.audit_entry import AuditEntry
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.ingest import Ingest
from bastion.pipeline.watch import WATCH_PRINCIPAL, FileVersion, FolderWatcher, regular_file
from bastion.pipeline.watch_ledger import WatchLedger
from bastion.storage.database import shared_engine
from tests.pipeline.hostile import normal_pdf
from tests.web.conftest import Project, eventually, gateway_ingest, project_with_archivist

SETTLE = 0.2


def _watch_settings(s: Settings) -> None:
    s.pipeline.watch_dir = "inbox"
    s.pipeline.watch_patterns = ["*.pdf", "scan-*"]
    s.pipeline.max_upload_bytes = 64 * 1024


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> Iterator[Project]:
    with project_with_archivist(tmp_path, db_url, _watch_settings) as project:
        yield project


@pytest.fixture
def settings(project: Project) -> Settings:
    return project.settings


@pytest.fixture
def repo(project: Project) -> ArchiveRepository:
    return project.repo


@pytest.fixture
def ledger(settings: Settings) -> WatchLedger:
    return WatchLedger(shared_engine(settings.database_url()))


@pytest.fixture
async def ingest(project: Project) -> AsyncIterator[Ingest]:
    async with gateway_ingest(project) as service:
        yield service


@pytest.fixture
def inbox(settings: Settings) -> Path:
    folder = settings.path("inbox")
    folder.mkdir()
    return folder


@asynccontextmanager
async def watching(
    settings: Settings, ingest: Ingest, audit: list[AuditEntry] | None = None
) -> AsyncIterator[FolderWatcher]:
    async def record(entry: AuditEntry) -> None:
        if audit is not None:
            audit.append(entry)

    ledger = WatchLedger(shared_engine(settings.database_url()))
    watcher = FolderWatcher(
        settings, ingest, ledger, audit=record, settle_seconds=SETTLE, poll_seconds=0.02
    )
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        yield watcher
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def bodies(ingest: Ingest) -> list[dict[str, object]]:
    return [m.body for m in ingest.queue.receive(100, visibility_timeout=0)]


def depth_is(ingest: Ingest, n: int) -> Callable[[], bool]:
    return lambda: ingest.queue.depth() == n


async def quiet() -> None:
    """Long enough for a file event to be noticed, settled and processed."""
    await asyncio.sleep(SETTLE + 0.6)


async def test_files_present_at_start_and_dropped_later_are_queued_once(
    settings: Settings, ingest: Ingest, inbox: Path, repo: ArchiveRepository, ledger: WatchLedger
) -> None:
    early = normal_pdf(b"early")
    (inbox / "early.pdf").write_bytes(early)
    audit: list[AuditEntry] = []
    async with watching(settings, ingest, audit):
        await eventually(depth_is(ingest, 1))
        late = normal_pdf(b"late")
        (inbox / "late.pdf").write_bytes(late)
        await eventually(depth_is(ingest, 2))
        await quiet()
    assert ingest.queue.depth() == 2

    # A restart looks at the folder again and finds nothing new.
    async with watching(settings, ingest):
        await quiet()
    found = bodies(ingest)
    assert sorted(b["filename"] for b in found) == ["early.pdf", "late.pdf"]
    docs = [repo.get_document(str(b["document_id"])) for b in found]
    assert {d["sha256"] for d in docs if d is not None} == {
        hashlib.sha256(early).hexdigest(),
        hashlib.sha256(late).hexdigest(),
    }
    # Without `pipeline.watch_owner`, the ingesting service principal owns them.
    assert {(d["uploaded_by"], d["owner"]) for d in docs if d is not None} == {
        (WATCH_PRINCIPAL, WATCH_PRINCIPAL)
    }
    path = inbox / "late.pdf"
    st = path.stat()
    recorded = ledger.was_ingested(str(path.resolve()), st.st_size, st.st_mtime)
    assert recorded == hashlib.sha256(late).hexdigest()
    assert {(a.principal, a.method, a.outcome, a.status) for a in audit} == {
        (WATCH_PRINCIPAL, "watch_ingest", "ok", 202)
    }
    assert {a.correlation_id for a in audit} == {b["correlation_id"] for b in found}


async def test_only_matching_regular_files_are_taken(
    settings: Settings, ingest: Ingest, inbox: Path, tmp_path: Path
) -> None:
    async with watching(settings, ingest):
        await asyncio.sleep(0.1)
        (inbox / "notes.txt").write_bytes(normal_pdf(b"txt"))
        (inbox / "UPPER.PDF").write_bytes(normal_pdf(b"upper"))
        (inbox / "scan-0001").write_bytes(normal_pdf(b"scan"))
        (inbox / "sub").mkdir()
        (inbox / "sub" / "nested.pdf").write_bytes(normal_pdf(b"nested"))
        outside = tmp_path / "secret.pdf"
        outside.write_bytes(normal_pdf(b"outside"))
        (inbox / "link.pdf").symlink_to(outside)
        await eventually(depth_is(ingest, 2))
        await quiet()
    assert sorted(b["filename"] for b in bodies(ingest)) == ["UPPER.PDF", "scan-0001"]


async def test_non_pdfs_are_rejected_once_and_not_retried(
    settings: Settings, ingest: Ingest, inbox: Path, ledger: WatchLedger
) -> None:
    bad = inbox / "fake.pdf"
    bad.write_bytes(b"just text")
    audit: list[AuditEntry] = []
    async with watching(settings, ingest, audit):
        await eventually(lambda: bool(audit))
    st = bad.stat()
    assert ledger.was_ingested(str(bad.resolve()), st.st_size, st.st_mtime) == (
        hashlib.sha256(b"just text").hexdigest()
    )
    assert [(a.outcome, a.status) for a in audit] == [("error:not_pdf", 415)]
    assert ingest.queue.depth() == 0

    async with watching(settings, ingest, audit):
        await quiet()
    assert len(audit) == 1  # not looked at again

    # Fixing the file (a new version) has it picked up.
    bad.write_bytes(normal_pdf(b"fixed"))
    async with watching(settings, ingest, audit):
        await eventually(depth_is(ingest, 1))


async def test_a_file_still_being_written_is_read_once_complete(
    settings: Settings, ingest: Ingest, inbox: Path, repo: ArchiveRepository
) -> None:
    data = normal_pdf(b"slow writer")
    async with watching(settings, ingest):
        await asyncio.sleep(0.1)
        with (inbox / "slow.pdf").open("wb") as fh:
            for i in range(0, len(data), 64):
                fh.write(data[i : i + 64])
                fh.flush()
                await asyncio.sleep(SETTLE / 8)
        await eventually(depth_is(ingest, 1))
        await quiet()
    (body,) = bodies(ingest)
    doc = repo.get_document(str(body["document_id"]))
    assert doc is not None and doc["sha256"] == hashlib.sha256(data).hexdigest()


async def test_touching_a_submitted_file_does_not_queue_it_again(
    settings: Settings, ingest: Ingest, inbox: Path, ledger: WatchLedger
) -> None:
    path = inbox / "a.pdf"
    path.write_bytes(normal_pdf(b"touch"))
    audit: list[AuditEntry] = []
    async with watching(settings, ingest, audit):
        await eventually(depth_is(ingest, 1))
    os.utime(path, (1_000_000_000, 1_000_000_000))
    async with watching(settings, ingest, audit):
        await eventually(lambda: len(audit) == 2)  # looked at again: a new version
    assert ingest.queue.depth() == 1  # but the same bytes: the same document
    assert [a.status for a in audit] == [202, 200]
    version = regular_file(path)
    assert version == FileVersion(path, path.stat().st_size, 1_000_000_000.0)
    assert ledger.was_ingested(str(path.resolve()), version.size, version.mtime)
