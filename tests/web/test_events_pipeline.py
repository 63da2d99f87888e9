"""Events of real uploads through the whole pipeline (gateway, worker, agents on loopback),
in order, over `WS /ws/events`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from bastion.pipeline.samples import bundled_dir
from bastion.project import init_project
from bastion.security.secrets import resolve
from bastion.testing.pipeline_stack import assign_ports, pipeline_in_threads
from tests.pipeline import hostile
from tests.web.events_client import next_event

INVOICE = bundled_dir() / "invoice_en_line_items.pdf"
TERMINAL = ("document.archived", "document.failed")


async def test_upload_events_arrive_in_order(tmp_path: Path) -> None:
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    config = init_project(tmp_path / "proj").config
    assign_ports(config, events={"poll_interval_seconds": 0.05})
    files = {"invoice.pdf": INVOICE.read_bytes(), "locked.pdf": hostile.encrypted_with_password()}
    with pipeline_in_threads(config) as settings:
        assert settings.pipeline.submit_api_key is not None
        key = resolve(settings.pipeline.submit_api_key, settings.base_dir).get()
        url = settings.pipeline.gateway_url
        offered = [Subprotocol("bastion.v1"), Subprotocol(f"bearer.{key}")]
        async with connect(
            "ws" + url.removeprefix("http") + "/ws/events", subprotocols=offered
        ) as ws:
            uploads = {}
            async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}) as client:
                for name, data in files.items():
                    resp = await client.post(
                        "/api/documents", files={"file": (name, data, "application/pdf")}
                    )
                    assert resp.status_code == 202, resp.text
                    uploads[resp.json()["id"]] = resp.json()["correlation_id"]
            seen: dict[str, list[dict[str, str]]] = {doc: [] for doc in uploads}
            while not all(e and e[-1]["type"] in TERMINAL for e in seen.values()):
                event = await asyncio.wait_for(next_event(ws, timeout=60), 60)
                seen[event["document_id"]].append(event)
    invoice, locked = (seen[doc] for doc in uploads)
    assert [e["type"] for e in invoice] == [
        "document.received",
        "document.processing",
        "document.extracted",
        "document.validated",
        "document.archived",
    ]
    assert [e["status"] for e in invoice] == [
        "queued",
        "processing",
        "processing",
        "processing",
        "archived",
    ]
    assert (locked[0]["type"], locked[-1]["type"]) == ("document.received", "document.failed")
    # Each event carries the upload's correlation ID, which traces the document's processing.
    for doc, events in seen.items():
        assert {e["correlation_id"] for e in events} == {uploads[doc]}
        assert [e["at"] for e in events] == sorted(e["at"] for e in events)
