"""Object-level authorization on documents, through the real gateway with two submitters, on
SQLite and PostgreSQL: a principal sees only its own documents unless it is granted
`gateway.read_all_documents`; another owner's document answers exactly like a missing one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.security.stack import build_api_key_store
from tests.pipeline.hostile import normal_pdf
from tests.web.test_gateway import Gateway, sha, start

MISSING = "doc_" + "a" * 26
ROUTES = (("GET", ""), ("GET", "/file"), ("DELETE", ""))


def allow(gateway: Gateway, principal: str, actions: list[str]) -> None:
    """Add grants to the policy file (reloaded on the next request)."""
    path = gateway.project.settings.path(gateway.project.settings.policy.file)
    policy = json.loads(path.read_text())
    policy["allow"].setdefault(principal, []).extend(actions)
    path.write_text(json.dumps(policy))


def add_principal(gateway: Gateway, principal: str, actions: list[str]) -> None:
    allow(gateway, principal, actions)
    key = build_api_key_store(gateway.project.settings).create(principal, label="test")
    gateway.project.keys[principal] = key


@pytest.fixture
def gateway(tmp_path: Path, db_url: str) -> Iterator[Gateway]:
    """`submitter` and `bob`, a second submitter who may also delete (his own documents)."""
    with start(tmp_path, db_url) as gw:
        policy = gw.project.settings.path(gw.project.settings.policy.file)
        submitter = json.loads(policy.read_text())["allow"]["submitter"]
        add_principal(gw, "bob", [*submitter, "gateway.delete_document"])
        yield gw


def upload(gateway: Gateway, data: bytes, principal: str) -> httpx.Response:
    r = gateway.upload(data, principal)
    assert r.status_code in (200, 202), r.text
    return r


def error(r: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()["error"]
    return body


def test_another_owner_s_document_is_a_404_like_a_missing_one_and_audited(
    gateway: Gateway,
) -> None:
    doc_id = upload(gateway, normal_pdf(b"alice's"), "submitter").json()["id"]
    for method, suffix in ROUTES:
        cid = f"not-owner-{method}-{suffix.strip('/') or 'doc'}"
        theirs = gateway.request(
            method, f"/api/documents/{doc_id}{suffix}", "bob", {"X-Correlation-ID": cid}
        )
        missing = gateway.request(method, f"/api/documents/{MISSING}{suffix}", "bob")
        assert theirs.status_code == missing.status_code == 404, (method, suffix)
        assert error(theirs) == error(missing)
        assert set(theirs.headers) - {"date", "x-correlation-id", "content-length"} == set(
            missing.headers
        ) - {"date", "x-correlation-id", "content-length"}
        (record,) = gateway.audit(cid)
        assert (record.principal, record.outcome, record.status, record.detail) == (
            "bob",
            "denied:not_owner",
            404,
            "not_owner",
        )
    # Nothing changed for the owner.
    assert gateway.request("GET", f"/api/documents/{doc_id}").json()["deleted_at"] is None
    assert gateway.request("GET", f"/api/documents/{doc_id}/file").status_code == 200


def test_lists_show_only_the_caller_s_documents_unless_it_may_read_all(
    gateway: Gateway,
) -> None:
    mine = {upload(gateway, normal_pdf(f"a{i}".encode()), "submitter").json()["id"] for i in (1, 2)}
    bobs = {upload(gateway, normal_pdf(b"b1"), "bob").json()["id"]}

    def listed(principal: str) -> set[str]:
        r = gateway.request("GET", "/api/documents", principal)
        assert r.status_code == 200, r.text
        return {d["id"] for d in r.json()["documents"]}

    assert listed("submitter") == mine
    assert listed("bob") == bobs
    assert listed("admin") == mine | bobs  # admin's `*` includes gateway.read_all_documents
    # The grant, not a name: an auditor with it reads everyone's documents.
    add_principal(
        gateway,
        "auditor",
        ["gateway.list_documents", "gateway.get_document", "gateway.read_all_documents"],
    )
    assert listed("auditor") == mine | bobs
    (bob_doc,) = bobs
    assert gateway.request("GET", f"/api/documents/{bob_doc}", "auditor").status_code == 200
    assert gateway.request("GET", f"/api/documents/{bob_doc}", "admin").status_code == 200


def test_the_same_bytes_from_another_principal_are_its_own_document(gateway: Gateway) -> None:
    data = normal_pdf(b"the same bytes")
    first = upload(gateway, data, "submitter")
    alice_id = first.json()["id"]
    gateway.project.archive(alice_id, "invalid")
    assert upload(gateway, data, "submitter").json()["outcome"] == "invalid"

    bobs = upload(gateway, data, "bob")
    assert bobs.status_code == 202
    body = bobs.json()
    bob_id = body["id"]
    # Nothing of Alice's document shows: a new id, queued, no outcome.
    assert body == {
        "id": bob_id,
        "sha256": sha(data),
        "status": "queued",
        "correlation_id": bobs.headers["x-correlation-id"],
    }
    assert bob_id != alice_id
    again = upload(gateway, data, "bob")
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["status"]) == (bob_id, "queued")
    assert [m.body["document_id"] for m in gateway.project.queued()] == [alice_id, bob_id]
    history = gateway.request("GET", f"/api/documents/{alice_id}").json()["history"]
    assert {h["principal"] for h in history} <= {"submitter", "orchestrator"}

    # The bytes are stored once and stay while a document needs them.
    assert gateway.project.repo.blob_refcount(sha(data)) == 2
    r = gateway.request("DELETE", f"/api/documents/{alice_id}", "admin")
    assert r.status_code == 200 and r.json()["deleted"] is True
    f = gateway.request("GET", f"/api/documents/{bob_id}/file", "bob")
    assert f.status_code == 200 and f.content == data
    assert gateway.request("GET", f"/api/documents/{alice_id}/file").status_code == 404
    assert gateway.request("DELETE", f"/api/documents/{bob_id}", "bob").status_code == 200
    assert gateway.project.repo.blob_refcount(sha(data)) == 0
    objects = gateway.project.settings.path(gateway.project.settings.pipeline.objects_dir)
    assert not [p for p in objects.rglob("*") if p.is_file()]
