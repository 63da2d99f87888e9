"""The audit writer process: same guarantees as the in-process writer, off the event loop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import bastion
from bastion.config import AuditSettings
from bastion.core.audit_entry import AuditEntry
from bastion.security.audit import AuditIntegrityError, AuditWriterClosed
from bastion.security.audit_process import AuditProcessWriter
from bastion.security.audit_verify import verify_chain
from bastion.storage.database import shared_engine
from bastion.storage.models import AuditRecord
from tests.runtime.test_supervisor import alive

KEY = b"k" * 32
# Where a script run by a test finds `bastion` and `tests`.
IMPORT_ROOTS = (Path(bastion.__file__).resolve().parents[1], Path(__file__).resolve().parents[2])


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


# An agent's audit writer whose process holds what it receives for a minute (its own flush
# interval) while the agent ships every 10 ms; prints the process's pid once all of argv[2]
# entries are shipped, then waits to be killed.
AGENT = """
import asyncio, sys
from pathlib import Path
from bastion.config import AuditSettings
from tests.security.test_audit_process import KEY, entry
from bastion.security.audit_process import AuditProcessWriter

async def main():
    settings = AuditSettings(flush_interval_seconds=60)
    w = AuditProcessWriter(
        sys.argv[1], chain="echo", key=KEY, settings=settings, checkpoint_dir=Path(sys.argv[3])
    )
    w._interval = 0.01
    await w.start()
    for i in range(int(sys.argv[2])):
        await w.record(entry(i))
    while w._buffer:
        await asyncio.sleep(0.01)
    print(w._proc.pid, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def test_the_writer_process_stops_with_its_agent_and_stores_what_it_received(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A SIGKILLed agent: its audit writer process sees its input end, commits what it holds
    and exits (no orphan left running)."""
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT, sqlite_url, "40", str(tmp_path / "cp")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(map(str, IMPORT_ROOTS))},
    )
    try:
        assert agent.stdout is not None
        child = int(agent.stdout.readline())
        assert count(sqlite_url) == 0  # shipped, held by the writer process
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        deadline = time.monotonic() + 30
        while alive(child):
            assert time.monotonic() < deadline, "the audit writer process outlived its agent"
            time.sleep(0.05)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert count(sqlite_url) == 40
    assert verify_chain(shared_engine(sqlite_url), KEY, tmp_path / "cp").ok
