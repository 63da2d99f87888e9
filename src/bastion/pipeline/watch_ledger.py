"""The watched folder's ledger: which (path, size, mtime) versions were already submitted.

Table `ingested_files` is the watcher's own (the gateway runs the watcher); it is not part of
the archive, whose tables only the Archivist opens.
"""

from __future__ import annotations

import time
from typing import cast

from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.storage import IngestedFile, write_transaction


class WatchLedger:
    """The watcher's record of submitted files on `engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def was_ingested(self, path: str, size: int, mtime: float) -> str | None:
        """The SHA-256 recorded for this path with this size and mtime, if any."""
        with Session(self.engine) as s:
            return s.scalar(
                select(IngestedFile.sha256)
                .where(
                    IngestedFile.path == path,
                    IngestedFile.size == size,
                    IngestedFile.mtime == mtime,
                )
                .order_by(IngestedFile.id.desc())
                .limit(1)
            )

    def mark_ingested(self, path: str, size: int, mtime: float, sha256: str) -> bool:
        """Remember that `path` with content `sha256` was submitted; False if already known
        (the size and mtime are refreshed)."""
        now = time.time()
        table = cast(Table, IngestedFile.__table__)
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    insert(table),
                    [
                        {
                            "path": path,
                            "size": size,
                            "mtime": mtime,
                            "sha256": sha256,
                            "ingested_at": now,
                        }
                    ],
                )
            return True
        except IntegrityError:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    update(table)
                    .where(table.c.path == path, table.c.sha256 == sha256)
                    .values(size=size, mtime=mtime)
                )
            return False
