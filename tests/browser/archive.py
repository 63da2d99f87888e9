"""The documents and dead letters the browser scenarios need, made through the deployment's
own interfaces: uploads through the gateway's API, and a dead letter through the queue API."""

from __future__ import annotations

import time
from typing import Any

from bastion.config import load_settings
from bastion.pipeline import open_pipeline_queue
from bastion.pipeline.synthetic import synthetic_invoice
from tests.browser.deployment import Deployment
from tests.pipeline import hostile

SETTLE_TIMEOUT = 90.0  # a hang guard for the pipeline on a loaded machine
POLL_SECONDS = 0.2
CLAIM_ATTEMPTS = 20


def invoice(seed: int) -> bytes:
    """A generated invoice of its own (number INV-<seed>-000001)."""
    return synthetic_invoice(1, seed=seed)


def poison() -> bytes:
    """A PDF cut in half: the gateway's checks pass it (it starts with %PDF-), the extractor
    rejects it, and the worker dead-letters it as `truncated`."""
    return hostile.truncated()


def upload(deployment: Deployment, data: bytes, filename: str, principal: str = "submitter") -> str:
    """Upload through `POST /api/documents` as `principal`; the new document's id."""
    with deployment.api(principal) as api:
        answer = api.post("/api/documents", files={"file": (filename, data, "application/pdf")})
    assert answer.status_code == 202, answer.text
    doc_id: str = answer.json()["id"]
    return doc_id


def settled(deployment: Deployment, doc_id: str, statuses: set[str]) -> dict[str, Any]:
    """The document once its status is one of `statuses` (the API polled, for a scenario's
    preparation; what a scenario checks, it waits for in the page)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    with deployment.api("admin") as api:
        while True:
            doc: dict[str, Any] = api.get(f"/api/documents/{doc_id}").json()
            if doc.get("status") in statuses:
                return doc
            assert time.monotonic() < deadline, f"{doc_id} still {doc.get('status')}"
            time.sleep(POLL_SECONDS)


def dead_letter(deployment: Deployment, doc_id: str, reason: str) -> str:
    """Put a message for `doc_id` on the dead-letter queue through the queue API, as the worker
    does with one it gives up on; the message's id. The running worker may take the message
    first (it then processes the document once more): the next attempt sends another."""
    queue = open_pipeline_queue(load_settings(deployment.project / "bastion.yaml"))
    try:
        for _ in range(CLAIM_ATTEMPTS):
            sent = queue.send({"document_id": doc_id, "correlation_id": f"browser-{doc_id}"})
            for message in queue.receive(1, visibility_timeout=300):
                if message.id == sent:
                    assert queue.dead_letter(message.receipt_handle, reason)
                    return sent
                queue.change_visibility(message.receipt_handle, 0)  # not ours: back it goes
        raise AssertionError(f"the worker took every one of {CLAIM_ATTEMPTS} messages first")
    finally:
        queue.close()
