"""The state of each audit hash chain for the console: head, last record, verified or not.

`chain_status(engine, key, checkpoint_dir, budget_seconds=...)` reads every chain's head (seq
and time of its last record) with one indexed query, then verifies chains with
`audit_verify.verify_chain`, one at a time in name order, while the time budget lasts. The
chains left over are reported `unchecked` (head known, not verified); ask for them by name
(`chains=[...]`) to verify them. A chain is always verified whole (from seq 1, with its
checkpoints), so a call can overrun the budget by the time one chain takes: one to three
seconds per 100k records (SQLite or PostgreSQL). The first chain asked for is always verified.
`chain_status_for(settings)` takes the database, key and checkpoint folder from the settings.

Only the checkpoint files in this host's folder are read: a chain written on another host is
verified record by record, without its checkpoints (a cut-off tail goes unnoticed there).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, func, select, tuple_

from bastion.config import Settings
from bastion.security.audit_verify import chain_names, verify_chain
from bastion.security.secrets import resolve
from bastion.storage import AuditRecord, shared_engine

__all__ = ["ChainStatus", "chain_status", "chain_status_for"]

State = Literal["ok", "problems", "unchecked"]


@dataclass(slots=True)
class ChainStatus:
    """One chain: `state` is `ok`, `problems` (see `problems`) or `unchecked` (out of time)."""

    chain: str
    state: State
    head_seq: int
    last_ts: float | None
    records_checked: int = 0
    problems_total: int = 0
    first_bad_seq: int | None = None
    message: str = "not verified: out of time budget"
    problems: list[dict[str, Any]] = field(default_factory=list)
    verify_seconds: float | None = None

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


def chain_status(
    engine: Engine,
    key: bytes,
    checkpoint_dir: Path,
    *,
    chains: Iterable[str] | None = None,
    budget_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> list[ChainStatus]:
    """The status of `chains` (default: every chain in the database or checkpoint folder)."""
    heads = chain_heads(engine)
    names = list(chains) if chains is not None else chain_names(engine, checkpoint_dir)
    deadline = clock() + budget_seconds
    out: list[ChainStatus] = []
    for i, name in enumerate(names):
        head_seq, last_ts = heads.get(name, (0, None))
        status = ChainStatus(name, "unchecked", head_seq, last_ts)
        out.append(status)
        started = clock()
        if i > 0 and started >= deadline:
            continue
        [rep] = verify_chain(engine, key, checkpoint_dir, name).chains
        status.state = "ok" if rep.ok else "problems"
        status.head_seq = max(head_seq, rep.head_seq)
        status.records_checked = rep.records_checked
        status.problems_total = rep.problems_total
        status.first_bad_seq = rep.first_bad_seq
        status.message = rep.message
        status.problems = [p.to_dict() for p in rep.problems]
        status.verify_seconds = clock() - started
    return out


def chain_status_for(settings: Settings, **kw: Any) -> list[ChainStatus]:
    """`chain_status` with the database, `audit.hmac_key` and `audit.checkpoint_dir` of
    `settings`; `SecretError` when the key cannot be read."""
    key = resolve(settings.audit.hmac_key, settings.base_dir, settings.secrets).get_bytes()
    engine = shared_engine(settings.database_url())
    return chain_status(engine, key, settings.path(settings.audit.checkpoint_dir), **kw)
