"""The reconciler: a document whose queue message was never sent is sent again; one whose
message reached the dead-letter queue behind the worker's back is failed; a document whose
message is still on its way is left alone; of two reconcilers, one acts. The reconciler runs as
the worker, through a real archivist."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bastion.pipeline.archive_calls import ArchiveCalls
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.reconcile import reconcile
from bastion.storage import Queue, open_queue
from tests.storage.test_archive_repo import upload
from tests.web.conftest import Project, archive_calls, project_with_archivist

OLD = 0.0  # every document is old enough
RECENT = 3600.0  # only documents unchanged for an hour: none is


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> Iterator[Project]:
    with project_with_archivist(tmp_path, db_url) as project:
        yield project


@pytest.fixture
def repo(project: Project) -> ArchiveRepository:
    return project.repo


@pytest.fixture
async def archive(project: Project) -> AsyncIterator[ArchiveCalls]:
    calls = archive_calls(project, "worker")
    yield calls
    await calls.aclose()


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[Queue]:
    q = open_queue(f"sqlite:///{tmp_path / 'queue.db'}", max_receive_count=2)
    yield q
    q.close()


def status(repo: ArchiveRepository, document_id: str) -> tuple[str, str | None]:
    doc = repo.get_document(document_id)
    assert doc is not None
    return doc["status"], doc.get("failure_reason")


async def test_an_upload_whose_message_was_never_sent_is_sent_again(
    repo: ArchiveRepository, archive: ArchiveCalls, queue: Queue
) -> None:
    lost = upload(repo, "a" * 64)  # recorded; the queue send "failed": no message
    result = await reconcile(archive, queue, older_than=OLD)
    assert (result.requeued, result.failed) == (1, 0)
    [message] = queue.receive()
    assert message.body["document_id"] == lost
    assert message.body["correlation_id"] == "corr-up"
    assert status(repo, lost) == ("queued", None)
    # Sent once: the next round sees its message in flight and leaves it.
    again = await reconcile(archive, queue, older_than=OLD)
    assert (again.requeued, again.failed) == (0, 0)


async def test_a_document_whose_message_is_on_its_way_is_left_alone(
    repo: ArchiveRepository, archive: ArchiveCalls, queue: Queue
) -> None:
    waiting = upload(repo, "b" * 64)
    queue.send({"document_id": waiting})
    # Too recent: not looked at; old, but a message is waiting on the queue: left alone.
    assert (await reconcile(archive, queue, older_than=RECENT)).requeued == 0
    assert (await reconcile(archive, queue, older_than=OLD)).requeued == 0
    assert queue.depth() == 1


async def test_a_crash_looping_document_is_failed_with_the_dead_letter_reason(
    repo: ArchiveRepository, archive: ArchiveCalls, queue: Queue
) -> None:
    doc = upload(repo, "c" * 64)
    queue.send({"document_id": doc})
    # Every attempt "crashes" the worker: the message is received, marked processing, and
    # never acknowledged; the queue dead-letters it after max_receive_count receives.
    for attempt in (1, 2):
        assert len(queue.receive(visibility_timeout=0)) == 1
        repo.set_status(doc, "processing", detail=f"attempt {attempt}")
    assert queue.receive(visibility_timeout=0) == []
    assert queue.dlq_depth() == 1
    assert status(repo, doc)[0] == "processing"  # left behind by the queue
    result = await reconcile(archive, queue, older_than=OLD)
    assert (result.requeued, result.failed) == (0, 1)
    [dead] = queue.dlq_list()
    assert status(repo, doc) == ("failed", dead.reason)


async def test_of_two_reconcilers_one_sends(
    repo: ArchiveRepository, archive: ArchiveCalls, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'shared-queue.db'}"
    first, second = open_queue(url), open_queue(url)
    try:
        upload(repo, "d" * 64)
        stale = await archive.stale_documents("queued", OLD, 10)
        assert len(stale) == 1
        # Both read the same stale document; only the first move takes.
        assert (await reconcile(archive, first, older_than=OLD)).requeued == 1
        assert not await archive.move_document(stale[0], "queued", "queued", detail="late")
        assert second.depth() == 1
    finally:
        first.close()
        second.close()
