"""The SQLite database, the queue file and the service logs are their owner's alone."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from sqlalchemy import text

from bastion.runtime.supervisor import ChildSpec, Supervisor
from bastion.storage.database import create_private_file, make_engine
from bastion.storage.queue import SQLiteQueue


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_file_and_its_folder_are_private(tmp_path: Path) -> None:
    database = tmp_path / "data" / "bastion.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    try:
        assert mode(database.parent) == 0o700
        assert mode(database) == 0o600
        sidecars = list(database.parent.glob("bastion.db-*"))
        assert sidecars  # WAL mode: SQLite gives them the database file's mode
        assert all(mode(p) == 0o600 for p in sidecars), sidecars
    finally:
        engine.dispose()


def test_a_new_queue_file_and_its_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "spool" / "queue.db"
    with SQLiteQueue(path) as queue:
        queue.send({"document": "d1"})
        assert mode(path.parent) == 0o700
        assert mode(path) == 0o600
        assert all(mode(p) == 0o600 for p in path.parent.glob("queue.db*")), list(
            path.parent.iterdir()
        )


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.write_bytes(b"")
    path.chmod(0o640)
    create_private_file(path)
    assert mode(path) == 0o640  # not changed behind the owner's back; config check warns


def test_service_logs_are_private(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    quiet = ChildSpec("quiet", [sys.executable, "-c", "import time; time.sleep(60)"])
    with Supervisor([quiet], log_dir=logs, settle_seconds=0.05):
        assert mode(logs) == 0o700
        assert mode(logs / "quiet.log") == 0o600
