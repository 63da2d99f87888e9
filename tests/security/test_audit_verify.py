"""Audit verification catches every kind of tampering; `tail` reads records back."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text

from bastion.config import AuditSettings
from bastion.core.audit_entry import AuditEntry
from bastion.security.audit import (
    GENESIS_HASH,
    AuditWriter,
    canonical,
    chain_hash,
    chain_message,
    checkpoint_path,
    entry_from_row,
    make_checkpoint,
    parse_checkpoint,
)
from bastion.security.audit_verify import chain_names, correlation_ids, tail, verify_chain
from bastion.storage.database import shared_engine

KEY = b"0123456789abcdef0123456789abcdef"
OTHER_KEY = b"fedcba9876543210fedcba9876543210"


def entry(i: int, **over: Any) -> AuditEntry:
    base: dict[str, Any] = {
        "ts": 1_700_000_000.0 + i * 0.25,
        "principal": f"user-{i % 3}",
        "auth_method": "api_key",
        "agent": "echo",
        "method": "message/send",
        "correlation_id": f"corr-{i // 2:06d}",
        "outcome": "ok",
        "status": 200,
        "latency_ms": 1.5 + i,
        "client": "127.0.0.1:5000",
        "detail": None,
    }
    base.update(over)
    return AuditEntry(**base)


async def write_entries(
    engine: Engine, cp_dir: Path, chain: str, entries: list[AuditEntry], *, every: int = 20
) -> None:
    """Write `entries` through a real writer, a checkpoint every `every` records."""
    w = AuditWriter(
        engine,
        chain=chain,
        key=KEY,
        settings=AuditSettings(batch_size=16, flush_interval_seconds=0.01, checkpoint_every=every),
        checkpoint_dir=cp_dir,
    )
    await w.start()
    for e in entries:
        await w.record(e)
    await w.close()


async def write_chain(
    engine: Engine, cp_dir: Path, chain: str = "alpha", n: int = 60, start: int = 0
) -> None:
    await write_entries(engine, cp_dir, chain, [entry(i) for i in range(start, start + n)])


def execute(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def kinds(report: Any) -> set[str]:
    return {p.kind for c in report.chains for p in c.problems}


def rewrite_hashes(engine: Engine, chain: str, hasher: Any) -> None:
    """Recompute every hash of a chain with `hasher(prev_hash, canonical) -> hex`."""
    with engine.begin() as conn:
        rows = conn.execute(
            text("SELECT * FROM audit_records WHERE chain = :c ORDER BY seq"), {"c": chain}
        ).all()
        prev = GENESIS_HASH
        for row in rows:
            h = hasher(prev, canonical(chain, row.seq, entry_from_row(row)))
            conn.execute(
                text("UPDATE audit_records SET prev_hash = :p, hash = :h WHERE id = :id"),
                {"p": prev, "h": h, "id": row.id},
            )
            prev = h


@pytest.fixture
def engine(db_url: str) -> Engine:
    return shared_engine(db_url)


async def test_intact_chain_verifies(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    report = verify_chain(engine, KEY, tmp_path)
    assert report.ok, report.to_dict()
    (c,) = report.chains
    assert (c.chain, c.records_checked, c.head_seq) == ("alpha", 60, 60)
    assert c.checkpoints_checked >= 2 and c.last_checkpoint_seq == 60
    assert c.first_bad_seq is None and c.problems == []


async def test_small_pages_stream_the_same_result(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    report = verify_chain(engine, KEY, tmp_path, page_size=7)
    assert report.ok and report.chains[0].records_checked == 60
    execute(engine, "UPDATE audit_records SET status = 500 WHERE seq = 36")
    bad = verify_chain(engine, KEY, tmp_path, page_size=7)
    assert bad.chains[0].first_bad_seq == 36


async def test_edited_record_is_caught(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    execute(engine, "UPDATE audit_records SET outcome = 'denied:authorize' WHERE seq = 17")
    report = verify_chain(engine, KEY, tmp_path)
    assert not report.ok
    (c,) = report.chains
    assert kinds(report) == {"edited"}
    assert c.first_bad_seq == 17 and c.problems_total == 1
    assert "record 17 was edited" in c.problems[0].message


async def test_edited_float_is_caught(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    execute(engine, "UPDATE audit_records SET ts = ts + 0.000001 WHERE seq = 3")
    report = verify_chain(engine, KEY, tmp_path)
    assert kinds(report) == {"edited"} and report.chains[0].first_bad_seq == 3


async def test_edited_and_rehashed_record_is_caught(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    with engine.begin() as conn:
        row = conn.execute(text("SELECT * FROM audit_records WHERE seq = 9")).one()
        e = entry_from_row(row)
        e.principal = "someone-else"
        h = hashlib.sha256(chain_message(row.prev_hash, canonical("alpha", 9, e))).hexdigest()
        conn.execute(
            text("UPDATE audit_records SET principal = :p, hash = :h WHERE seq = 9"),
            {"p": e.principal, "h": h},
        )
    report = verify_chain(engine, KEY, tmp_path)
    assert {"edited", "deleted"} <= kinds(report)
    c = report.chains[0]
    assert c.first_bad_seq == 9
    assert "plain SHA-256" in c.problems[0].message


async def test_deleted_middle_record_is_caught(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    execute(engine, "DELETE FROM audit_records WHERE seq = 30")
    report = verify_chain(engine, KEY, tmp_path)
    c = report.chains[0]
    assert "deleted" in kinds(report)
    assert c.first_bad_seq == 30
    assert "record 30 missing" in c.problems[0].message


async def test_deleted_and_renumbered_record_is_caught(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    execute(engine, "DELETE FROM audit_records WHERE seq = 30")
    execute(engine, "UPDATE audit_records SET seq = seq - 1 WHERE seq = 31")
    report = verify_chain(engine, KEY, tmp_path)
    assert not report.ok and report.chains[0].first_bad_seq == 30
    assert {"deleted", "edited"} <= kinds(report)


async def test_truncated_tail_is_caught(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    execute(engine, "DELETE FROM audit_records WHERE seq > 45")
    report = verify_chain(engine, KEY, tmp_path)
    c = report.chains[0]
    assert kinds(report) == {"truncated"}
    assert c.head_seq == 45 and c.first_bad_seq == 46
    assert "truncated tail" in c.problems[0].message


async def test_truncated_and_regrown_tail_is_caught(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    execute(engine, "DELETE FROM audit_records WHERE seq > 45")
    # An attacker fills the gap with records hashed without the key.
    with engine.begin() as conn:
        prev = conn.execute(text("SELECT hash FROM audit_records WHERE seq = 45")).scalar_one()
        for seq in range(46, 61):
            e = entry(seq)
            h = hashlib.sha256(chain_message(prev, canonical("alpha", seq, e))).hexdigest()
            conn.execute(
                text(
                    "INSERT INTO audit_records (chain, seq, ts, principal, auth_method, agent,"
                    " method, correlation_id, outcome, status, latency_ms, client, detail,"
                    " prev_hash, hash) VALUES ('alpha', :seq, :ts, :principal, :auth_method,"
                    " :agent, :method, :correlation_id, :outcome, :status, :latency_ms,"
                    " :client, :detail, :prev, :h)"
                ),
                {"seq": seq, "prev": prev, "h": h, **{k: getattr(e, k) for k in e.__slots__}},
            )
            prev = h
    report = verify_chain(engine, KEY, tmp_path)
    assert {"edited", "checkpoint_mismatch"} <= kinds(report)
    assert report.chains[0].first_bad_seq == 46


async def test_chain_recomputed_with_plain_sha256_is_caught(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    rewrite_hashes(
        engine, "alpha", lambda prev, c: hashlib.sha256(chain_message(prev, c)).hexdigest()
    )
    report = verify_chain(engine, KEY, tmp_path)
    c = report.chains[0]
    assert "key_mismatch" in kinds(report) and c.first_bad_seq == 1
    key_problem = next(p for p in c.problems if p.kind == "key_mismatch")
    assert "plain SHA-256" in key_problem.message and "60" in key_problem.message


async def test_chain_recomputed_with_another_key_is_caught(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    rewrite_hashes(engine, "alpha", lambda prev, c: chain_hash(OTHER_KEY, prev, c))
    report = verify_chain(engine, KEY, tmp_path)
    assert {"key_mismatch", "checkpoint_mismatch"} <= kinds(report)
    assert report.chains[0].first_bad_seq == 1
    # The same chain with the forger's key: records verify, our checkpoints do not.
    assert not verify_chain(engine, OTHER_KEY, tmp_path).ok


async def test_wrong_key_fails(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    report = verify_chain(engine, OTHER_KEY, tmp_path)
    assert {"key_mismatch", "checkpoint_forged"} <= kinds(report)


async def test_edited_checkpoint_is_caught(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    path = checkpoint_path(tmp_path, "alpha")
    lines = path.read_bytes().splitlines()
    data = orjson.loads(lines[0])
    data["seq"] = 1000
    lines[0] = orjson.dumps(data)
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = verify_chain(engine, KEY, tmp_path)
    c = report.chains[0]
    assert kinds(report) == {"checkpoint_forged"}
    assert "checkpoint line 1" in c.problems[0].message


async def test_forged_checkpoint_is_caught(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    path = checkpoint_path(tmp_path, "alpha")
    forged = make_checkpoint(OTHER_KEY, "alpha", 80, "ab" * 32)
    with path.open("ab") as fh:
        fh.write(forged.to_line())
        fh.write(b"not json\n")
    report = verify_chain(engine, KEY, tmp_path)
    assert kinds(report) == {"checkpoint_forged"}
    assert report.chains[0].problems_total == 2


async def test_checkpoint_copied_from_another_chain_is_caught(
    engine: Engine, tmp_path: Path
) -> None:
    await write_chain(engine, tmp_path, "alpha")
    await write_chain(engine, tmp_path, "beta", n=10)
    beta = checkpoint_path(tmp_path, "beta").read_bytes()
    with checkpoint_path(tmp_path, "alpha").open("ab") as fh:
        fh.write(beta)
    report = verify_chain(engine, KEY, tmp_path, "alpha")
    assert kinds(report) == {"checkpoint_forged"}


async def test_torn_last_checkpoint_line_is_only_a_warning(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path)
    path = checkpoint_path(tmp_path, "alpha")
    with path.open("ab") as fh:
        fh.write(b'{"chain":"alpha","se')
    report = verify_chain(engine, KEY, tmp_path)
    assert report.ok
    assert "torn" in report.chains[0].warnings[0]


async def test_every_chain_is_verified_separately(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path, "alpha", n=20)
    await write_chain(engine, tmp_path, "beta", n=20)
    execute(engine, "UPDATE audit_records SET client = 'x' WHERE chain = 'beta' AND seq = 4")
    report = verify_chain(engine, KEY, tmp_path)
    by_name = {c.chain: c for c in report.chains}
    assert set(by_name) == {"alpha", "beta"}
    assert by_name["alpha"].ok and not by_name["beta"].ok
    assert by_name["beta"].first_bad_seq == 4
    assert verify_chain(engine, KEY, tmp_path, "alpha").ok


async def test_chain_with_only_checkpoints_is_truncated(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path, n=25)
    execute(engine, "DELETE FROM audit_records")
    report = verify_chain(engine, KEY, tmp_path)
    assert [c.chain for c in report.chains] == ["alpha"]
    assert kinds(report) == {"truncated"}


async def test_unknown_chain_is_a_problem_and_empty_store_is_ok(
    engine: Engine, tmp_path: Path
) -> None:
    assert verify_chain(engine, KEY, tmp_path).chains == []
    report = verify_chain(engine, KEY, tmp_path, "nope")
    assert not report.ok and kinds(report) == {"missing"}


async def test_report_serialises(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path, n=5)
    data = orjson.loads(orjson.dumps(verify_chain(engine, KEY, tmp_path).to_dict()))
    assert data["ok"] is True and data["chains"][0]["head_seq"] == 5
    assert KEY.decode() not in orjson.dumps(data).decode()


async def test_tail_orders_and_filters(engine: Engine, tmp_path: Path) -> None:
    await write_chain(engine, tmp_path, "alpha", n=10)
    await write_chain(engine, tmp_path, "beta", n=10, start=10)

    newest = tail(engine, limit=5)
    assert [(r["chain"], r["seq"]) for r in newest] == [("beta", s) for s in (10, 9, 8, 7, 6)]
    assert "prev_hash" not in newest[0] and "id" not in newest[0]
    assert {"correlation_id", "hash", "ts", "outcome"} <= set(newest[0])

    # entry(i) gives records i and i+1 (i even) the same correlation id.
    hops = tail(engine, correlation_id="corr-000002")
    assert [r["seq"] for r in hops] == [5, 6]
    assert hops[0]["ts"] < hops[1]["ts"]

    mine = tail(engine, principal="user-1", limit=100)
    assert mine and {r["principal"] for r in mine} == {"user-1"}
    assert len(mine) == len([i for i in range(20) if i % 3 == 1])

    only_alpha = tail(engine, chain="alpha", limit=100)
    assert {r["chain"] for r in only_alpha} == {"alpha"} and len(only_alpha) == 10

    with pytest.raises(ValueError):
        tail(engine, limit=0)


def test_parse_checkpoint_rejects_garbage() -> None:
    for bad in (b"[]", b"{}", b'{"chain":"a","seq":true,"hash":"x","ts":1,"mac":"m"}', b"x"):
        with pytest.raises(ValueError):
            parse_checkpoint(bad)


async def test_correlation_ids_by_prefix_and_chain_names(db_url: str, tmp_path: Path) -> None:
    engine = shared_engine(db_url)
    await write_chain(engine, tmp_path, "alpha", n=6)
    await write_chain(engine, tmp_path, "beta", n=2, start=6)
    assert correlation_ids(engine, "corr-00000") == [f"corr-{i:06d}" for i in range(4)]
    assert correlation_ids(engine, "corr-000001") == ["corr-000001"]
    assert correlation_ids(engine, "corr-000001", limit=1) == ["corr-000001"]
    # LIKE wildcards are literal characters of the prefix.
    assert correlation_ids(engine, "corr_") == correlation_ids(engine, "%") == []
    assert correlation_ids(engine, "corr-0000_1") == []
    assert chain_names(engine, tmp_path) == ["alpha", "beta"]
