"""Two replicas of one agent writing audit records to one database (SQLite, and PostgreSQL when
configured): one chain per replica, both verify, a tampered record is found in its own chain."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from bastion.config import AuditSettings, ServerSettings, load_settings
from bastion.security.audit import AuditWriter, audit_chain
from bastion.security.audit_verify import verify_chain
from bastion.security.secrets import resolve
from bastion.storage.database import migrate, shared_engine
from tests.cli.runner import run
from tests.security.test_audit_process import entry

KEY = b"0123456789abcdef0123456789abcdef"
RECORDS = 40


def settings() -> AuditSettings:
    return AuditSettings(batch_size=3, flush_interval_seconds=0.001, checkpoint_every=7)


def test_each_replica_gets_its_own_chain() -> None:
    audit = AuditSettings()
    assert audit_chain("echo", audit) == "echo"
    assert audit_chain("echo", audit, "pod-1") == "echo.pod-1"
    assert audit_chain("echo", AuditSettings(chain="billing"), "b") == "billing.b"
    auto = audit_chain("echo", audit, "auto")
    assert auto.startswith("echo.") and auto.endswith(f"-{os.getpid()}")
    with pytest.raises(ValueError, match=r"server\.replica_id"):
        audit_chain("echo", AuditSettings(chain="x" * 100), "y" * 60)


def test_replica_id_is_validated() -> None:
    assert ServerSettings(replica_id="gw-7.eu").replica_id == "gw-7.eu"
    with pytest.raises(ValueError, match="bad replica_id"):
        ServerSettings(replica_id="../etc")


async def test_two_replicas_interleave_and_each_chain_verifies(db_url: str, tmp_path: Path) -> None:
    engine = shared_engine(db_url)
    checkpoints = tmp_path / "cp"  # one folder for both, as on a shared volume
    chains = [audit_chain("echo", settings(), r) for r in ("a", "b")]
    writers = [
        AuditWriter(engine, chain=c, key=KEY, settings=settings(), checkpoint_dir=checkpoints)
        for c in chains
    ]
    for w in writers:
        await w.start()

    async def write(w: AuditWriter, replica: str) -> None:
        for i in range(RECORDS):
            await w.record(entry(i))
            await asyncio.sleep(0)  # let the other replica in between records

    await asyncio.gather(write(writers[0], "a"), write(writers[1], "b"))
    for w in writers:
        await w.close()
    assert [w.write_errors for w in writers] == [0, 0]

    report = verify_chain(engine, KEY, checkpoints)
    assert report.ok
    by_chain = {c.chain: c for c in report.chains}
    assert sorted(by_chain) == ["echo.a", "echo.b"]
    assert all(c.records_checked == RECORDS and c.head_seq == RECORDS for c in report.chains)
    assert all(c.checkpoints_checked >= RECORDS // 7 for c in report.chains)

    with engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_records SET principal = 'mallory' WHERE chain = :c AND seq = 5"),
            {"c": "echo.b"},
        )
    tampered = {c.chain: c for c in verify_chain(engine, KEY, checkpoints).chains}
    assert tampered["echo.a"].ok
    assert not tampered["echo.b"].ok and tampered["echo.b"].first_bad_seq == 5
    assert [p.kind for p in tampered["echo.b"].problems] == ["edited"]


def test_audit_verify_names_every_chain(tmp_path: Path) -> None:
    config = tmp_path / "bastion.yaml"
    config.write_text(
        "database:\n  url: sqlite:///bastion.db\n"
        'audit:\n  hmac_key: "secret://file/audit.key"\n  checkpoint_dir: "cp"\n',
        encoding="utf-8",
    )
    (tmp_path / "audit.key").write_text(KEY.hex() + "\n", encoding="utf-8")
    loaded = load_settings(config)
    migrate(loaded.database_url())
    engine = shared_engine(loaded.database_url())
    key = resolve(loaded.audit.hmac_key, loaded.base_dir).get_bytes()

    async def write() -> None:
        for replica in ("a", "b"):
            w = AuditWriter(
                engine,
                chain=audit_chain("echo", loaded.audit, replica),
                key=key,
                settings=settings(),
                checkpoint_dir=loaded.path(loaded.audit.checkpoint_dir),
            )
            await w.start()
            for i in range(5):
                await w.record(entry(i))
            await w.close()

    asyncio.run(write())
    result = run("audit", "verify", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "audit trail intact: 2 chains verified (echo.a, echo.b)" in result.output
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE chain = 'echo.a' AND seq = 2"))
    result = run("audit", "verify", "--config", str(config))
    assert result.exit_code == 1
    assert "audit trail NOT intact: echo.a" in result.output
