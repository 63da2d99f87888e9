"""Reading the audit trail from tests, waiting for the writers' next flush."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.config import Settings
from bastion.storage.database import shared_engine
from bastion.storage.models import AuditRecord


def audit_rows(
    settings: Settings,
    where: Callable[[AuditRecord], bool] = lambda r: True,
    *,
    at_least: int = 1,
    timeout: float = 5.0,
) -> list[AuditRecord]:
    """Audit rows matching `where`, in time order; waits up to `timeout` for `at_least`."""
    engine = shared_engine(settings.database_url())
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as s:
            rows = [
                r
                for r in s.scalars(select(AuditRecord).order_by(AuditRecord.ts, AuditRecord.seq))
                if where(r)
            ]
        if len(rows) >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)
