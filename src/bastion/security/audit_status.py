"""The state of each audit hash chain for the console: head, last record, verified or not.

Every call reads each chain's head (seq and time of its last record) with one indexed query,
then verifies chains with `audit_verify.verify_chain`, one at a time in name order, while its
time budget lasts; the chains left over keep their last result, or are `unchecked` when they
have none. The first chain of a call is always checked, so a call can overrun its budget by the
time one check takes: a full verification costs one to three seconds per 100k records (SQLite
or PostgreSQL).

- `chain_status(engine, key, checkpoint_dir)`: a one-off, every chain verified in full.
- `ChainMonitor`, for a console that polls: the first check of a chain is full, later ones read
  only the records added since (`verify_chain(after=...)`, milliseconds), and each chain is
  verified in full again every `full_every_seconds` (default: hourly), which is when an edit to
  an already verified record shows. Problems found stay reported until a full verification
  finds the chain intact.
- `chain_status_for(settings)`: `chain_status` with the settings' database, key and folder.

Only the checkpoint files in this host's folder are read: a chain written on another host is
verified record by record, without its checkpoints (a cut-off tail goes unnoticed there).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, func, select, tuple_

from bastion.config import Settings
from bastion.security.audit_verify import MAX_PROBLEMS, ChainReport, chain_names, verify_chain
from bastion.security.secrets import resolve
from bastion.storage import AuditRecord, shared_engine

__all__ = ["ChainMonitor", "ChainStatus", "chain_status", "chain_status_for"]

State = Literal["ok", "problems", "unchecked"]


@dataclass(slots=True)
class ChainStatus:
    """One chain: `state` is `ok`, `problems` (see `problems`) or `unchecked` (never checked
    within a budget). `checked_at` (epoch seconds) is when the result was last brought up to
    date, `full_at` when the chain was last verified from seq 1."""

    chain: str
    state: State
    head_seq: int
    last_ts: float | None
    records_checked: int = 0
    problems_total: int = 0
    first_bad_seq: int | None = None
    message: str = "not verified yet: out of time budget"
    problems: list[dict[str, Any]] = field(default_factory=list)
    checked_at: float | None = None
    full_at: float | None = None

    @property
    def ok(self) -> bool | None:
        """True or False once verified; None when unchecked."""
        return None if self.state == "unchecked" else self.state == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def chain_heads(engine: Engine) -> dict[str, tuple[int, float]]:
    """(head seq, time of the head record) of every chain with records."""
    r = AuditRecord
    heads = select(r.chain, func.max(r.seq)).group_by(r.chain)
    stmt = select(r.chain, r.seq, r.ts).where(tuple_(r.chain, r.seq).in_(heads.scalar_subquery()))
    with engine.connect() as conn:
        return {str(c): (int(s), float(t)) for c, s, t in conn.execute(stmt)}


@dataclass(slots=True)
class _Progress:
    """How far a chain is verified: record `seq` with hash `hash`, and the result so far."""

    seq: int
    hash: str | None
    full_at: float
    status: ChainStatus


class ChainMonitor:
    """Keeps every chain's verification current at a small cost per call (module docstring)."""

    def __init__(
        self,
        engine: Engine,
        key: bytes,
        checkpoint_dir: Path,
        *,
        full_every_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._key = key
        self._dir = checkpoint_dir
        self._full_every = full_every_seconds
        self._clock = clock
        self._progress: dict[str, _Progress] = {}
        self._lock = threading.Lock()

    def status(
        self, *, chains: Iterable[str] | None = None, budget_seconds: float = 5.0
    ) -> list[ChainStatus]:
        """The status of `chains` (default: every chain in the database or checkpoint folder),
        checking them while `budget_seconds` lasts. Blocking: call it from a thread."""
        with self._lock:
            heads = chain_heads(self._engine)
            names = list(chains) if chains is not None else chain_names(self._engine, self._dir)
            deadline = self._clock() + budget_seconds
            out: list[ChainStatus] = []
            for i, name in enumerate(names):
                head_seq, last_ts = heads.get(name, (0, None))
                if i == 0 or self._clock() < deadline:
                    self._check(name)
                known = self._progress.get(name)
                status = known.status if known else ChainStatus(name, "unchecked", head_seq, None)
                head = max(head_seq, status.head_seq)
                problems = list(status.problems)  # a copy: later checks extend the original
                out.append(replace(status, head_seq=head, last_ts=last_ts, problems=problems))
            return out

    def _check(self, name: str) -> None:
        now = self._clock()
        known = self._progress.get(name)
        full = known is None or now - known.full_at >= self._full_every or known.hash is None
        after = None if full or known is None else (known.seq, known.hash or "")
        [rep] = verify_chain(self._engine, self._key, self._dir, name, after=after).chains
        if full or known is None:
            status = _from_report(rep, now=time.time())
            status.full_at = status.checked_at
            self._progress[name] = _Progress(rep.head_seq, rep.head_hash, now, status)
            return
        status = known.status
        status.records_checked += rep.records_checked
        status.checked_at = time.time()
        if not rep.ok:
            _add_problems(status, rep)
        known.seq, known.hash = rep.head_seq, rep.head_hash


def _from_report(rep: ChainReport, *, now: float) -> ChainStatus:
    status = ChainStatus(rep.chain, "ok", rep.head_seq, None, message=rep.message, checked_at=now)
    status.records_checked = rep.records_checked
    if not rep.ok:
        status.problems_total = 0
        _add_problems(status, rep)
    return status


def _add_problems(status: ChainStatus, rep: ChainReport) -> None:
    status.state = "problems"
    status.problems_total += rep.problems_total
    status.problems = (status.problems + [p.to_dict() for p in rep.problems])[:MAX_PROBLEMS]
    if rep.first_bad_seq is not None:
        first = status.first_bad_seq
        status.first_bad_seq = rep.first_bad_seq if first is None else min(first, rep.first_bad_seq)
    status.message = (
        f"{status.problems_total} problem(s), first bad seq {status.first_bad_seq}: "
        + (status.problems[0]["message"] if status.problems else "see problems")
    )


def chain_status(
    engine: Engine,
    key: bytes,
    checkpoint_dir: Path,
    *,
    chains: Iterable[str] | None = None,
    budget_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> list[ChainStatus]:
    """The status of `chains` (default: every chain found), each verified in full."""
    monitor = ChainMonitor(engine, key, checkpoint_dir, clock=clock)
    return monitor.status(chains=chains, budget_seconds=budget_seconds)


def chain_status_for(settings: Settings, **kw: Any) -> list[ChainStatus]:
    """`chain_status` with the database, `audit.hmac_key` and `audit.checkpoint_dir` of
    `settings`; `SecretError` when the key cannot be read."""
    key = resolve(settings.audit.hmac_key, settings.base_dir, settings.secrets).get_bytes()
    engine = shared_engine(settings.database_url())
    return chain_status(engine, key, settings.path(settings.audit.checkpoint_dir), **kw)
