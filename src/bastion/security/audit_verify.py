"""Reading the audit trail: `verify_chain` checks every hash chain, `tail` lists records.

Verification walks each chain in seq order, a page at a time (the whole table is never held in
memory), alongside that chain's checkpoint file, and reports:

- `edited`: a record whose HMAC does not verify (a field was changed after it was written);
- `deleted`: a seq gap, or a record whose `prev_hash` is not the previous record's hash;
- `truncated`: the chain ends before a record that a checkpoint vouches for;
- `checkpoint_mismatch`: the record at a checkpoint's seq has another hash than the checkpoint;
- `key_mismatch`: no record verifies with the key (the chain was recomputed without it, e.g.
  with plain SHA-256 or another key; or the key given is the wrong one);
- `checkpoint_forged`: a checkpoint line that is malformed, out of order, or whose MAC fails;
- `missing`: a chain that was asked for has neither records nor checkpoints.

Not detectable: deleting records written after the last checkpoint together with nothing else,
or deleting a chain's records together with its checkpoint file. Keep the checkpoint files (and
the `audit` log lines) off the host to close that gap.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from bastion.security.audit import (
    CHAIN_NAME_RE,
    CHECKPOINT_SUFFIX,
    GENESIS_HASH,
    Checkpoint,
    canonical,
    chain_message,
    checkpoint_ok,
    checkpoint_path,
    entry_from_row,
    iter_checkpoint_lines,
    parse_checkpoint,
)
from bastion.storage import AuditRecord

PAGE_SIZE = 5000
# Problems kept per chain (all are counted in `problems_total`).
MAX_PROBLEMS = 50

_COLUMNS = (
    AuditRecord.chain,
    AuditRecord.seq,
    AuditRecord.ts,
    AuditRecord.principal,
    AuditRecord.auth_method,
    AuditRecord.agent,
    AuditRecord.method,
    AuditRecord.correlation_id,
    AuditRecord.outcome,
    AuditRecord.status,
    AuditRecord.latency_ms,
    AuditRecord.client,
    AuditRecord.detail,
    AuditRecord.prev_hash,
    AuditRecord.hash,
)


@dataclass(slots=True)
class Problem:
    """One finding. `seq` is the first record concerned, when there is one."""

    kind: str
    seq: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "message": self.message}


@dataclass(slots=True)
class ChainReport:
    """The result for one chain."""

    chain: str
    records_checked: int = 0
    head_seq: int = 0
    head_hash: str | None = None
    checkpoints_checked: int = 0
    last_checkpoint_seq: int | None = None
    problems: list[Problem] = field(default_factory=list)
    problems_total: int = 0
    first_bad_seq: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problems_total == 0

    @property
    def records(self) -> int:
        """Alias of `records_checked`."""
        return self.records_checked

    @property
    def message(self) -> str:
        """One line: "intact", or the problem count and the first problem."""
        if self.ok:
            return "intact"
        first = self.problems[0].message if self.problems else "see problems"
        return f"{self.problems_total} problem(s), first bad seq {self.first_bad_seq}: {first}"

    def add(self, kind: str, seq: int | None, message: str) -> None:
        self.problems_total += 1
        if seq is not None and (self.first_bad_seq is None or seq < self.first_bad_seq):
            self.first_bad_seq = seq
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(kind, seq, message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "ok": self.ok,
            "message": self.message,
            "records_checked": self.records_checked,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "checkpoints_checked": self.checkpoints_checked,
            "last_checkpoint_seq": self.last_checkpoint_seq,
            "first_bad_seq": self.first_bad_seq,
            "problems_total": self.problems_total,
            "problems": [p.to_dict() for p in self.problems],
            "warnings": list(self.warnings),
        }


@dataclass(slots=True)
class VerifyReport:
    """The result for every chain verified."""

    chains: list[ChainReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.chains)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "chains": [c.to_dict() for c in self.chains]}


class _CheckpointStream:
    """The valid checkpoints of one file, in order, consumed alongside the records."""

    def __init__(self, key: bytes, chain: str, path: Path | None, report: ChainReport) -> None:
        self._key = key
        self._chain = chain
        self._report = report
        self._it: Iterator[tuple[int, Checkpoint]] = (
            self._read(path) if path is not None and path.is_file() else iter(())
        )
        self._cur: tuple[int, Checkpoint] | None = next(self._it, None)

    def _read(self, path: Path) -> Iterator[tuple[int, Checkpoint]]:
        rep = self._report
        last_seq = 0
        for number, line, complete in iter_checkpoint_lines(path):
            try:
                cp = parse_checkpoint(line)
            except ValueError as exc:
                if not complete:
                    rep.warnings.append(
                        f"checkpoint line {number} is incomplete (a torn write); ignored"
                    )
                    continue
                rep.add("checkpoint_forged", None, f"checkpoint line {number} is malformed: {exc}")
                continue
            rep.checkpoints_checked += 1
            if cp.chain != self._chain or not checkpoint_ok(self._key, cp):
                rep.add(
                    "checkpoint_forged",
                    cp.seq,
                    f"checkpoint line {number} (seq {cp.seq}) does not verify with the audit "
                    "key: it was forged or edited",
                )
                continue
            if cp.seq < last_seq:
                rep.add(
                    "checkpoint_forged",
                    cp.seq,
                    f"checkpoint line {number} goes backwards (seq {cp.seq} after {last_seq})",
                )
                continue
            last_seq = cp.seq
            rep.last_checkpoint_seq = cp.seq
            yield number, cp

    def match(self, seq: int, record_hash: str) -> None:
        """Check every checkpoint up to `seq` against the record just read."""
        while self._cur is not None and self._cur[1].seq <= seq:
            number, cp = self._cur
            if cp.seq == seq:
                if not hmac.compare_digest(cp.hash, record_hash):
                    self._report.add(
                        "checkpoint_mismatch",
                        seq,
                        f"record {seq} does not match checkpoint line {number}: the record "
                        "(or the chain up to it) was rewritten",
                    )
            else:
                self._report.add(
                    "deleted",
                    cp.seq,
                    f"checkpoint line {number} vouches for record {cp.seq}, which is missing",
                )
            self._cur = next(self._it, None)

    def skip_through(self, seq: int) -> None:
        """Pass over the checkpoints up to `seq` (matched by an earlier verification); their
        MACs and order are still checked."""
        while self._cur is not None and self._cur[1].seq <= seq:
            self._cur = next(self._it, None)

    def finish(self, head_seq: int) -> None:
        """Checkpoints beyond the last record mean the tail was cut off."""
        last: tuple[int, Checkpoint] | None = None
        while self._cur is not None:
            last = self._cur
            self._cur = next(self._it, None)
        if last is not None:
            number, top = last[0], last[1].seq
            self._report.add(
                "truncated",
                head_seq + 1,
                f"the chain ends at seq {head_seq} but checkpoint line {number} vouches for "
                f"seq {top}: records {head_seq + 1}..{top} were deleted (truncated tail)",
            )


def chain_names(engine: Engine, checkpoint_dir: Path) -> list[str]:
    """Every chain with records in the database or a checkpoint file, sorted."""
    with engine.connect() as conn:
        names = {str(c) for c in conn.execute(select(AuditRecord.chain).distinct()).scalars()}
    if checkpoint_dir.is_dir():
        for p in checkpoint_dir.glob(f"*{CHECKPOINT_SUFFIX}"):
            names.add(p.name[: -len(CHECKPOINT_SUFFIX)])
    return sorted(names)


def _verify_one(
    engine: Engine,
    key: bytes,
    checkpoint_dir: Path,
    chain: str,
    page_size: int,
    after: tuple[int, str] | None = None,
) -> ChainReport:
    rep = ChainReport(chain)
    path = checkpoint_path(checkpoint_dir, chain) if CHAIN_NAME_RE.fullmatch(chain) else None
    cps = _CheckpointStream(key, chain, path, rep)
    expected, prev = 1, GENESIS_HASH
    last_seq = 0
    if after is not None and after[0] > 0:
        last_seq, prev = after
        expected = last_seq + 1
        rep.head_seq, rep.head_hash = after
        cps.skip_through(last_seq)
        _check_resume_point(engine, chain, after, rep)
    bad: list[tuple[int, bool]] = []  # (seq, hashed with plain SHA-256), first MAX_PROBLEMS
    bad_count = plain_count = 0
    while True:
        with engine.connect() as conn:
            page = conn.execute(
                select(*_COLUMNS)
                .where(AuditRecord.chain == chain, AuditRecord.seq > last_seq)
                .order_by(AuditRecord.seq)
                .limit(page_size)
            ).all()
        if not page:
            break
        for row in page:
            seq, stored_prev, stored = int(row.seq), str(row.prev_hash), str(row.hash)
            rep.records_checked += 1
            if seq != expected:
                missing = (
                    f"record {expected}"
                    if seq == expected + 1
                    else (f"records {expected}..{seq - 1}")
                )
                rep.add("deleted", expected, f"{missing} missing before record {seq} (deleted)")
            elif not hmac.compare_digest(stored_prev, prev):
                rep.add(
                    "deleted",
                    seq,
                    f"record {seq} does not link to record {seq - 1} (prev_hash mismatch): "
                    "a record was removed or replaced",
                )
            msg = chain_message(stored_prev, canonical(chain, seq, entry_from_row(row)))
            if not hmac.compare_digest(hmac.new(key, msg, hashlib.sha256).hexdigest(), stored):
                plain = hmac.compare_digest(hashlib.sha256(msg).hexdigest(), stored)
                bad_count += 1
                plain_count += plain
                if len(bad) < MAX_PROBLEMS:
                    bad.append((seq, plain))
            cps.match(seq, stored)
            prev, expected, last_seq = stored, seq + 1, seq
            rep.head_seq, rep.head_hash = seq, stored
    cps.finish(rep.head_seq)
    if bad_count and bad_count == rep.records_checked and bad_count > 1:
        how = (
            "the hashes are plain SHA-256: the chain was recomputed without the key"
            if plain_count == bad_count
            else "the chain was recomputed with another key, or the key given is wrong"
        )
        rep.add("key_mismatch", bad[0][0], f"none of {bad_count} records verifies: {how}")
    else:
        for seq, plain in bad:
            why = (
                "and re-hashed without the key (plain SHA-256)"
                if plain
                else ("its hash does not verify with the audit key")
            )
            rep.add("edited", seq, f"record {seq} was edited: {why}")
        rep.problems_total += bad_count - len(bad)
    if (
        after is None
        and rep.records_checked == 0
        and rep.checkpoints_checked == 0
        and rep.problems_total == 0
    ):
        rep.add("missing", None, f"chain {chain!r} has no records and no checkpoints")
    rep.problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return rep


def _check_resume_point(
    engine: Engine, chain: str, after: tuple[int, str], rep: ChainReport
) -> None:
    """The record an incremental verification resumes after must be as it was verified."""
    seq, expected = after
    with engine.connect() as conn:
        stored = conn.execute(
            select(AuditRecord.hash).where(AuditRecord.chain == chain, AuditRecord.seq == seq)
        ).scalar_one_or_none()
    if stored is None:
        rep.add("deleted", seq, f"record {seq}, verified earlier, is gone (deleted)")
    elif not hmac.compare_digest(str(stored), expected):
        rep.add("edited", seq, f"record {seq} changed since it was verified (rewritten)")


def verify_chain(
    engine: Engine,
    key: bytes,
    checkpoint_dir: Path,
    chain: str | None = None,
    *,
    page_size: int = PAGE_SIZE,
    after: tuple[int, str] | None = None,
) -> VerifyReport:
    """Verify one chain, or every chain found in the database and the checkpoint folder.

    A chain asked for by name that has neither records nor checkpoints is a problem. With no
    name and nothing found, the report is empty (and ok).

    `after=(seq, hash)` (one named chain only) resumes an earlier verification that ended at
    record `seq` with hash `hash`: only the later records and checkpoints are checked, and
    record `seq` must still have that hash. Records before it are not read again, so an edit
    to them shows only in a full verification.
    """
    if page_size < 1:
        raise ValueError("page_size must be >= 1")
    if after is not None and chain is None:
        raise ValueError("after= needs the chain it belongs to")
    names = [chain] if chain is not None else chain_names(engine, checkpoint_dir)
    return VerifyReport(
        [_verify_one(engine, key, checkpoint_dir, n, page_size, after) for n in names]
    )


def correlation_ids(engine: Engine, prefix: str, *, limit: int = 1000) -> list[str]:
    """Distinct correlation ids starting with `prefix`, sorted (an exact match first), at most
    `limit` of them."""
    stmt = (
        select(AuditRecord.correlation_id)
        .where(AuditRecord.correlation_id.startswith(prefix, autoescape=True))
        .distinct()
        .order_by(AuditRecord.correlation_id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [str(c) for c in conn.execute(stmt).scalars()]


def tail(
    engine: Engine,
    *,
    limit: int = 20,
    correlation_id: str | None = None,
    principal: str | None = None,
    chain: str | None = None,
) -> list[dict[str, Any]]:
    """Recent records as dicts (every column except the row id and `prev_hash`).

    Newest first (by insertion order). With `correlation_id`, oldest first (by `ts`), so that
    the hops of one request read in order; `limit` then keeps the first hops.
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    cols = [c for c in _COLUMNS if c.key != "prev_hash"]
    stmt = select(*cols)
    if correlation_id is not None:
        stmt = stmt.where(AuditRecord.correlation_id == correlation_id)
    if principal is not None:
        stmt = stmt.where(AuditRecord.principal == principal)
    if chain is not None:
        stmt = stmt.where(AuditRecord.chain == chain)
    if correlation_id is not None:
        stmt = stmt.order_by(AuditRecord.ts, AuditRecord.id)
    else:
        stmt = stmt.order_by(AuditRecord.id.desc())
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(stmt.limit(limit))]
