"""A token never outlives the API key it was exchanged for, through real servers: the archivist
issues it (`/oauth/token`), the archivist's `/message` and the gateway's API accept it, and
once the key is revoked with `bastion keys revoke` both refuse it (401) within
`auth.api_key_cache_seconds`, as they refuse the key; open `/ws/events` streams close 4001
(key or token) or 4003 (grant or role taken away by a policy edit) within the same bound."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import ClientConnection

from bastion.config import AuthSettings, PolicySettings, Settings
from bastion.security.apikeys import parse_key_id
from bastion.security.stack import build_api_key_store
from tests.cli.runner import run
from tests.web.events_client import Gateway, closed, next_event, start

# The defaults: a revoked key passes for at most 2 s, a policy edit is seen within 1 s.
CACHE_SECONDS = AuthSettings().api_key_cache_seconds
POLICY_CHECK_SECONDS = PolicySettings().reload_check_seconds
# Room for a loaded test machine on top of the bound (the poll stops as soon as it holds).
SLACK_SECONDS = 5.0


def default_windows(settings: Settings) -> None:
    settings.auth.api_key_cache_seconds = CACHE_SECONDS
    settings.policy.reload_check_seconds = POLICY_CHECK_SECONDS


@pytest.fixture
def gw(tmp_path: Path, db_url: str) -> Iterator[Gateway]:
    """The archivist and the gateway on SQLite and PostgreSQL, with the default windows."""
    with start(tmp_path, db_url, default_windows) as gateway:
        yield gateway


def archivist_url(gw: Gateway) -> str:
    return gw.project.settings.agents["archivist"].url


def new_key(gw: Gateway, principal: str, **kw: Any) -> str:
    return build_api_key_store(gw.project.settings).create(principal, label="lapse", **kw)


def exchange(gw: Gateway, key: str) -> str:
    """A token for `key` from the archivist's built-in token service."""
    resp = httpx.post(archivist_url(gw) + "/oauth/token", headers={"X-API-Key": key}, timeout=10)
    assert resp.status_code == 200, resp.text
    token: str = resp.json()["access_token"]
    return token


def revoke_with_cli(gw: Gateway, key: str) -> None:
    key_id = parse_key_id(key)
    assert key_id is not None
    config = str(gw.project.dir / "bastion.yaml")
    result = run(
        "keys",
        "revoke",
        key_id,
        "--config",
        config,
        env={"BASTION_DATABASE__URL": gw.project.settings.database.url},
    )
    assert result.exit_code == 0, result.output


def agent_status(gw: Gateway, headers: dict[str, str]) -> int:
    body = {"jsonrpc": "2.0", "method": "list_documents", "params": {}, "id": 1}
    resp = httpx.post(archivist_url(gw) + "/message", json=body, headers=headers, timeout=10)
    return resp.status_code


def gateway_status(gw: Gateway, headers: dict[str, str]) -> int:
    return httpx.get(gw.url + "/api/documents", headers=headers, timeout=10).status_code


async def within(seconds: float, check: Callable[[], bool]) -> None:
    """Poll `check` (in a thread) until it holds; fail if it does not within `seconds`."""
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"not so within {seconds} s"
        await asyncio.sleep(0.05)


async def close_code(ws: ClientConnection, seconds: float) -> tuple[int, str]:
    code, reason, _ = await asyncio.wait_for(closed(ws, timeout=seconds), seconds)
    return code, reason


async def test_token_expiry_is_capped_at_the_key_expiry(gw: Gateway) -> None:
    key = new_key(gw, "admin", expires_at=time.time() + 90)
    (row,) = [
        r
        for r in build_api_key_store(gw.project.settings).list("admin")
        if r["key_id"] == parse_key_id(key)
    ]
    resp = httpx.post(archivist_url(gw) + "/oauth/token", headers={"X-API-Key": key}, timeout=10)
    body = resp.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] <= row["expires_at"]
    assert body["expires_in"] <= 90
    assert claims["key_id"] == parse_key_id(key)


