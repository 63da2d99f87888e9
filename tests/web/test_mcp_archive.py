"""The archive over MCP (`POST /mcp` on the gateway), through a real gateway and archivist, with
the `mcp` SDK's own streamable HTTP client, on SQLite and PostgreSQL: the tools and the
resource on the caller's own documents, and every refusal (no credential, a bad key, a forged
bearer token, no grant, another owner's document, malformed arguments, the rate limit), each
audited."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from bastion.config import Settings
from bastion.pipeline.model import Outcome
from bastion.web.mcp_archive import McpArchive
from tests.web.conftest import record_new_upload
from tests.web.test_document_owners import add_principal
from tests.web.test_gateway import Gateway, start

TOOLS = {"search_documents", "list_documents", "get_document"}
MISSING = "doc_" + "a" * 26
SEARCH_LIMIT = 3  # search_documents calls per minute per principal, in this test's config


def tight_search(settings: Settings) -> None:
    settings.rate_limit.methods = {"search_documents": f"{SEARCH_LIMIT}/minute"}


@pytest.fixture
def gateway(tmp_path: Path, db_url: str) -> Iterator[Gateway]:
    """`submitter` (granted the MCP tools by the shipped policy), `bob` (the same grants, his
    own documents) and `reader` (the REST reads only, no MCP grant)."""
    with start(tmp_path, db_url, tight_search) as gw:
        add_principal(gw, "bob", ["mcp.search_documents", "mcp.list_documents", "mcp.get_document"])
        add_principal(gw, "reader", ["gateway.get_document", "gateway.list_documents"])
        yield gw


def headers(gateway: Gateway, principal: str, cid: str | None = None) -> dict[str, str]:
    h = {"X-API-Key": gateway.project.keys[principal]}
    if cid is not None:
        h["X-Correlation-ID"] = cid
    return h


@asynccontextmanager
async def connect(gateway: Gateway, h: dict[str, str]) -> AsyncIterator[Client]:
    """The SDK's client on the gateway's `/mcp`, sending `h` with every request."""
    async with httpx2.AsyncClient(headers=h, timeout=10) as http:
        transport = streamable_http_client(gateway.url + "/mcp", http_client=http)
        async with Client(transport) as client:
            yield client


def archived(gateway: Gateway, principal: str, outcome: Outcome = "valid") -> str:
    doc_id = record_new_upload(gateway.project.repo, principal)
    gateway.project.archive(doc_id, outcome)
    return doc_id


def body(result: CallToolResult) -> dict[str, Any]:
    (content,) = result.content
    data: dict[str, Any] = json.loads(content.text)  # type: ignore[union-attr]
    assert result.structured_content == data
    return data


def audited(gateway: Gateway, cid: str, at_least: int = 1) -> list[Any]:
    return gateway.project.audit_records(
        lambda a: a.correlation_id == cid and a.agent == "gateway", at_least=at_least
    )


async def test_tools_and_resource_read_the_caller_s_own_documents(gateway: Gateway) -> None:
    mine = archived(gateway, "submitter")
    theirs = archived(gateway, "bob")
    cid = f"mcp-ok-{uuid.uuid4().hex[:8]}"
    async with connect(gateway, headers(gateway, "submitter", cid)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS

        listed = await client.call_tool("list_documents", {})
        assert not listed.is_error
        assert [d["id"] for d in body(listed)["documents"]] == [mine]

        got = await client.call_tool("get_document", {"document_id": mine})
        assert not got.is_error
        doc = body(got)
        assert (doc["id"], doc["owner"], doc["outcome"]) == (mine, "submitter", "valid")

        found = await client.call_tool("search_documents", {"query": "x.pdf"})
        assert not found.is_error
        ids = [r["id"] for r in body(found)["results"]]
        assert mine in ids and theirs not in ids

        read = await client.read_resource(f"document://{mine}")
        (contents,) = read.contents
        assert json.loads(contents.text)["id"] == mine  # type: ignore[union-attr]

    records = audited(gateway, cid, at_least=4)
    assert {(r.principal, r.method, r.outcome) for r in records} == {
        ("submitter", "mcp.list_documents", "ok"),
        ("submitter", "mcp.get_document", "ok"),
        ("submitter", "mcp.search_documents", "ok"),
    }


async def test_another_owner_s_document_is_not_found_like_a_missing_one(gateway: Gateway) -> None:
    theirs = archived(gateway, "submitter")
    cid = f"mcp-owner-{uuid.uuid4().hex[:8]}"
    async with connect(gateway, headers(gateway, "bob", cid)) as client:
        other = await client.call_tool("get_document", {"document_id": theirs})
        missing = await client.call_tool("get_document", {"document_id": MISSING})
        assert other.is_error and missing.is_error
        assert body(other)["error"] == body(missing)["error"]
        assert body(other)["error"]["code"] == "not_found"
        assert body(other)["correlation_id"] == cid

        with pytest.raises(MCPError) as raised:
            await client.read_resource(f"document://{theirs}")
        assert raised.value.error.data["error"] == body(missing)["error"]

        assert body(await client.call_tool("list_documents", {}))["documents"] == []
    outcomes = sorted(r.outcome for r in audited(gateway, cid, at_least=4))
    assert outcomes == ["denied:not_owner", "denied:not_owner", "error:not_found", "ok"]


async def test_a_principal_without_the_grant_is_refused_and_audited(gateway: Gateway) -> None:
    doc_id = archived(gateway, "reader")
    cid = f"mcp-rbac-{uuid.uuid4().hex[:8]}"
    async with connect(gateway, headers(gateway, "reader", cid)) as client:
        refused = await client.call_tool("get_document", {"document_id": doc_id})
        assert refused.is_error
        assert body(refused)["error"]["code"] == "forbidden"
        assert doc_id not in json.dumps(body(refused))
        with pytest.raises(MCPError) as raised:
            await client.read_resource(f"document://{doc_id}")
        assert raised.value.error.data["error"]["code"] == "forbidden"
    records = audited(gateway, cid, at_least=2)
    assert {(r.principal, r.method, r.outcome, r.status) for r in records} == {
        ("reader", "mcp.get_document", "denied:authorize", 403)
    }
    # The REST read, granted, still answers.
    assert gateway.request("GET", f"/api/documents/{doc_id}", "reader").status_code == 200


def forged_token() -> str:
    """A well-formed token naming `admin`, signed with a key of nobody's."""
    claims = {"iss": "bastion", "aud": "bastion", "sub": "admin", "exp": int(time.time()) + 60}
    return jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")


