"""Audit search, security summaries and chain status on a large trail: milliseconds per call.

    .venv/bin/python bench/audit_query.py [--records N] [--postgres URL] [--repeats R]
                                          [--json FILE]

Writes N records (default 100 000) over one day into a fresh SQLite file (and, with
`--postgres`, a fresh PostgreSQL schema), sealed into two hash chains by `seal_batch`:
85% ok calls, the rest authentication failures (a random unknown key id in each, as a key
guessing attack leaves them), RBAC denials, rate-limit hits, WAF blocks and guardrail
decisions, and gathers planner statistics (ANALYZE). Then it times, best and median of R runs each:

- baseline: `SELECT count(*)` over the same time range (what any answer must at least read);
- `security_summary` over the whole day (24 buckets) and over its last hour (12 buckets);
- `search`: the first page with no filter, one outcome, one principal, an auth reason, a WAF
  rule, and the 20th page of the newest records (cursor);
- `chain_status` of one chain (a full verification of about N/2 records);
- a `ChainMonitor` poll of both chains after its first, full, check (nothing new to read).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import Engine, func, select, text  # noqa: E402

from bastion.core.audit_entry import AuditEntry  # noqa: E402
from bastion.security import (  # noqa: E402
    AuditFilters,
    ChainMonitor,
    chain_status,
    search,
    security_summary,
)
from bastion.security.audit import append_checkpoint, make_checkpoint, seal_batch  # noqa: E402
from bastion.storage import AuditRecord, write_transaction  # noqa: E402
from bastion.storage.database import migrate, shared_engine  # noqa: E402

KEY = b"bench-audit-key-0123456789abcdef"
DAY = 86_400.0
START = 1_750_000_000.0
PRINCIPALS = [f"user-{i}" for i in range(50)]
METHODS = ["message/send", "tasks/get", "tasks/cancel", "documents/list", "research/run"]
WAF = [
    "rules: managed.sqli.libinjection@query:id",
    "rules: managed.xss.libinjection@body:comment",
    "rules: managed.lfi.traversal@uri, managed.rce.unix_command@query:f",
    "rules: bot.scanner_user_agent@header:user-agent",
]
GUARD = "policy=4 source=model direction=output types="


def entry(rng: random.Random, ts: float, i: int) -> AuditEntry:
    roll = rng.random()
    principal, method = rng.choice(PRINCIPALS), rng.choice(METHODS)
    outcome, detail, status = "ok", None, 200
    if roll < 0.05:
        outcome, status, principal = "denied:authenticate", 401, "-"
        detail = rng.choice(
            [
                f"unknown api key id {rng.getrandbits(48):012x}",
                "no credential",
                "bearer token rejected: token expired",
                f"revoked api key id {rng.getrandbits(48):012x}",
            ]
        )
    elif roll < 0.08:
        outcome, status, detail = "denied:authorize", 403, "no rule"
    elif roll < 0.11:
        outcome, status, detail = "denied:rate_limit", 429, "over quota"
    elif roll < 0.13:
        outcome, status, method, detail = "denied:waf", 403, "waf.managed", rng.choice(WAF)
    elif roll < 0.15:
        outcome = rng.choice(["guardrail:BLOCKED", "guardrail:ANONYMIZED"])
        method, status = "guardrail.scan", 0
        detail = GUARD + rng.choice(["EMAIL", "NAME,EMAIL", "PROMPT_ATTACK"])
    return AuditEntry(
        ts=ts,
        principal=principal,
        auth_method="api_key",
        agent=rng.choice(["gateway", "archivist"]),
        method=method,
        correlation_id=f"{i:012x}",
        outcome=outcome,
        status=status,
        latency_ms=rng.random() * 20,
        client="10.0.0.1",
        detail=detail,
    )


def populate(engine: Engine, cp_dir: Path, n: int) -> None:
    """N records, alternately in chains `bench-a` and `bench-b`, inserted 2000 at a time."""
    rng = random.Random(7)
    heads = {"bench-a": (0, "0" * 64), "bench-b": (0, "0" * 64)}
    step = DAY / n
    for lo in range(0, n, 2000):
        block = [entry(rng, START + i * step, i) for i in range(lo, min(lo + 2000, n))]
        for chain, part in zip(heads, (block[0::2], block[1::2]), strict=True):
            if not part:
                continue
            seq, head = heads[chain]
            rows = seal_batch(part, chain=chain, key=KEY, seq=seq, prev_hash=head)
            with write_transaction(engine) as conn:
                conn.execute(AuditRecord.__table__.insert(), rows)
            heads[chain] = (int(rows[-1]["seq"]), str(rows[-1]["hash"]))
    for chain, (seq, head) in heads.items():
        append_checkpoint(cp_dir / f"{chain}.checkpoints", make_checkpoint(KEY, chain, seq, head))
    # Planner statistics, as autovacuum (PostgreSQL) or `PRAGMA optimize` would gather them:
    # without them a freshly bulk-loaded table gets poor plans.
    with engine.begin() as conn:
        conn.execute(text("ANALYZE audit_records"))


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(best, median) milliseconds."""
    fn()  # warm the caches and the plan
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1000)
    return min(runs), statistics.median(runs)