async def test_revoked_key_ends_its_tokens_on_the_agent_and_the_gateway(gw: Gateway) -> None:
    key = new_key(gw, "admin")
    bearer = {"Authorization": f"Bearer {exchange(gw, key)}"}
    assert agent_status(gw, bearer) == 200
    assert gateway_status(gw, bearer) == 200  # both now hold the key's record in their cache
    revoke_with_cli(gw, key)
    await within(
        CACHE_SECONDS + SLACK_SECONDS,
        lambda: agent_status(gw, bearer) == 401 and gateway_status(gw, bearer) == 401,
    )
    assert agent_status(gw, {"X-API-Key": key}) == 401
    assert gateway_status(gw, {"X-API-Key": key}) == 401


async def test_revoked_key_closes_its_open_streams_4001(gw: Gateway) -> None:
    key = new_key(gw, "submitter")
    token = exchange(gw, key)
    async with gw.connect_query(key) as by_key, gw.connect_subprotocol(token) as by_token:
        doc = gw.received("submitter")
        assert (await next_event(by_key))["document_id"] == doc
        assert (await next_event(by_token))["document_id"] == doc
        revoke_with_cli(gw, key)
        bound = CACHE_SECONDS + SLACK_SECONDS
        results = await asyncio.gather(close_code(by_key, bound), close_code(by_token, bound))
    for code, reason in results:
        assert code == 4001
        assert "revoked or expired" in reason


def with_policy(settings: Settings) -> None:
    """Alice may read every owner's events by her role (auditor), bob his own by a grant of his
    own, carol every owner's by grants of her own."""
    default_windows(settings)
    path = settings.path(settings.policy.file)
    policy = json.loads(path.read_text())
    policy["allow"]["auditor"] = ["gateway.events", "gateway.read_all_documents"]
    policy["roles"]["alice"] = ["auditor"]
    policy["allow"]["bob"] = ["gateway.events"]
    policy["allow"]["carol"] = ["gateway.events", "gateway.read_all_documents"]
    path.write_text(json.dumps(policy))


async def test_withdrawn_role_or_grant_closes_the_open_stream_4003(
    tmp_path: Path, sqlite_url: str
) -> None:
    with start(tmp_path, sqlite_url, with_policy) as gw:
        alice, bob = new_key(gw, "alice"), new_key(gw, "bob")
        async with (
            gw.connect_subprotocol(exchange(gw, alice)) as by_role,
            gw.connect_query(bob) as by_grant,
        ):
            doc = gw.received("bob")
            assert (await next_event(by_role))["document_id"] == doc  # the auditor sees all
            assert (await next_event(by_grant))["document_id"] == doc
            path = gw.project.settings.path(gw.project.settings.policy.file)
            policy = json.loads(path.read_text())
            policy["roles"].pop("alice")
            policy["allow"].pop("bob")
            path.write_text(json.dumps(policy))
            bound = POLICY_CHECK_SECONDS + CACHE_SECONDS + SLACK_SECONDS
            results = await asyncio.gather(close_code(by_role, bound), close_code(by_grant, bound))
    for code, reason in results:
        assert code == 4003
        assert "gateway.events" in reason


async def test_a_withdrawn_read_all_grant_narrows_the_open_stream(
    tmp_path: Path, sqlite_url: str
) -> None:
    with start(tmp_path, sqlite_url, with_policy) as gw:
        async with gw.connect_query(new_key(gw, "carol")) as carol:
            first = gw.received("bob")
            assert (await next_event(carol))["document_id"] == first
            path = gw.project.settings.path(gw.project.settings.policy.file)
            policy = json.loads(path.read_text())
            policy["allow"]["carol"] = ["gateway.events"]
            path.write_text(json.dumps(policy))
            # Within the bound, bob's documents are no longer sent; carol's own still are.
            deadline = time.monotonic() + POLICY_CHECK_SECONDS + CACHE_SECONDS + SLACK_SECONDS
            while True:
                bobs, mine = gw.received("bob"), gw.received("carol")
                seen = (await next_event(carol))["document_id"]
                if seen == mine:
                    break
                assert seen == bobs and time.monotonic() < deadline
                assert (await next_event(carol))["document_id"] == mine
                await asyncio.sleep(POLICY_CHECK_SECONDS / 4)  # one pair per quarter check
