"""Scale-out benchmark: the document pipeline on PostgreSQL and Redis next to the embedded
defaults, in one run, with the same processes (one per agent, the gateway, N workers).

    .venv/bin/python bench/scale.py [--documents 1000] [--workers 2] [--rate 10]
                                    [--steady-seconds 30] [--only a,b] [--json FILE] [--keep]

Variants, each a fresh project whose services are `bastion serve` processes under one
supervisor (`bastion.testing.scale_stack`):

    (a) embedded defaults: SQLite database, SQLite queue, rate limits in memory (baseline)
    (b) PostgreSQL database, Redis Streams queue, rate limits in Redis
    (c) PostgreSQL database, PostgreSQL queue, rate limits in Redis

PostgreSQL: `--postgres URL` (default `BASTION_TEST_POSTGRES_URL`, else the local server's
`test` database); each project gets a schema of its own, dropped afterwards. Redis: `--redis
URL` (default `BASTION_TEST_REDIS_URL`, else the local server's database 0); each queue gets a
key prefix of its own, deleted afterwards. Nothing else on either server is touched.

Per variant, as in `bench/pipeline.py` (whose phases this reuses): the throughput of a backlog
of `--documents` uploaded at once through the gateway, then the latency (upload start to
archived) of documents arriving at `--rate` a second.

Targets (2 cores): (b) throughput >= 0.8x (a) with the same worker count; (b) p50 < 200 ms
at 10 docs/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "src"))

from bastion.config import Settings, load_settings  # noqa: E402
from bastion.pipeline.archive_repo import ArchiveRepository  # noqa: E402
from bastion.project import init_project  # noqa: E402
from bastion.runtime import Supervisor  # noqa: E402
from bastion.storage.database import shared_engine  # noqa: E402
from bastion.testing.postgres import postgres_schema  # noqa: E402
from bastion.testing.scale_stack import scale_out, scale_specs  # noqa: E402
from pipeline import cpu_by_service, latency, throughput  # noqa: E402

THROUGHPUT_RATIO = 0.8
P50_TARGET_MS = 200.0


@dataclass(frozen=True)
class Variant:
    label: str
    postgres: bool
    queue: str  # "sqlite", "redis" or "postgres"


VARIANTS = {
    "a": Variant("embedded: SQLite + SQLite queue", postgres=False, queue="sqlite"),
    "b": Variant("PostgreSQL + Redis queue", postgres=True, queue="redis"),
    "c": Variant("PostgreSQL + PostgreSQL queue", postgres=True, queue="postgres"),
}


@contextlib.contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    """A key prefix of its own; its keys are deleted afterwards."""
    prefix = f"bastion:bench:{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match=prefix + "*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@contextlib.contextmanager
def env(name: str, value: str | None) -> Iterator[None]:
    """`name` set to `value` (unset for None) for the block, as `bastion init` reads it."""
    before = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextlib.contextmanager
def project(
    variant: Variant, args: argparse.Namespace, uploads: int
) -> Iterator[tuple[Settings, Supervisor]]:
    """A fresh project for `variant` (its config file) in a temporary folder, on schemas and a
    key prefix of its own; one replica of each agent and `--workers` workers."""
    workdir = Path(tempfile.mkdtemp(prefix="bastion-bench-scale-"))
    with contextlib.ExitStack() as stack:
        database = (
            stack.enter_context(postgres_schema(args.postgres, "bench"))
            if variant.postgres
            else None
        )
        with env("BASTION_DATABASE__URL", database):  # `bastion init` migrates it, keys go there
            config = init_project(workdir / "p").config
        sections: dict[str, dict[str, Any]] = {
            "logging": {"level": "WARNING"},
            # Every upload comes from this one address: room for all of them in the WAF.
            "waf": {"rate_limit": max(2000, 2 * uploads)},
        }
        if database:
            sections["database"] = {"url": database}
            sections["rate_limit"] = {"redis_url": args.redis}
        if variant.queue == "redis":
            prefix = stack.enter_context(redis_prefix(args.redis))
            sections["pipeline"] = {"queue_url": f"{args.redis}?prefix={prefix}queue"}
        elif variant.queue == "postgres":
            queue_url = stack.enter_context(postgres_schema(args.postgres, "bench"))
            sections["pipeline"] = {"queue_url": queue_url}
        layout = scale_out(config, replicas=1, workers=args.workers, **sections)
        settings = load_settings(config)
        try:
            with Supervisor(scale_specs(config, layout), log_dir=workdir / "logs") as supervisor:
                yield settings, supervisor
        finally:
            shared_engine(settings.database_url()).dispose()
            if args.keep:
                print(f"  kept {workdir}", flush=True)
            else:
                shutil.rmtree(workdir, ignore_errors=True)


def run_phase(key: str, args: argparse.Namespace, phase: str) -> dict[str, Any]:
    """One phase ("throughput" or "latency") of variant `key`, on a fresh project."""
    variant = VARIANTS[key]
    uploads = args.documents if phase == "throughput" else int(args.rate * args.steady_seconds)
    print(f"({key}) {variant.label}: {phase} ...", flush=True)
    with project(variant, args, uploads) as (settings, supervisor):
        repo = ArchiveRepository(shared_engine(settings.database_url()))
        before = cpu_by_service(supervisor)
        if phase == "throughput":
            result = throughput(settings, repo, args.documents)
        else:
            result = latency(settings, repo, args.rate, args.steady_seconds)
        after = cpu_by_service(supervisor)
    result["cpu_seconds"] = {k: round(after[k] - before.get(k, 0), 1) for k in after}
    print(f"  CPU seconds by process: {result['cpu_seconds']}", flush=True)
    return result


def checks(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets: (b) throughput >= 0.8x (a), (b) p50 below 200 ms."""
    found: list[dict[str, Any]] = []
    a, b = results.get("a"), results.get("b")
    what = f"(b) >= {THROUGHPUT_RATIO:g}x (a) docs/s"
    if a and b:
        ratio = b["throughput"]["docs_per_second"] / a["throughput"]["docs_per_second"]
        found.append({"check": what, "value": f"{ratio:.2f}x", "passed": ratio >= THROUGHPUT_RATIO})
    else:
        found.append({"check": what, "value": "needs a and b", "passed": None})
    what = f"(b) p50 < {P50_TARGET_MS:g} ms"
    if b:
        p50 = b["latency"]["p50_ms"]
        found.append({"check": what, "value": f"{p50:g} ms", "passed": p50 < P50_TARGET_MS})
    else:
        found.append({"check": what, "value": "needs b", "passed": None})
    return found


