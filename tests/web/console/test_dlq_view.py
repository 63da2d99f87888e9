"""The console's dead-letter view over real HTTP against the gateway and a real queue (SQLite
and SQS on moto; PostgreSQL and Redis when their servers are configured): listing, redriving
one and all as admin, and every refusal (monitoring sees no buttons and is refused a forged
redrive, no CSRF token, no session, a malformed form, a queue that cannot be read)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bastion.config import Settings
from bastion.pipeline import open_pipeline_queue
from bastion.storage import Queue
from tests.conftest import QUEUE_BACKENDS
from tests.web.conftest import record_new_upload
from tests.web.console.conftest import ConsoleSite, csrf_of, start_site

REDRIVE = "/console/dlq/redrive"


@pytest.fixture(params=QUEUE_BACKENDS)
def any_queue_site(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_url: str
) -> Iterator[ConsoleSite]:
    """The console site with its pipeline queue on each backend."""
    url: str | None = None
    if request.param != "sqlite":
        url = str(request.getfixturevalue(f"{request.param}_queue_url"))

    def configure(settings: Settings) -> None:
        if url is not None:
            settings.pipeline.queue_url = url

    with start_site(tmp_path, sqlite_url, configure) as served:
        yield served


def pipeline_queue(site: ConsoleSite) -> Queue:
    return open_pipeline_queue(site.project.settings)


def dead_letter(site: ConsoleSite, reason: str, document_id: str | None = None) -> str:
    """Send a message and dead-letter it, as the worker does with a poison message: its id."""
    queue = pipeline_queue(site)
    try:
        body = {"filename": "scan.pdf"}
        if document_id is not None:
            body["document_id"] = document_id
        message_id = queue.send(body)
        [message] = queue.receive(1, visibility_timeout=60)
        assert message.id == message_id
        assert queue.dead_letter(message.receipt_handle, reason)
        return message_id
    finally:
        queue.close()


def depths(site: ConsoleSite) -> tuple[int, int]:
    """(messages on the main queue, dead letters)."""
    queue = pipeline_queue(site)
    try:
        return queue.depth(), queue.dlq_depth()
    finally:
        queue.close()


@contextmanager
def signed_in(site: ConsoleSite, principal: str) -> Iterator[httpx.Client]:
    with site.browser() as client:
        assert site.sign_in(client, principal).status_code == 303
        yield client


def test_admin_sees_the_dead_letters_and_redrives_one_then_all(
    any_queue_site: ConsoleSite,
) -> None:
    site = any_queue_site
    doc = record_new_upload(site.project.repo)
    first = dead_letter(site, "extraction_failed", doc)
    second = dead_letter(site, "bad_message")
    with signed_in(site, "admin") as b:
        page = b.get("/console/dlq")
        assert page.status_code == 200
        assert 'aria-current="page"' in page.text
        assert "2 dead letters." in page.text
        assert "extraction_failed" in page.text and "bad_message" in page.text
        assert f'href="/console/documents/{doc}"' in page.text
        assert page.text.count('class="dlq-redrive"') == 2
        assert 'id="dlq-redrive-all"' in page.text and "data-confirm=" in page.text
        assert f'name="message_id" value="{first}"' in page.text

        one = b.post(REDRIVE, data={"message_id": first, "csrf_token": csrf_of(page)})
        assert one.status_code == 303
        assert one.headers["location"] == "/console/dlq?redriven=1&one=1"
        assert depths(site) == (1, 1)
        after = b.get(one.headers["location"])
        assert "Moved 1 message back onto the queue" in after.text
        assert first not in after.text and second in after.text

        every = b.post(REDRIVE, data={"all": "1", "csrf_token": csrf_of(after)})
        assert every.status_code == 303 and every.headers["location"] == "/console/dlq?redriven=1"
        assert depths(site) == (2, 0)
        empty = b.get("/console/dlq")
        assert "The dead-letter queue is empty." in empty.text
        assert 'id="dlq-redrive-all"' not in empty.text
    assert {m.id for m in site.project.queued()} == {first, second}
    rows = site.project.audit_records(
        lambda a: a.method == "console_dlq_redrive" and a.outcome == "ok", at_least=2
    )
    details = {r.detail for r in rows}
    assert details == {f"redriven=1 id={first}", "redriven=1 (all)"}
    assert all(r.principal == "admin" and r.status == 303 for r in rows)


def test_redriving_a_message_no_longer_there_says_so(site: ConsoleSite) -> None:
    with signed_in(site, "admin") as b:
        page = b.get("/console/dlq")
        assert "The dead-letter queue is empty." in page.text
        r = b.post(REDRIVE, data={"message_id": uuid.uuid4().hex, "csrf_token": csrf_of(page)})
        assert r.headers["location"] == "/console/dlq?redriven=0&one=1"
        assert "no longer in the dead-letter queue" in b.get(r.headers["location"]).text


def test_the_list_is_capped_with_the_total(site: ConsoleSite) -> None:
    ids = [dead_letter(site, f"reason_{n}") for n in range(3)]
    with signed_in(site, "monitoring") as b:
        page = b.get("/console/dlq", params={"limit": "2"})
        assert "Showing the oldest 2 of 3 dead letters." in page.text
        assert ids[0] in page.text and ids[1] in page.text and ids[2] not in page.text
        assert 'href="/console/dlq?limit=1000"' in page.text
        for odd in ("0", "-5", "x", "9" * 40):  # clamped or ignored, never an error
            assert b.get("/console/dlq", params={"limit": odd}).status_code == 200


def test_monitoring_sees_no_buttons_and_a_forged_redrive_is_refused(site: ConsoleSite) -> None:
    message_id = dead_letter(site, "extraction_failed")
    with signed_in(site, "monitoring") as b:
        page = b.get("/console/dlq")
        assert page.status_code == 200 and message_id in page.text
        assert "dlq-redrive" not in page.text and "Redrive" not in page.text
        token = csrf_of(page)
        for form in ({"message_id": message_id}, {"all": "1"}):
            r = b.post(REDRIVE, data={**form, "csrf_token": token})
            assert r.status_code == 403 and "403" in r.text
    assert depths(site) == (0, 1)
    rows = site.project.audit_records(
        lambda a: a.method == "console_dlq_redrive" and a.principal == "monitoring", at_least=2
    )
    assert {r.outcome for r in rows} == {"denied:authorize"}


def test_a_redrive_without_the_csrf_token_is_refused(site: ConsoleSite) -> None:
    message_id = dead_letter(site, "extraction_failed")
    with signed_in(site, "admin") as b:
        b.get("/console/dlq")
        assert b.post(REDRIVE, data={"message_id": message_id}).status_code == 403
        wrong = b.post(REDRIVE, data={"message_id": message_id, "csrf_token": "forged"})
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "csrf_failed"
        cross = b.post(
            REDRIVE,
            data={"all": "1", "csrf_token": csrf_of(b.get("/console/dlq"))},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
    assert depths(site) == (0, 1)


def test_without_a_session_the_view_sends_to_sign_in(site: ConsoleSite) -> None:
    message_id = dead_letter(site, "extraction_failed")
    with site.browser() as b:
        page = b.get("/console/dlq")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2Fconsole%2Fdlq"
        r = b.post(REDRIVE, data={"message_id": message_id})
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert depths(site) == (0, 1)


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"all": "1", "message_id": "abc"},
        {"all": "yes"},
        {"message_id": "not an id"},
        {"message_id": ""},
        {"message_id": "x" * 300},
    ],
)
def test_a_malformed_redrive_is_a_400_page(site: ConsoleSite, form: dict[str, str]) -> None:
    dead_letter(site, "extraction_failed")
    with signed_in(site, "admin") as b:
        token = csrf_of(b.get("/console/dlq"))
        r = b.post(REDRIVE, data={**form, "csrf_token": token})
        assert r.status_code == 400 and "bad request" in r.text
    assert depths(site) == (0, 1)


def test_a_queue_that_cannot_be_read_is_an_actionable_page(site: ConsoleSite) -> None:
    dead_letter(site, "extraction_failed")
    queue_file = site.project.settings.base_dir / "queue.db"
    with signed_in(site, "admin") as b:
        token = csrf_of(b.get("/console/dlq"))
        for part in ("", "-wal", "-shm"):  # the file and its WAL, overwritten in place
            Path(f"{queue_file}{part}").write_bytes(b"not a database at all" * 2048)
        for r in (b.get("/console/dlq"), b.post(REDRIVE, data={"all": "1", "csrf_token": token})):
            assert r.status_code == 503
            assert "pipeline.queue_url" in r.text and "is running and reachable" in r.text
            assert "Correlation ID" in r.text
    rows = site.project.audit_records(
        lambda a: a.method.startswith("console_dlq") and a.outcome == "error:queue_unavailable",
        at_least=2,
    )
    assert all(r.status == 503 and r.detail for r in rows)
