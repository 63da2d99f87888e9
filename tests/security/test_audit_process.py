"""The audit writer process: same guarantees as the in-process writer, off the event loop."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bastion.config import AuditSettings
from bastion.security.audit import AuditEntry, AuditIntegrityError, AuditWriterClosed
from bastion.security.audit_process import AuditProcessWriter
from bastion.security.audit_verify import verify_chain
from bastion.storage.database import shared_engine
from bastion.storage.models import AuditRecord

KEY = b"k" * 32


def entry(i: int) -> AuditEntry:
    return AuditEntry(
        ts=1_700_000_000.0 + i,
        principal="admin",
        auth_method="api_key",
        agent="echo",
        method="echo",
        correlation_id=f"corr-{i:06d}",
        outcome="ok",
        status=200,
        latency_ms=0.5,
        client="127.0.0.1:1",
    )


def count(url: str) -> int:
    with Session(shared_engine(url)) as s:
        return int(s.scalar(select(func.count()).select_from(AuditRecord)) or 0)


def writer(url: str, tmp_path: Path, **kw: object) -> AuditProcessWriter:
    settings = AuditSettings(**{"flush_interval_seconds": 0.05, **kw})  # type: ignore[arg-type]
    return AuditProcessWriter(
        url, chain="echo", key=KEY, settings=settings, checkpoint_dir=tmp_path / "cp"
    )


async def test_records_are_committed_and_chained(db_url: str, tmp_path: Path) -> None:
    w = writer(db_url, tmp_path)
    await w.start()
    for i in range(1200):
        await w.record(entry(i))
    await w.close()
    assert w.pending == 0 and w.written == 1200
    assert count(db_url) == 1200
    assert verify_chain(shared_engine(db_url), KEY, tmp_path / "cp").ok
    with pytest.raises(AuditWriterClosed):
        await w.record(entry(0))


async def test_a_killed_writer_process_is_replaced_and_nothing_is_lost(
    sqlite_url: str, tmp_path: Path
) -> None:
    w = writer(sqlite_url, tmp_path)
    await w.start()
    for i in range(300):
        await w.record(entry(i))
    proc = w._proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGKILL)
    for i in range(300, 600):
        await w.record(entry(i))
    await w.close()
    assert w.restarts == 1
    stored = count(sqlite_url)
    # Everything arrives; a batch the dead process had committed but not acknowledged may be
    # written twice, never lost.
    assert stored >= 600
    with Session(shared_engine(sqlite_url)) as s:
        ids = set(s.scalars(select(AuditRecord.correlation_id)))
    assert ids == {f"corr-{i:06d}" for i in range(600)}


async def test_a_full_buffer_makes_callers_wait_not_drop(sqlite_url: str, tmp_path: Path) -> None:
    w = writer(sqlite_url, tmp_path, buffer_size=10, batch_size=5)
    await w.start()
    proc = w._proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGSTOP)  # the writer process stops acknowledging
    try:
        for i in range(10):
            assert w.record_nowait(entry(i))
        assert not w.record_nowait(entry(10))
        waiting = asyncio.create_task(w.record(entry(10)))
        await asyncio.sleep(0.2)
        assert not waiting.done() and w.backpressure_waits == 1
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    await asyncio.wait_for(waiting, 10)
    await w.close()
    assert count(sqlite_url) == 11


async def test_a_tampered_trail_stops_the_writer_at_start(sqlite_url: str, tmp_path: Path) -> None:
    w = writer(sqlite_url, tmp_path)
    await w.start()
    for i in range(5):
        await w.record(entry(i))
    await w.close()
    with Session(shared_engine(sqlite_url)) as s, s.begin():
        s.query(AuditRecord).filter(AuditRecord.seq == 5).delete()
    again = writer(sqlite_url, tmp_path)
    started = time.monotonic()
    with pytest.raises(AuditIntegrityError, match="truncated"):
        await again.start()
    assert time.monotonic() - started < 60
