"""Audit search, security summaries and chain status, on records written by the real writer
(SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine

from bastion.core.audit_entry import AuditEntry
from bastion.security import (
    AuditFilters,
    AuditRow,
    ChainMonitor,
    chain_status,
    search,
    security_summary,
    verify_chain,
)
from bastion.storage import encode_cursor
from bastion.storage.database import shared_engine
from tests.security.test_audit_verify import KEY, execute, write_entries

T0 = 1_700_000_000.0

AUTH_DETAILS = [
    "no credential",
    "unknown api key id k1",
    "unknown api key id k2",
    "revoked api key id k3",
    "bearer token rejected: token expired",
    "bearer token rejected: issuer bastion: bad signature",
    "something new",
]
WAF_DETAILS = [
    ("waf.managed", "rules: managed.sqli.libinjection@query:id"),
    ("waf.managed", "rules: managed.sqli.libinjection@query:q, managed.xss.tag@body:a@b"),
    ("waf.bot", "rules: bot.scanner_user_agent@header:user-agent"),
]
GUARD = "policy=3 source={} direction={} types={}"
# (outcome, method, principal, detail) of the security events, one record each.
EVENTS: list[tuple[str, str, str, str | None]] = [
    *(("denied:authenticate", "message/send", "-", d) for d in AUTH_DETAILS),
    ("denied:authorize", "message/send", "alice", "denied by policy rule for 'alice'"),
    ("denied:authorize", "message/send", "alice", "no rule"),
    ("denied:authorize", "tasks/get", "bob", "no rule"),
    *(("denied:rate_limit", "message/send", p, "over 10/s") for p in ("carol", "carol", "dave")),
    *(("denied:waf", m, "-", d) for m, d in WAF_DETAILS),
    ("guardrail:BLOCKED", "guardrail.scan", "rs", GUARD.format("user", "input", "PROMPT_ATTACK")),
    ("guardrail:ANONYMIZED", "guardrail.scan", "rs", GUARD.format("model", "output", "EMAIL,NAME")),
    ("guardrail:ANONYMIZED", "guardrail.scan", "rs", GUARD.format("model", "output", "EMAIL")),
]


def event(i: int, outcome: str, method: str, principal: str, detail: str | None) -> AuditEntry:
    return AuditEntry(
        ts=T0 + i * 10.0,
        principal=principal,
        auth_method="api_key",
        agent="gateway" if i % 2 else "echo",
        method=method,
        correlation_id=f"cid-{i:04d}",
        outcome=outcome,
        status=200 if outcome == "ok" else 403,
        latency_ms=1.0,
        client="127.0.0.1",
        detail=detail,
    )


def trail() -> list[AuditEntry]:
    """Every EVENT once, with ok and error calls between them, 10 s apart."""
    out: list[AuditEntry] = []
    for outcome, method, principal, detail in EVENTS:
        out.append(event(len(out), outcome, method, principal, detail))
        out.append(event(len(out), "ok", "message/send", "alice", None))
    out.append(event(len(out), "error:-32602", "message/send", "bob", "bad params"))
    out.append(event(len(out), "error", "tasks/get", "bob", None))
    return out


async def write(engine: Engine, cp_dir: Path, chain: str, entries: list[AuditEntry]) -> None:
    await write_entries(engine, cp_dir, chain, entries, every=10)


@pytest.fixture
async def written(db_url: str, tmp_path: Path) -> tuple[Engine, Path, list[AuditEntry]]:
    engine = shared_engine(db_url)
    cp_dir = tmp_path / "cp"
    entries = trail()
    # Two chains, interleaved in time: the search orders by time across chains.
    await write(engine, cp_dir, "alpha", entries[0::2])
    await write(engine, cp_dir, "beta", entries[1::2])
    return engine, cp_dir, entries


def every(engine: Engine, filters: AuditFilters, limit: int = 500) -> list[AuditRow]:
    rows: list[AuditRow] = []
    cursor = None
    while True:
        page = search(engine, filters, cursor=cursor, limit=limit)
        rows += page.rows
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


def cids(rows: list[AuditRow]) -> list[str]:
    return [r.correlation_id for r in rows]


def expect(entries: list[AuditEntry], keep: Any) -> list[str]:
    return [e.correlation_id for e in sorted(entries, key=lambda e: -e.ts) if keep(e)]


# -- search ----------------------------------------------------------------------------------


async def test_no_filter_lists_every_record_newest_first(written: Any) -> None:
    engine, _, entries = written
    rows = every(engine, AuditFilters())
    assert cids(rows) == expect(entries, lambda e: True)
    first = rows[0]
    assert (first.chain, first.seq) == ("beta", len(entries) // 2)
    assert set(first.to_dict()) >= {"ts", "agent", "principal", "method", "outcome", "status"}
    assert {"correlation_id", "latency_ms", "detail", "chain", "seq"} <= set(first.to_dict())


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        ({"correlation_id": "cid-0003"}, lambda e: e.correlation_id == "cid-0003"),
        ({"principal": "carol"}, lambda e: e.principal == "carol"),
        ({"method": "tasks/get"}, lambda e: e.method == "tasks/get"),
        ({"method": "waf.*"}, lambda e: e.method.startswith("waf.")),
        ({"method": "guardrail.sc*"}, lambda e: e.method == "guardrail.scan"),
        ({"outcome": "denied:waf"}, lambda e: e.outcome == "denied:waf"),
        ({"outcome": "ok"}, lambda e: e.outcome == "ok"),
        ({"outcome": "denied"}, lambda e: e.outcome.startswith("denied:")),
        ({"outcome": "error"}, lambda e: e.outcome.split(":")[0] == "error"),
        ({"outcome": "guardrail"}, lambda e: e.outcome.startswith("guardrail:")),
        ({"agent": "gateway"}, lambda e: e.agent == "gateway"),
        ({"chain": "alpha"}, lambda e: int(e.correlation_id[4:]) % 2 == 0),
        ({"since": T0 + 100}, lambda e: e.ts >= T0 + 100),
        ({"until": T0 + 100}, lambda e: e.ts < T0 + 100),
        ({"since": T0 + 50, "until": T0 + 120}, lambda e: T0 + 50 <= e.ts < T0 + 120),
        (
            {"outcome": "denied", "principal": "alice", "method": "message/send"},
            lambda e: e.outcome == "denied:authorize" and e.method == "message/send",
        ),
        (
            {"auth_reason": "unknown_key"},
            lambda e: "unknown api key" in (e.detail or ""),
        ),
        ({"waf_rule": "managed.sqli.libinjection"}, lambda e: "sqli" in (e.detail or "")),
        ({"waf_rule": "managed.xss.tag"}, lambda e: "xss" in (e.detail or "")),
        ({"guardrail_type": "EMAIL"}, lambda e: "EMAIL" in (e.detail or "")),
        ({"guardrail_type": "NAME"}, lambda e: "NAME" in (e.detail or "")),
        ({"principal": "nobody"}, lambda e: False),
    ],
)
async def test_each_filter(written: Any, filters: dict[str, Any], keep: Any) -> None:
    engine, _, entries = written
    want = expect(entries, keep)
    assert cids(every(engine, AuditFilters(**filters))) == want
    # The same search read from URL query parameters.
    query = AuditFilters(**filters).to_query()
    assert cids(every(engine, AuditFilters.from_query(query), limit=3)) == want


async def test_like_wildcards_in_a_method_prefix_are_literal(written: Any) -> None:
    engine, _, _ = written
    assert every(engine, AuditFilters(method="%*")) == []
    assert every(engine, AuditFilters(method="waf_*")) == []
    assert every(engine, AuditFilters(waf_rule="managed.%")) == []


async def test_pages_walk_every_record_once_and_ignore_newer_ones(written: Any) -> None:
    engine, cp_dir, entries = written
    first = search(engine, AuditFilters(), limit=7)
    assert len(first.rows) == 7 and first.next_cursor
    # Records arriving while the operator pages do not shift the pages already handed out.
    late = [event(1000 + i, "ok", "message/send", "zed", None) for i in range(5)]
    await write(engine, cp_dir, "gamma", late)
    rows, cursor = list(first.rows), first.next_cursor
    while cursor:
        page = search(engine, AuditFilters(), cursor=cursor, limit=7)
        assert len(page.rows) <= 7
        rows += page.rows
        cursor = page.next_cursor
    assert cids(rows) == expect(entries, lambda e: True)
    assert cids(search(engine, AuditFilters(), limit=5).rows) == expect(late, lambda e: True)


async def test_rows_with_the_same_time_are_paged_by_id(db_url: str, tmp_path: Path) -> None:
    engine = shared_engine(db_url)
    same = [event(0, "ok", "m", "p", None) for _ in range(9)]
    for i, e in enumerate(same):
        e.correlation_id = f"same-{i}"
    await write(engine, tmp_path / "cp", "alpha", same)
    got = every(engine, AuditFilters(), limit=2)
    assert [r.seq for r in got] == list(range(9, 0, -1))


async def test_limit_is_capped_and_bad_input_refused(written: Any) -> None:
    engine, _, _ = written
    assert len(search(engine, limit=10_000).rows) == len(trail())  # under the cap of 500
    with pytest.raises(ValueError, match="limit"):
        search(engine, limit=0)
    nan = base64.urlsafe_b64encode(b'[NaN,"1"]').decode()
    bad_cursors = ("", "bm90IGpzb24", encode_cursor(1.0, "abc"), encode_cursor(1.0, "9" * 30), nan)
    for bad in bad_cursors:
        with pytest.raises(ValueError, match="invalid cursor"):
            search(engine, cursor=bad or "!!")


def test_filters_refuse_what_they_cannot_mean() -> None:
    with pytest.raises(ValueError, match="unknown filter 'detail'"):
        AuditFilters.from_query({"detail": "x"})
    with pytest.raises(ValueError, match="since must be epoch seconds"):
        AuditFilters.from_query({"since": "yesterday"})
    with pytest.raises(ValueError, match="finite"):
        AuditFilters.from_query({"until": "nan"})
    with pytest.raises(ValueError, match="auth_reason must be one of"):
        AuditFilters(auth_reason="because")
    with pytest.raises(ValueError, match="non-empty"):
        AuditFilters(principal="")
    with pytest.raises(ValueError, match="non-empty"):
        AuditFilters(principal="x" * 257)
    with pytest.raises(ValueError, match="leave the filter out"):
        AuditFilters(method="*")
    assert AuditFilters.from_query({"cursor": "c", "limit": "5"}) == AuditFilters()


# -- security summary ------------------------------------------------------------------------


async def test_summary_counts_each_chart_and_links_each_bar(written: Any) -> None:
    engine, _, entries = written
    until = entries[-1].ts + 1
    summary = security_summary(engine, T0, until, buckets=4)
    charts = summary.charts
    bars = {name: {b.label: b.count for b in c.bars} for name, c in charts.items()}
    assert bars["auth_failures"] == {
        "missing_credential": 1,
        "unknown_key": 2,
        "revoked": 1,
        "expired": 1,
        "bad_signature": 1,
        "other": 1,
    }
    assert bars["rbac_denials"] == {"alice message/send": 2, "bob tasks/get": 1}
    assert bars["rate_limited"] == {"carol": 2, "dave": 1}
    assert bars["waf_blocks"] == {
        "managed.sqli.libinjection": 2,
        "managed.xss.tag": 1,
        "bot.scanner_user_agent": 1,
    }
    assert charts["waf_blocks"].total == 3  # one block named two rules
    assert bars["guardrail_actions"] == {"ANONYMIZED": 2, "BLOCKED": 1}
    assert bars["guardrail_types"] == {"EMAIL": 2, "PROMPT_ATTACK": 1, "NAME": 1}
    assert len(summary.bucket_starts) == 4
    assert summary.bucket_starts[0] == T0
    for chart in charts.values():
        assert len(chart.series) == 4 and sum(chart.series) == chart.total
        linked = every(engine, chart.filters)
        assert len(linked) == chart.total, chart.name
        for bar in chart.bars:
            assert sum(bar.series) == bar.count
            rows = every(engine, AuditFilters.from_query(bar.filters.to_query()))
            assert len(rows) == bar.count, (chart.name, bar.label)
            # The series puts each record in the bucket of its time.
            width = summary.bucket_seconds
            per = [0] * 4
            for r in rows:
                per[min(int((r.ts - T0) // width), 3)] += 1
            assert per == bar.series, (chart.name, bar.label)
    assert orjson.loads(orjson.dumps(summary.to_dict()))["charts"].keys() == charts.keys()
    assert summary.to_dict()["charts"]["rate_limited"]["bars"][0]["filters"] == {
        "outcome": "denied:rate_limit",
        "principal": "carol",
        "since": repr(T0),
        "until": repr(until),
    }


async def test_summary_keeps_the_top_n_and_counts_the_rest(written: Any) -> None:
    engine, _, entries = written
    summary = security_summary(engine, T0, entries[-1].ts + 1, buckets=1, top=1)
    rbac = summary.charts["rbac_denials"]
    assert [(b.label, b.count) for b in rbac.bars] == [("alice message/send", 2)]
    assert (rbac.total, rbac.other, rbac.series) == (3, 1, [3])


async def test_summary_covers_only_its_range(written: Any) -> None:
    engine, _, entries = written
    auth_times = [e.ts for e in entries if e.outcome == "denied:authenticate"]
    # [since, until): the first record is in, the one at `until` is out.
    summary = security_summary(engine, auth_times[0], auth_times[2], buckets=2)
    assert summary.charts["auth_failures"].total == 2
    assert summary.charts["auth_failures"].series == [1, 1]
    empty = security_summary(engine, T0 - 100, T0 - 1)
    assert all(c.total == 0 and not c.bars for c in empty.charts.values())


def test_summary_refuses_an_empty_range_and_bad_sizes(sqlite_url: str) -> None:
    from bastion.storage.database import migrate

    migrate(sqlite_url)
    engine = shared_engine(sqlite_url)
    with pytest.raises(ValueError, match="until must be after since"):
        security_summary(engine, 10, 10)
    with pytest.raises(ValueError, match="buckets"):
        security_summary(engine, 0, 10, buckets=0)
    with pytest.raises(ValueError, match="buckets"):
        security_summary(engine, 0, 10, buckets=501)
    with pytest.raises(ValueError, match="top"):
        security_summary(engine, 0, 10, top=0)
    with pytest.raises(ValueError, match="finite"):
        security_summary(engine, 0, math.inf)
    with pytest.raises(ValueError, match="finite"):
        security_summary(engine, math.nan, 10)


# -- chain status ----------------------------------------------------------------------------


async def test_chain_status_shows_a_tampered_chain(written: Any) -> None:
    engine, cp_dir, entries = written
    execute(engine, "UPDATE audit_records SET principal = 'x' WHERE chain = 'beta' AND seq = 3")
    status = {s.chain: s for s in chain_status(engine, KEY, cp_dir)}
    alpha, beta = status["alpha"], status["beta"]
    assert (alpha.state, alpha.ok, alpha.head_seq) == ("ok", True, len(entries) // 2)
    assert alpha.last_ts == entries[-2].ts
    assert alpha.records_checked == len(entries) // 2
    assert (beta.state, beta.ok, beta.first_bad_seq) == ("problems", False, 3)
    assert beta.problems[0]["kind"] == "edited"
    assert beta.to_dict()["ok"] is False


async def test_chain_status_within_a_budget(written: Any) -> None:
    engine, cp_dir, entries = written
    ticks = iter(range(100))
    statuses = chain_status(engine, KEY, cp_dir, budget_seconds=0.5, clock=lambda: next(ticks))
    assert [(s.chain, s.state) for s in statuses] == [("alpha", "ok"), ("beta", "unchecked")]
    beta = statuses[1]
    assert (beta.ok, beta.head_seq, beta.last_ts) == (None, len(entries) // 2, entries[-1].ts)
    [only] = chain_status(engine, KEY, cp_dir, chains=["beta"], budget_seconds=0)
    assert only.state == "ok"


async def test_chain_status_reports_a_truncated_chain(written: Any) -> None:
    engine, cp_dir, _ = written
    execute(engine, "DELETE FROM audit_records WHERE chain = 'alpha' AND seq > 5")
    [alpha] = chain_status(engine, KEY, cp_dir, chains=["alpha"])
    assert (alpha.state, alpha.head_seq) == ("problems", 5)
    assert "truncated" in {p["kind"] for p in alpha.problems}


# -- the monitor: incremental checks, full ones on a schedule ---------------------------------


async def test_the_monitor_reads_only_new_records_until_a_full_check_is_due(written: Any) -> None:
    engine, cp_dir, entries = written
    now = [0.0]
    monitor = ChainMonitor(engine, KEY, cp_dir, full_every_seconds=100, clock=lambda: now[0])
    [first] = monitor.status(chains=["alpha"])
    half = len(entries) // 2
    assert (first.state, first.records_checked, first.head_seq) == ("ok", half, half)
    assert first.full_at is not None and first.full_at == first.checked_at
    # An edit to a record already verified is not seen by an incremental check...
    execute(engine, "UPDATE audit_records SET principal = 'x' WHERE chain = 'alpha' AND seq = 2")
    late = [event(500 + i, "ok", "m", "p", None) for i in range(6)]
    await write(engine, cp_dir, "alpha", late)
    now[0] = 50.0
    [second] = monitor.status(chains=["alpha"])
    assert (second.state, second.head_seq) == ("ok", half + 6)
    assert second.records_checked == half + 6 and second.full_at == first.full_at
    # ...but by the next full one.
    now[0] = 150.0
    [third] = monitor.status(chains=["alpha"])
    assert (third.state, third.first_bad_seq) == ("problems", 2)
    assert third.records_checked == half + 6


async def test_the_monitor_sees_new_tampering_at_once_and_keeps_reporting_it(
    written: Any,
) -> None:
    engine, cp_dir, entries = written
    half = len(entries) // 2
    now = [0.0]
    monitor = ChainMonitor(engine, KEY, cp_dir, clock=lambda: now[0])
    assert [s.state for s in monitor.status()] == ["ok", "ok"]
    # The record the next check resumes after is rewritten, and a new one is edited.
    await write(engine, cp_dir, "beta", [event(600 + i, "ok", "m", "p", None) for i in range(4)])
    execute(engine, "UPDATE audit_records SET hash = 'f' WHERE chain = 'beta' AND seq = :s", s=half)
    edit = "UPDATE audit_records SET agent = 'y' WHERE chain = 'beta' AND seq = :s"
    execute(engine, edit, s=half + 2)
    alpha, beta = monitor.status()
    assert alpha.state == "ok"
    assert beta.state == "problems" and beta.first_bad_seq == half
    assert {"edited"} <= {p["kind"] for p in beta.problems}
    # Problems stay reported by the incremental checks that follow.
    _, again = monitor.status()
    assert again.state == "problems" and again.problems_total >= beta.problems_total


async def test_verify_chain_resumes_after_a_verified_record(written: Any) -> None:
    engine, cp_dir, _ = written
    [full] = verify_chain(engine, KEY, cp_dir, "alpha").chains
    [rest] = verify_chain(engine, KEY, cp_dir, "alpha", after=(5, _hash_at(engine, 5))).chains
    assert rest.ok and rest.records_checked == full.records_checked - 5
    assert rest.head_seq == full.head_seq
    [gone] = verify_chain(engine, KEY, cp_dir, "alpha", after=(5, "0" * 64)).chains
    assert (gone.problems[0].kind, gone.first_bad_seq) == ("edited", 5)
    with pytest.raises(ValueError, match="needs the chain"):
        verify_chain(engine, KEY, cp_dir, after=(5, "0" * 64))


def _hash_at(engine: Engine, seq: int) -> str:
    from sqlalchemy import text

    with engine.connect() as conn:
        sql = "SELECT hash FROM audit_records WHERE chain = 'alpha' AND seq = :s"
        return str(conn.execute(text(sql), {"s": seq}).scalar_one())
