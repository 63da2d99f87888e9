"""The audit hash chains' verification for the Audit view, within a time budget.

`ChainWatch` holds one `ChainMonitor` (`bastion.security`) for the gateway's lifetime, created
on first use (reading the audit key), so later checks only verify the records added since. A
check runs in a thread with `budget_seconds`; the page waits `wait_seconds` at most: past that
the check goes on in the background (the next page shows its result) and the page shows each
chain's head with its last known state, or `unchecked`. One check runs at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog

from bastion.config import Settings
from bastion.security import (
    AuditFilters,
    ChainMonitor,
    ChainStatus,
    SecretError,
    chain_names,
    resolve,
    search,
)
from bastion.storage import shared_engine

log = structlog.get_logger("bastion.console")

BUDGET_SECONDS = 2.0
WAIT_SECONDS = 3.0
STILL_RUNNING = "The verification is still running: reload the page in a moment for its result."
NO_KEY = "The chains cannot be verified: the audit key (audit.hmac_key) cannot be read."
FAILED = "The chains cannot be verified now: the audit trail cannot be read. Reload to retry."


@dataclass(frozen=True, slots=True)
class ChainsShown:
    """What the page shows: each chain's status, and why they may be incomplete."""

    chains: list[ChainStatus]
    note: str | None = None


def monitor_for(settings: Settings) -> ChainMonitor:
    """A monitor of the settings' database, with its audit key and checkpoint folder
    (`SecretError` when the key cannot be read). Blocking."""
    key = resolve(settings.audit.hmac_key, settings.base_dir, settings.secrets).get_bytes()
    engine = shared_engine(settings.database_url())
    return ChainMonitor(engine, key, settings.path(settings.audit.checkpoint_dir))


class ChainWatch:
    """The gateway's chain monitor, checked within a budget (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        budget_seconds: float = BUDGET_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
        make_monitor: Callable[[Settings], ChainMonitor] = monitor_for,
    ) -> None:
        self._settings = settings
        self._budget = budget_seconds
        self._wait = wait_seconds
        self._make = make_monitor
        self._monitor: ChainMonitor | None = None
        self._running: asyncio.Task[list[ChainStatus]] | None = None
        self._last: dict[str, ChainStatus] = {}

    async def status(self) -> ChainsShown:
        """Every chain's status, waiting `wait_seconds` at most."""
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(asyncio.to_thread(self._check))
            self._running.add_done_callback(_retrieve)
        try:
            try:
                found = await asyncio.wait_for(asyncio.shield(self._running), self._wait)
            except TimeoutError:
                return ChainsShown(await asyncio.to_thread(self._heads), STILL_RUNNING)
        except SecretError:
            return ChainsShown([], NO_KEY)
        except Exception:
            log.exception("audit chain verification failed")
            return ChainsShown([], FAILED)
        self._last = {s.chain: s for s in found}
        return ChainsShown(found)

    def _check(self) -> list[ChainStatus]:
        if self._monitor is None:
            self._monitor = self._make(self._settings)
        return self._monitor.status(budget_seconds=self._budget)

    def _heads(self) -> list[ChainStatus]:
        """Each chain's newest record with its last known state (or `unchecked`)."""
        settings = self._settings
        engine = shared_engine(settings.database_url())
        out: list[ChainStatus] = []
        for name in chain_names(engine, settings.path(settings.audit.checkpoint_dir)):
            rows = search(engine, AuditFilters(chain=name), limit=1).rows
            seq, ts = (rows[0].seq, rows[0].ts) if rows else (0, None)
            known = self._last.get(name)
            if known is None:
                out.append(ChainStatus(name, "unchecked", seq, ts))
            else:
                out.append(replace(known, head_seq=max(seq, known.head_seq), last_ts=ts))
        return out


def _retrieve(task: asyncio.Task[list[ChainStatus]]) -> None:
    """Collect the outcome of a check nobody waits for any more (no "never retrieved")."""
    if not task.cancelled():
        task.exception()