def count_range(engine: Engine, since: float, until: float) -> int:
    r = AuditRecord
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).where(r.ts >= since, r.ts < until)).scalar_one()
        )


def page20(engine: Engine) -> None:
    cursor = None
    for _ in range(20):
        cursor = search(engine, AuditFilters(), cursor=cursor, limit=50).next_cursor


def cases(engine: Engine, cp_dir: Path) -> list[tuple[str, Callable[[], Any]]]:
    end = START + DAY
    hour = end - 3600
    return [
        ("baseline count(*) day", lambda: count_range(engine, START, end)),
        ("security_summary day/24", lambda: security_summary(engine, START, end, 24)),
        ("baseline count(*) hour", lambda: count_range(engine, hour, end)),
        ("security_summary hour/12", lambda: security_summary(engine, hour, end, 12)),
        ("search first page", lambda: search(engine, AuditFilters(), limit=50)),
        ("search outcome", lambda: search(engine, AuditFilters(outcome="denied:waf"))),
        ("search principal", lambda: search(engine, AuditFilters(principal="user-7"))),
        ("search auth_reason", lambda: search(engine, AuditFilters(auth_reason="revoked"))),
        (
            "search waf_rule",
            lambda: search(engine, AuditFilters(waf_rule="managed.rce.unix_command")),
        ),
        ("search 20th page", lambda: page20(engine)),
        ("chain_status 1 chain", lambda: chain_status(engine, KEY, cp_dir, chains=["bench-a"])),
        ("ChainMonitor 2 chains", monitored(engine, cp_dir)),
    ]


def monitored(engine: Engine, cp_dir: Path) -> Callable[[], Any]:
    """A monitor's later checks: after its first (full) one, only records added since are
    read; this times a check that finds none new (the fixed cost of each poll)."""
    monitor = ChainMonitor(engine, KEY, cp_dir)
    monitor.status(budget_seconds=60)
    return lambda: monitor.status()


@contextmanager
def databases(args: argparse.Namespace, work: Path) -> Iterator[list[tuple[str, str]]]:
    with ExitStack() as stack:
        found = [("sqlite", f"sqlite:///{work / 'audit.db'}")]
        if args.postgres:
            from bastion.testing.postgres import postgres_schema

            found.append(("postgresql", stack.enter_context(postgres_schema(args.postgres, "b"))))
        yield found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL: also run there, in a new schema")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, databases(args, Path(tmp)) as dbs:
        for name, url in dbs:
            migrate(url)
            engine = shared_engine(url)
            cp_dir = Path(tmp) / f"cp-{name}"
            cp_dir.mkdir()
            t = time.perf_counter()
            populate(engine, cp_dir, args.records)
            print(f"{name}: {args.records} records written in {time.perf_counter() - t:.1f} s")
            for label, fn in cases(engine, cp_dir):
                best, median = timed(fn, args.repeats)
                results.append({"db": name, "case": label, "best_ms": best, "median_ms": median})
            engine.dispose()
    print(f"\n{'database':<11} {'case':<26} {'best ms':>9} {'median ms':>10}")
    for r in results:
        print(f"{r['db']:<11} {r['case']:<26} {r['best_ms']:>9.1f} {r['median_ms']:>10.1f}")
    if args.json:
        args.json.write_text(json.dumps({"records": args.records, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
