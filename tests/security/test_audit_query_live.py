"""The security summary of records that real components wrote: a public agent refusing bad
credentials and an attack (authentication stage, WAF), and the guardrail service; and the
reason vocabulary against the texts the authentication code writes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bastion.core.audit_entry import AuditEntry
from bastion.guardrails.engine import Engine as GuardEngine
from bastion.guardrails.service import GuardService
from bastion.guardrails.types import Action
from bastion.security import (
    AuditFilters,
    build_api_key_store,
    chain_status_for,
    search,
    security_summary,
)
from bastion.security.audit_details import (
    AUTH_REASONS,
    auth_reason,
    auth_reason_sql,
    guardrail_types,
    waf_rules,
)
from bastion.security.audit_summary import GUARDRAIL_OUTCOMES
from bastion.storage import AuditRecord
from bastion.storage.database import shared_engine
from tests.guardrails.test_service import ATTACK, CARD
from tests.runtime.conftest import AgentEnv, make_env, public
from tests.security.test_audit_verify import write_entries

SQLI = "1' UNION SELECT password FROM users--"


@pytest.fixture
def public_agent(tmp_path: Path) -> Iterator[AgentEnv]:
    yield from make_env(tmp_path, public)


def test_refusals_of_a_real_agent_show_in_the_summary(public_agent: AgentEnv) -> None:
    env = public_agent
    since = time.time() - 1
    store = build_api_key_store(env.settings)
    revoked = store.create("mallory")
    store.revoke(revoked.split("_")[1])
    unknown = "bst_" + "0" * 12 + "_" + "1" * 64
    refused = [
        env.rpc("message/send", {}, key=None),
        env.rpc("message/send", {}, key="not-a-key"),
        env.rpc("message/send", {}, key=revoked),
        env.rpc("message/send", {}, key=unknown),
    ]
    assert [r.status_code for r in refused] == [401] * 4
    blocked = httpx.post(
        env.url + "/message",
        params={"q": SQLI},
        content=b"{}",
        headers={"X-API-Key": env.admin_key, "content-type": "application/json"},
        timeout=10,
    )
    assert blocked.status_code == 403
    rule_ids = blocked.json()["rule_ids"]
    env.audit_records(lambda r: r.outcome in ("denied:authenticate", "denied:waf"), at_least=5)
    engine = shared_engine(env.settings.database_url())
    summary = security_summary(engine, since, time.time() + 1, buckets=3)
    auth = {b.label: b.count for b in summary.charts["auth_failures"].bars}
    assert auth == {"missing_credential": 1, "malformed": 1, "revoked": 1, "unknown_key": 1}
    waf = summary.charts["waf_blocks"]
    assert waf.total == 1
    assert sorted(b.label for b in waf.bars) == sorted(rule_ids)
    [row] = search(engine, waf.bars[0].filters).rows
    assert row.correlation_id == blocked.json()["correlation_id"]
    assert SQLI not in (row.detail or "")
    # The agent's chain, verified with the project's own key and checkpoint folder.
    [status] = chain_status_for(env.settings)
    assert (status.chain, status.state) == ("echo", "ok")
    assert status.head_seq >= 5 and status.last_ts is not None


async def test_guardrail_decisions_show_in_the_summary(sqlite_url: str, tmp_path: Path) -> None:
    from bastion.storage.database import migrate

    migrate(sqlite_url)
    entries: list[AuditEntry] = []
    guard = GuardService(GuardEngine(), principal="research", agent="planner", audit=entries.append)
    since = time.time() - 1
    guard.scan(ATTACK, "user_input", "input")
    guard.scan(f"card {CARD} for jane.doe@example.com", "user_input", "input")
    guard.scan("What is the capital of France?", "user_input", "input")
    engine = shared_engine(sqlite_url)
    await write_entries(engine, tmp_path / "cp", "planner", entries)
    summary = security_summary(engine, since, time.time() + 1)
    actions = {b.label: b.count for b in summary.charts["guardrail_actions"].bars}
    assert actions == {"BLOCKED": 1, "ANONYMIZED": 1}
    types = {b.label: b.count for b in summary.charts["guardrail_types"].bars}
    assert types["PROMPT_ATTACK"] == 1 and types["CREDIT_DEBIT_CARD_NUMBER"] == 1
    for bar in summary.charts["guardrail_types"].bars:
        assert len(search(engine, bar.filters).rows) == bar.count


def test_the_audited_guardrail_outcomes_are_the_actions_that_act() -> None:
    acting = {f"guardrail:{a.value}" for a in Action if a is not Action.NONE}
    assert set(GUARDRAIL_OUTCOMES) == acting


# The texts the authentication code writes to `detail`, and the reason each one maps to.
AUTH_TEXTS = {
    "no credential": "missing_credential",
    "delegation without a credential": "missing_credential",
    "malformed api key": "malformed",
    "malformed credential": "malformed",
    "both X-API-Key and Authorization sent": "malformed",
    "Authorization is not a Bearer token": "malformed",
    "bearer token rejected: malformed token": "malformed",
    "bearer token rejected: token too large": "malformed",
    "delegation rejected: delegation: malformed act chain": "malformed",
    "unknown api key id 0123456789abcdef": "unknown_key",
    "bearer token rejected: issuer corp: unknown kid k9": "unknown_key",
    "bearer token rejected: untrusted issuer": "unknown_key",
    "wrong secret for api key id 0123456789abcdef": "wrong_secret",
    "revoked api key id 0123456789abcdef": "revoked",
    "bearer token rejected: token revoked": "revoked",
    "bearer token rejected: built-in token: revoked api key id ab": "revoked",
    "expired api key id 0123456789abcdef": "expired",
    "bearer token rejected: token expired": "expired",
    "token expired (within leeway)": "expired",
    "bearer token rejected: issuer corp: bad signature": "bad_signature",
    "bearer token rejected: unsigned token (alg none)": "bad_signature",
    "bearer token rejected: algorithm HS256 not allowed": "bad_signature",
    "api keys are not accepted here": "not_accepted",
    "bearer tokens are not accepted here": "not_accepted",
    "credential check failed (OperationalError)": "unavailable",
    "bearer token rejected: revocation list unavailable (x): token refused": "unavailable",
    "bearer token rejected: token not yet valid (nbf)": "other",
    "": "other",
}


def test_each_authentication_text_maps_to_its_reason(sqlite_url: str) -> None:
    from sqlalchemy import insert, select

    from bastion.storage.database import migrate

    assert set(AUTH_TEXTS.values()) <= set(AUTH_REASONS)
    for text, reason in AUTH_TEXTS.items():
        assert auth_reason(text) == reason, text
    assert auth_reason(None) == "other"
    # The SQL expression agrees with the function, on the database.
    migrate(sqlite_url)
    engine = shared_engine(sqlite_url)
    base = dict.fromkeys(("principal", "auth_method", "agent", "method", "client"), "-")
    base |= {"chain": "c", "ts": 1.0, "correlation_id": "c", "outcome": "denied:authenticate"}
    base |= {"status": 401, "latency_ms": 0.0, "prev_hash": "0", "hash": "0"}
    rows = [
        {**base, "seq": i, "detail": text} for i, text in enumerate([*AUTH_TEXTS, None], start=1)
    ]
    with engine.begin() as conn:
        conn.execute(insert(AuditRecord), rows)
        got = dict(conn.execute(select(AuditRecord.detail, auth_reason_sql())).all())
    assert got == {**AUTH_TEXTS, None: "other"}
    assert len(search(engine, AuditFilters(auth_reason="revoked")).rows) == 3


def test_waf_and_guardrail_details_parse() -> None:
    assert waf_rules("rules: managed.sqli.x@query:id, bot.y@header:user-agent") == [
        "managed.sqli.x",
        "bot.y",
    ]
    assert waf_rules("rules: a.b@body:x@y, a.b@query:z") == ["a.b"]
    assert waf_rules(None) == [] and waf_rules("something else") == []
    assert guardrail_types("policy=1 source=u direction=i types=EMAIL,NAME") == ["EMAIL", "NAME"]
    assert guardrail_types("policy=1 source=u direction=i types=") == []
    assert guardrail_types(None) == []
