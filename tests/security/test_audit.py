"""The audit writer: hash chain, batching, backpressure, retries, checkpoints, log lines."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import math
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from bastion.config import AuditSettings
from bastion.core.audit_entry import AuditEntry
from bastion.security.audit import (
    GENESIS_HASH,
    AuditIntegrityError,
    AuditWriter,
    AuditWriterClosed,
    canonical,
    chain_hash,
    checkpoint_ok,
    checkpoint_path,
    make_checkpoint,
    normalize,
    parse_checkpoint,
    read_last_checkpoint,
)
from bastion.security.audit_verify import verify_chain
from bastion.storage.database import shared_engine

KEY = b"0123456789abcdef0123456789abcdef"


def entry(i: int, **over: Any) -> AuditEntry:
    base: dict[str, Any] = {
        "ts": 1_700_000_000.0 + i / 7,
        "principal": f"user-{i % 3}",
        "auth_method": "api_key",
        "agent": "echo",
        "method": "message/send",
        "correlation_id": f"corr-{i:06d}",
        "outcome": "ok",
        "status": 200,
        "latency_ms": 0.1 + i / 3,
        "client": "127.0.0.1:5000",
        "detail": None,
    }
    base.update(over)
    return AuditEntry(**base)


def settings(**over: Any) -> AuditSettings:
    base: dict[str, Any] = {
        "batch_size": 8,
        "flush_interval_seconds": 0.01,
        "buffer_size": 1000,
        "checkpoint_every": 10,
    }
    base.update(over)
    return AuditSettings(**base)


def make_writer(
    engine: Engine, cp_dir: Path, *, chain: str = "echo", key: bytes = KEY, **over: Any
) -> AuditWriter:
    logger = over.pop("logger", None)
    return AuditWriter(
        engine,
        chain=chain,
        key=key,
        settings=settings(**over),
        checkpoint_dir=cp_dir,
        logger=logger,
    )


def rows(engine: Engine, chain: str = "echo") -> list[dict[str, Any]]:
    with engine.connect() as conn:
        res = conn.execute(
            text("SELECT * FROM audit_records WHERE chain = :c ORDER BY seq"), {"c": chain}
        )
        return [dict(r._mapping) for r in res]


@pytest.fixture
def engine(db_url: str) -> Engine:
    return shared_engine(db_url)


# --- pure functions ---------------------------------------------------------------------------


def test_canonical_is_sorted_and_covers_every_field() -> None:
    e = entry(1, detail="why")
    data = orjson.loads(canonical("echo", 5, e))
    assert list(data) == sorted(data)
    assert data["chain"] == "echo" and data["seq"] == 5 and data["detail"] == "why"
    assert set(data) == {"chain", "seq", *AuditEntry.__dataclass_fields__}
    assert canonical("echo", 5, e) == canonical("echo", 5, entry(1, detail="why"))
    assert canonical("echo", 5, e) != canonical("echo", 6, e)


def test_chain_hash_is_hmac_over_prev_and_canonical() -> None:
    import hashlib
    import hmac

    c = canonical("echo", 1, entry(1))
    expected = hmac.new(KEY, GENESIS_HASH.encode() + b"\n" + c, hashlib.sha256).hexdigest()
    assert chain_hash(KEY, GENESIS_HASH, c) == expected


def test_normalize_fits_columns_and_cleans_values() -> None:
    e = normalize(
        entry(
            1,
            principal="p" * 1000,
            method="a\x00b",
            client="\ud800x",
            latency_ms=math.nan,
            ts=-0.0,
            status=70000,
            detail="d" * 10000,
        )
    )
    assert len(e.principal) == 256
    assert e.method == "a\ufffdb"
    assert e.client == "?x"
    assert e.latency_ms == 0.0 and e.ts == 0.0 and math.copysign(1, e.ts) == 1
    assert e.status == 0
    assert e.detail is not None and len(e.detail) == 4096
    assert normalize(e) == e


def test_checkpoint_round_trip_and_mac() -> None:
    cp = make_checkpoint(KEY, "echo", 10, "ab" * 32)
    back = parse_checkpoint(cp.to_line().strip())
    assert back == cp and checkpoint_ok(KEY, back)
    assert not checkpoint_ok(b"another-key-of-32-bytes-........", back)
    forged = parse_checkpoint(cp.to_line().replace(b'"seq":10', b'"seq":11').strip())
    assert not checkpoint_ok(KEY, forged)


def test_writer_rejects_bad_chain_names_and_short_keys(tmp_path: Path) -> None:
    eng = shared_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ValueError, match="chain"):
        make_writer(eng, tmp_path, chain="../etc/passwd")
    with pytest.raises(ValueError, match="key"):
        make_writer(eng, tmp_path, key=b"short")


def test_repr_hides_the_key(tmp_path: Path) -> None:
    eng = shared_engine(f"sqlite:///{tmp_path / 'x.db'}")
    w = make_writer(eng, tmp_path)
    assert KEY.decode() not in repr(w)
    assert KEY.decode() not in str(vars(w).get("_log"))


# --- the writer against real databases --------------------------------------------------------


async def test_chain_written_in_batches_verifies(engine: Engine, tmp_path: Path) -> None:
    w = make_writer(engine, tmp_path, batch_size=7, checkpoint_every=10)
    await w.start()
    for i in range(53):
        await w.record(entry(i))
    await w.close()

    got = rows(engine)
    assert [r["seq"] for r in got] == list(range(1, 54))
    assert got[0]["prev_hash"] == GENESIS_HASH
    for a, b in itertools.pairwise(got):
        assert b["prev_hash"] == a["hash"]
    assert [r["correlation_id"] for r in got] == [f"corr-{i:06d}" for i in range(53)]
    assert w.written == 53 and w.pending == 0 and w.head == (53, got[-1]["hash"])

    lines = checkpoint_path(tmp_path, "echo").read_bytes().splitlines()
    cps = [parse_checkpoint(line) for line in lines]
    assert len(cps) >= 3
    assert all(checkpoint_ok(KEY, cp) for cp in cps)
    assert [cp.seq for cp in cps] == sorted({cp.seq for cp in cps})
    assert cps[-1].seq == 53 and cps[-1].hash == got[-1]["hash"]

    report = verify_chain(engine, KEY, tmp_path)
    assert report.ok, report.to_dict()
    assert report.chains[0].records_checked == 53


async def test_floats_and_cleaned_values_round_trip(engine: Engine, tmp_path: Path) -> None:
    specials = [
        entry(0, ts=time.time(), latency_ms=0.1 + 0.2),
        entry(1, ts=1 / 3, latency_ms=1e-300),
        entry(2, ts=1e16 + 2, latency_ms=-0.0),
        entry(3, ts=float("inf"), latency_ms=math.nan),
        entry(4, ts=5e-324, latency_ms=123456789.123456789),
        entry(5, principal="p" * 300, method="x\x00y", client="\udcff", status=-5),
        entry(6, detail="ünïcødé ✓ 日本語", agent="é" * 64),
        entry(7, ts=1_700_000_000, latency_ms=3),  # ints where floats are expected
    ]
    w = make_writer(engine, tmp_path)
    await w.start()
    for e in specials:
        await w.record(e)
    await w.close()
    got = rows(engine)
    assert len(got) == len(specials)
    for r, e in zip(got, specials, strict=True):
        n = normalize(e)
        assert r["ts"] == n.ts and r["latency_ms"] == n.latency_ms
        assert r["principal"] == n.principal and r["client"] == n.client
    report = verify_chain(engine, KEY, tmp_path)
    assert report.ok, report.to_dict()


async def test_backpressure_waits_and_loses_nothing(engine: Engine, tmp_path: Path) -> None:
    w = make_writer(engine, tmp_path, buffer_size=4, batch_size=2, flush_interval_seconds=0.005)
    real_insert = w._insert

    def slow_insert(batch: list[dict[str, Any]]) -> None:
        time.sleep(0.02)
        real_insert(batch)

    w._insert = slow_insert  # type: ignore[method-assign]
    await w.start()
    peak = 0
    for i in range(20):
        await w.record(entry(i))
        peak = max(peak, w.pending)
    # Concurrent callers are served first come, first served.
    await asyncio.gather(*(w.record(entry(i)) for i in range(20, 40)))
    peak = max(peak, w.pending)
    await w.close()

    assert peak <= 4
    assert w.backpressure_waits > 0
    got = rows(engine)
    assert len(got) == 40 and w.written == 40
    assert [r["correlation_id"] for r in got] == [f"corr-{i:06d}" for i in range(40)]
    assert verify_chain(engine, KEY, tmp_path).ok


async def test_record_nowait_reports_a_full_buffer(engine: Engine, tmp_path: Path) -> None:
    gate = threading.Event()
    w = make_writer(engine, tmp_path, buffer_size=2, batch_size=1)
    real_insert = w._insert

    def gated_insert(batch: list[dict[str, Any]]) -> None:
        gate.wait(10)
        real_insert(batch)

    w._insert = gated_insert  # type: ignore[method-assign]
    # A write that blocks while requests keep arriving: the threaded (network database) path.
    w._inline = False
    await w.start()
    assert w.record_nowait(entry(0)) and w.record_nowait(entry(1))
    assert not w.record_nowait(entry(2))
    assert w.pending == 2
    gate.set()
    await w.close()
    assert len(rows(engine)) == 2


async def test_cancelled_wait_still_records(engine: Engine, tmp_path: Path) -> None:
    gate = threading.Event()
    w = make_writer(engine, tmp_path, buffer_size=1, batch_size=1)
    real_insert = w._insert

    def gated_insert(batch: list[dict[str, Any]]) -> None:
        gate.wait(10)
        real_insert(batch)

    w._insert = gated_insert  # type: ignore[method-assign]
    # A write that blocks while requests keep arriving: the threaded (network database) path.
    w._inline = False
    await w.start()
    await w.record(entry(0))
    waiting = asyncio.create_task(w.record(entry(1)))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.set()
    await w.close()
    assert [r["correlation_id"] for r in rows(engine)] == ["corr-000000", "corr-000001"]


async def test_close_flushes_everything(engine: Engine, tmp_path: Path) -> None:
    w = make_writer(engine, tmp_path, batch_size=1000, flush_interval_seconds=60)
    await w.start()
    for i in range(25):
        await w.record(entry(i))
    await asyncio.sleep(0.05)
    assert w.pending == 25 and rows(engine) == []
    await w.close()
    assert len(rows(engine)) == 25 and w.pending == 0
    last = read_last_checkpoint(checkpoint_path(tmp_path, "echo"))
    assert last is not None and last.seq == 25
    with pytest.raises(AuditWriterClosed):
        await w.record(entry(99))
    await w.close()  # idempotent


async def test_record_before_start_is_refused(engine: Engine, tmp_path: Path) -> None:
    w = make_writer(engine, tmp_path)
    with pytest.raises(AuditWriterClosed):
        await w.record(entry(0))
    with pytest.raises(AuditWriterClosed):
        w.record_nowait(entry(0))


async def test_restart_continues_the_chain(engine: Engine, tmp_path: Path) -> None:
    first = make_writer(engine, tmp_path)
    await first.start()
    for i in range(10):
        await first.record(entry(i))
    await first.close()
    head = first.head

    second = make_writer(engine, tmp_path)
    await second.start()
    assert second.head == head
    for i in range(10, 15):
        await second.record(entry(i))
    await second.close()

    got = rows(engine)
    assert [r["seq"] for r in got] == list(range(1, 16))
    assert got[10]["prev_hash"] == got[9]["hash"] == head[1]
    assert verify_chain(engine, KEY, tmp_path).ok


async def test_write_failure_is_retried_without_loss(engine: Engine, tmp_path: Path) -> None:
    buf = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(file=buf), processors=[structlog.processors.JSONRenderer()]
    )
    w = make_writer(engine, tmp_path, batch_size=5, logger=logger)
    w.retry_base_seconds = 0.01
    real_insert = w._insert
    failures = {"left": 3}

    def flaky_insert(batch: list[dict[str, Any]]) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("database is unavailable"))
        real_insert(batch)

    w._insert = flaky_insert  # type: ignore[method-assign]
    await w.start()
    for i in range(20):
        await w.record(entry(i))
    await w.close()

    assert w.write_errors == 3
    assert len(rows(engine)) == 20 and w.written == 20
    assert verify_chain(engine, KEY, tmp_path).ok
    errors = [json.loads(x) for x in buf.getvalue().splitlines()]
    errors = [x for x in errors if x["event"] == "audit_write_failed"]
    assert len(errors) == 3
    assert "database is unavailable" in errors[0]["error"]


async def test_commit_reported_as_failed_is_not_duplicated(engine: Engine, tmp_path: Path) -> None:
    w = make_writer(engine, tmp_path, batch_size=4)
    w.retry_base_seconds = 0.01
    real_insert = w._insert
    once = {"left": 1}

    def commit_then_fail(batch: list[dict[str, Any]]) -> None:
        real_insert(batch)
        if once["left"]:
            once["left"] -= 1
            raise OperationalError("COMMIT", {}, Exception("connection lost"))

    w._insert = commit_then_fail  # type: ignore[method-assign]
    await w.start()
    for i in range(12):
        await w.record(entry(i))
    await w.close()
    assert [r["seq"] for r in rows(engine)] == list(range(1, 13))
    assert w.written == 12 and w.write_errors == 1
    assert verify_chain(engine, KEY, tmp_path).ok


async def test_two_writers_on_one_chain_do_not_fork_it(engine: Engine, tmp_path: Path) -> None:
    a = make_writer(engine, tmp_path / "a", batch_size=3)
    b = make_writer(engine, tmp_path / "b", batch_size=3)
    a.retry_base_seconds = b.retry_base_seconds = 0.005
    await a.start()
    await b.start()
    for i in range(15):
        await a.record(entry(i))
        await b.record(entry(100 + i))
    await a.close()
    await b.close()
    got = rows(engine)
    assert len(got) == 30
    assert [r["seq"] for r in got] == list(range(1, 31))
    assert verify_chain(engine, KEY, tmp_path / "a").ok
    assert verify_chain(engine, KEY, tmp_path / "b").ok


async def test_close_timeout_reports_unwritten_records(engine: Engine, tmp_path: Path) -> None:
    buf = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(file=buf), processors=[structlog.processors.JSONRenderer()]
    )
    w = make_writer(engine, tmp_path, logger=logger)
    w.retry_base_seconds = 0.01

    def down(batch: list[dict[str, Any]]) -> None:
        raise OperationalError("INSERT", {}, Exception("down"))

    w._insert = down  # type: ignore[method-assign]
    await w.start()
    for i in range(3):
        await w.record(entry(i))
    with pytest.raises(TimeoutError):
        await w.close(timeout=0.2)
    events = [json.loads(x) for x in buf.getvalue().splitlines()]
    timeout = [x for x in events if x["event"] == "audit_close_timeout"]
    assert timeout and timeout[0]["unwritten"] == 3


async def test_each_record_is_logged_as_a_json_line(engine: Engine, tmp_path: Path) -> None:
    buf = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(file=buf), processors=[structlog.processors.JSONRenderer()]
    )
    w = make_writer(engine, tmp_path, batch_size=2, logger=logger)
    await w.start()
    for i in range(5):
        await w.record(entry(i, detail=f"d{i}"))
    await w.close()
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    audit = [x for x in lines if x["event"] == "audit"]
    assert [x["correlation_id"] for x in audit] == [f"corr-{i:06d}" for i in range(5)]
    assert [x["seq"] for x in audit] == [1, 2, 3, 4, 5]
    stored = rows(engine)
    for line, row in zip(audit, stored, strict=True):
        assert line["hash"] == row["hash"]
        for name in AuditEntry.__dataclass_fields__:
            assert line[name] == row[name]


async def test_default_logger_goes_through_structlog(engine: Engine, tmp_path: Path) -> None:
    w = make_writer(engine, tmp_path)
    with structlog.testing.capture_logs() as captured:
        await w.start()
        await w.record(entry(1))
        await w.close()
    audit = [x for x in captured if x["event"] == "audit"]
    assert len(audit) == 1 and audit[0]["correlation_id"] == "corr-000001"


async def test_start_refuses_a_truncated_trail(engine: Engine, tmp_path: Path) -> None:
    w = make_writer(engine, tmp_path)
    await w.start()
    for i in range(20):
        await w.record(entry(i))
    await w.close()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE seq > 5"))
    again = make_writer(engine, tmp_path)
    with pytest.raises(AuditIntegrityError, match="truncated"):
        await again.start()


async def test_start_refuses_a_forged_checkpoint(engine: Engine, tmp_path: Path) -> None:
    w = make_writer(engine, tmp_path)
    await w.start()
    for i in range(5):
        await w.record(entry(i))
    await w.close()
    path = checkpoint_path(tmp_path, "echo")
    cp = parse_checkpoint(path.read_bytes().splitlines()[-1])
    forged = make_checkpoint(b"not-the-audit-key-but-long-enough", "echo", cp.seq, cp.hash)
    with path.open("ab") as fh:
        fh.write(forged.to_line())
    again = make_writer(engine, tmp_path)
    with pytest.raises(AuditIntegrityError, match="does not verify"):
        await again.start()