@pytest.mark.parametrize(
    "credential",
    [{}, {"X-API-Key": "bk_not-a-key"}, {"Authorization": "Bearer " + forged_token()}],
    ids=["none", "bad-key", "forged-bearer"],
)
def test_a_missing_or_bad_credential_is_a_401_before_any_mcp(
    gateway: Gateway, credential: dict[str, str]
) -> None:
    cid = f"mcp-401-{uuid.uuid4().hex[:8]}"
    init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    r = httpx.post(
        gateway.url + "/mcp",
        json=init,
        headers={**credential, "X-Correlation-ID": cid, "Accept": "application/json"},
        timeout=10,
    )
    assert r.status_code == 401
    assert r.json() == {
        "error": {
            "code": "unauthenticated",
            "message": "send a valid API key in X-API-Key, or a bearer token in Authorization",
        },
        "correlation_id": cid,
    }
    assert "Bearer" in r.headers["www-authenticate"]
    assert r.headers["x-correlation-id"] == cid
    (record,) = audited(gateway, cid)
    assert (record.method, record.outcome, record.status) == (
        "mcp.request",
        "denied:authenticate",
        401,
    )


async def test_the_sdk_client_without_a_credential_cannot_connect(gateway: Gateway) -> None:
    with pytest.raises(BaseExceptionGroup) as raised:  # the SDK's task groups wrap its error
        async with connect(gateway, {}) as client:
            await client.list_tools()
    assert raised.group_contains(MCPError)


async def test_a_bearer_token_from_the_token_service_is_accepted(gateway: Gateway) -> None:
    doc_id = archived(gateway, "submitter")
    token_service = gateway.project.settings.agents["archivist"].url + "/oauth/token"
    r = httpx.post(token_service, headers=headers(gateway, "submitter"), timeout=10)
    assert r.status_code == 200, r.text
    bearer = {"Authorization": "Bearer " + r.json()["access_token"]}
    async with connect(gateway, bearer) as client:
        got = await client.call_tool("get_document", {"document_id": doc_id})
        assert not got.is_error and body(got)["id"] == doc_id


async def test_malformed_arguments_are_refused(gateway: Gateway) -> None:
    cid = f"mcp-bad-{uuid.uuid4().hex[:8]}"
    async with connect(gateway, headers(gateway, "submitter", cid)) as client:
        missing = await client.call_tool("get_document", {})
        assert missing.is_error
        wrong_type = await client.call_tool("list_documents", {"limit": "many"})
        assert wrong_type.is_error
        bad_id = await client.call_tool("get_document", {"document_id": "not-an-id"})
        assert body(bad_id)["error"]["code"] == "invalid_request"
        bad_status = await client.call_tool("list_documents", {"status": "lost"})
        assert body(bad_status)["error"]["code"] == "invalid_request"
        too_many = await client.call_tool("search_documents", {"query": "x", "limit": 10_000})
        assert body(too_many)["error"]["code"] == "invalid_request"
        unknown = await client.call_tool("delete_document", {"document_id": MISSING})
        assert unknown.is_error
    outcomes = [r.outcome for r in audited(gateway, cid, at_least=3)]
    assert outcomes.count("error:invalid_request") == 3


async def test_calls_over_the_rate_limit_are_refused(gateway: Gateway) -> None:
    cid = f"mcp-rate-{uuid.uuid4().hex[:8]}"
    async with connect(gateway, headers(gateway, "submitter", cid)) as client:
        for _ in range(SEARCH_LIMIT):
            assert not (await client.call_tool("search_documents", {"query": "x"})).is_error
        over = await client.call_tool("search_documents", {"query": "x"})
        assert over.is_error
        assert body(over)["error"]["code"] == "rate_limited"
        # Another tool has no such limit.
        assert not (await client.call_tool("list_documents", {})).is_error
    records = audited(gateway, cid, at_least=SEARCH_LIMIT + 2)
    assert [r.status for r in records if r.outcome == "denied:rate_limit"] == [429]


def test_building_it_leaves_the_root_logger_to_bastion(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK would put its own handler on an unconfigured root logger."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    McpArchive(guard=None, policy=None, archivist=None)  # type: ignore[arg-type]
    assert root.handlers == []


def test_an_answer_carries_the_correlation_id(gateway: Gateway) -> None:
    cid = f"mcp-cid-{uuid.uuid4().hex[:8]}"
    r = httpx.post(
        gateway.url + "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
        headers={
            **headers(gateway, "submitter", cid),
            "Accept": "application/json, text/event-stream",
        },
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-correlation-id"] == cid
    assert {t["name"] for t in r.json()["result"]["tools"]} == TOOLS