def render(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    base = results.get("a")
    header = (
        f"{'variant':<40} {'docs/s':>7} {'vs (a)':>7} {'p50 ms':>8} {'p90 ms':>8} "
        f"{'p99 ms':>8} {'failed':>6}"
    )
    lines = [
        f"{args.workers} workers, one process per agent; throughput: a backlog of "
        f"{args.documents}; latency: {args.rate:g} docs/s for {args.steady_seconds:g} s",
        header,
        "-" * len(header),
    ]
    for key, result in results.items():
        t, lat = result["throughput"], result["latency"]
        ratio = (
            f"{t['docs_per_second'] / base['throughput']['docs_per_second']:.2f}" if base else "-"
        )
        lines.append(
            f"{'(' + key + ') ' + VARIANTS[key].label:<40} {t['docs_per_second']:>7.1f} "
            f"{ratio:>7} {lat['p50_ms']:>8.1f} {lat['p90_ms']:>8.1f} {lat['p99_ms']:>8.1f} "
            f"{t['failed']:>6}"
        )
    lines.append("")
    verdicts = {True: "PASS", False: "FAIL", None: "n/a"}
    lines.extend(
        f"{c['check']:<28} {c['value']:>14}  {verdicts[c['passed']]}" for c in checks(results)
    )
    return "\n".join(lines)


def _variant_keys(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys or any(k not in VARIANTS for k in keys):
        raise argparse.ArgumentTypeError(f"{text!r}: give variants from {', '.join(VARIANTS)}")
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--steady-seconds", type=float, default=30.0)
    parser.add_argument(
        "--only", type=_variant_keys, default=list(VARIANTS), help="the variants to run: a,b,c"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BASTION_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument(
        "--redis", default=os.environ.get("BASTION_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 2 when a target check fails"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    for key in args.only:
        results[key] = {phase: run_phase(key, args, phase) for phase in ("throughput", "latency")}
    print(f"\n(whole run: {time.monotonic() - started:.0f} s)\n")
    print(render(results, args))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "checks": checks(results)}, indent=2))
    if args.strict and any(c["passed"] is False for c in checks(results)):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
