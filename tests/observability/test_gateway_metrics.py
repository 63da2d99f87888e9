"""`GET /metrics` on the gateway over real HTTP: who may scrape, request counters, and the queue
(depth and age of its oldest waiting message) and archive read at scrape time (on SQLite and
PostgreSQL), including when a read fails."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bastion.config import Settings
from bastion.pipeline.stores import open_pipeline_queue
from bastion.security.stack import build_api_key_store
from bastion.testing import serve_in_thread
from bastion.testing.ports import closed_port_url
from bastion.web import build_gateway
from bastion.web.gateway import Gateway
from tests.observability.scrape import Scrape, scrape
from tests.pipeline.hostile import normal_pdf
from tests.web.conftest import Project, make_project, serve_archivist

LIMIT = 64 * 1024


def uncached(settings: Settings) -> None:
    settings.metrics.cache_seconds = 0
    settings.pipeline.max_upload_bytes = LIMIT


@contextmanager
def gateway(tmp_path: Path, db_url: str) -> Iterator[tuple[Project, str]]:
    project = make_project(tmp_path, db_url, uncached)
    project.keys["monitoring"] = build_api_key_store(project.settings).create("monitoring")
    with serve_archivist(project), serve_in_thread(build_gateway(project.settings)) as srv:
        yield project, srv.url


def monitor(project: Project, url: str) -> Scrape:
    return scrape(url, {"X-API-Key": project.keys["monitoring"]})


def upload(project: Project, url: str, data: bytes, principal: str = "submitter") -> int:
    files = {"file": ("invoice.pdf", data, "application/pdf")}
    headers = {"X-API-Key": project.keys[principal]}
    r = httpx.post(url + "/api/documents", files=files, headers=headers, timeout=10)
    return r.status_code


def test_gateway_metrics_need_the_metrics_grant(tmp_path: Path, sqlite_url: str) -> None:
    with gateway(tmp_path, sqlite_url) as (project, url):

        def status(headers: dict[str, str]) -> int:
            return httpx.get(url + "/metrics", headers=headers, timeout=10).status_code

        assert status({}) == 401
        assert status({"X-API-Key": "bst_nope"}) == 401
        assert status({"X-API-Key": project.keys["submitter"]}) == 403
        # The gateway's alarm engine scrapes the gateway itself (`gateway.metrics`).
        assert status({"X-API-Key": project.keys["gateway"]}) == 200
        assert status({"X-API-Key": project.keys["monitoring"]}) == 200
        assert status({"X-API-Key": project.keys["admin"]}) == 200


def test_gateway_requests_and_refusals_are_counted(tmp_path: Path, sqlite_url: str) -> None:
    with gateway(tmp_path, sqlite_url) as (project, url):
        before = monitor(project, url)
        assert upload(project, url, normal_pdf(b"counted")) == 202
        assert upload(project, url, normal_pdf(b"refused"), principal="monitoring") == 403
        # Over the upload limit, within the edge's allowance for the multipart framing.
        assert upload(project, url, b"%PDF-" + b"x" * (LIMIT + 1000)) == 413
        after = monitor(project, url)

    def delta(name: str, **labels: str) -> float:
        return after.since(before, name, **labels)

    upload_labels = {"agent": "gateway", "method": "upload_document"}
    assert delta("bastion_requests_total", outcome="ok", **upload_labels) == 1
    assert delta("bastion_requests_total", outcome="denied:authorize", **upload_labels) == 1
    assert delta("bastion_requests_total", outcome="denied:size_limit", **upload_labels) == 1
    assert delta("bastion_denials_total", agent="gateway", stage="authorize") == 1
    assert delta("bastion_denials_total", agent="gateway", stage="size_limit") == 1
    assert delta("bastion_request_duration_seconds_count", **upload_labels) == 3
    assert after.has("bastion_request_duration_seconds_bucket", le="0.25", **upload_labels)


def test_queue_depth_dlq_and_documents_by_status_follow_the_stores(
    tmp_path: Path, db_url: str
) -> None:
    with gateway(tmp_path, db_url) as (project, url):
        empty = monitor(project, url)
        assert empty.value("bastion_collector_up", collector="queue") == 1
        assert empty.value("bastion_collector_up", collector="documents") == 1
        assert empty.has("bastion_queue_messages", queue="pipeline", state="visible")
        assert empty.value("bastion_queue_messages", queue="pipeline", state="visible") == 0
        assert empty.value("bastion_queue_dead_letters", queue="pipeline") == 0
        assert empty.has("bastion_queue_oldest_age_seconds", queue="pipeline")
        assert empty.value("bastion_queue_oldest_age_seconds", queue="pipeline") == 0
        assert empty.has("bastion_documents", status="archived")

        for marker in (b"one", b"two", b"three"):
            assert upload(project, url, normal_pdf(marker)) == 202
        queued = monitor(project, url)
        assert queued.value("bastion_queue_messages", queue="pipeline", state="visible") == 3
        assert queued.value("bastion_documents", status="queued") == 3
        assert queued.value("bastion_queue_oldest_age_seconds", queue="pipeline") > 0

        queue = open_pipeline_queue(project.settings)
        try:
            poison, held = queue.receive(2, visibility_timeout=300)
            assert queue.dead_letter(poison.receipt_handle, "not_pdf")
        finally:
            queue.close()
        project.repo.set_status(poison.body["document_id"], "failed", reason="not_pdf")
        after = monitor(project, url)
        assert held.receive_count == 1
        assert after.value("bastion_queue_messages", queue="pipeline", state="visible") == 1
        assert after.value("bastion_queue_messages", queue="pipeline", state="in_flight") == 1
        assert after.value("bastion_queue_dead_letters", queue="pipeline") == 1
        assert after.value("bastion_documents", status="queued") == 2
        assert after.value("bastion_documents", status="failed") == 1
        assert after.value("bastion_queue_oldest_age_seconds", queue="pipeline") > 0

        queue = open_pipeline_queue(project.settings)
        try:
            assert len(queue.receive(visibility_timeout=300)) == 1
        finally:
            queue.close()
        drained = monitor(project, url)
        assert drained.value("bastion_queue_messages", queue="pipeline", state="in_flight") == 2
        assert drained.value("bastion_queue_oldest_age_seconds", queue="pipeline") == 0


def test_a_failed_store_read_leaves_its_samples_out_and_the_scrape_succeeds(
    tmp_path: Path, sqlite_url: str
) -> None:
    project = make_project(tmp_path, sqlite_url, uncached)
    monitoring = build_api_key_store(project.settings).create("monitoring")
    # An archivist that does not answer: nothing listens on its port.
    project.settings.agents["archivist"].url = closed_port_url()
    gw = Gateway(project.settings)
    errors = "bastion_collector_errors_total"
    with serve_in_thread(gw.app()) as srv:
        first = scrape(srv.url, {"X-API-Key": monitoring})
        second = scrape(srv.url, {"X-API-Key": monitoring})
    for result in (first, second):
        assert "bastion_documents" not in result.samples
        assert result.value("bastion_collector_up", collector="documents") == 0
        assert result.value("bastion_collector_up", collector="queue") == 1
        assert result.has("bastion_queue_messages", queue="pipeline", state="visible")
    assert second.since(first, errors, collector="documents") == 1
    assert first.value(errors, collector="documents") >= 1


def test_the_breaker_of_a_dead_archivist_reads_open_in_the_gateway_metrics(
    tmp_path: Path, sqlite_url: str
) -> None:
    dead = closed_port_url()
    project = make_project(tmp_path, sqlite_url, uncached)
    monitoring = build_api_key_store(project.settings).create("monitoring")
    project.settings.agents["archivist"].url = dead
    project.settings.client.max_retries = 0
    project.settings.client.breaker_failure_threshold = 2
    project.settings.client.breaker_reset_seconds = 3600

    def breaker(result: Scrape, sample: str, **labels: str) -> float:
        """A sample of the archivist's breaker (its `name` label is the configured address)."""
        return result.samples.get(sample, {}).get(frozenset({"name": dead, **labels}.items()), 0)

    with serve_in_thread(build_gateway(project.settings)) as srv:
        key = {"X-API-Key": project.keys["submitter"]}
        before = scrape(srv.url, {"X-API-Key": monitoring})
        assert breaker(before, "bastion_circuit_state") == 0  # closed: one failure so far
        r = httpx.get(srv.url + "/api/documents", headers=key, timeout=10)
        assert r.status_code == 503  # the second failure opens the breaker
        after = scrape(srv.url, {"X-API-Key": monitoring})
    assert breaker(after, "bastion_circuit_state") == 2
    transitions = "bastion_circuit_transitions_total"
    assert (
        breaker(after, transitions, state="open") - breaker(before, transitions, state="open") == 1
    )
    assert after.value("bastion_collector_up", collector="documents") == 0  # failed fast
