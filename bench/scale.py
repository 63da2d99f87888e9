"""Scale-out benchmark: the document pipeline on PostgreSQL and Redis next to the embedded
defaults, in one run, with the same processes (one per agent, the gateway, N workers).

    .venv/bin/python bench/scale.py [--documents 1000] [--rate 10] [--steady-seconds 30]
                                    [--only a,b1,b2,b4,s] [--json FILE] [--keep] [--strict]

Rows, each a fresh project whose services are `bastion serve` processes under one supervisor
(`bastion.testing.scale_stack`), one process per agent:

    (a)  embedded defaults: SQLite database, SQLite queue, rate limits in memory; 2 workers
         (the baseline: every ratio is to this row, measured in the same run)
    (b1) PostgreSQL database, Redis Streams queue, rate limits in Redis; 1 worker
    (b2) the same with 2 workers (the row the 0.8x target is about: the same worker count)
    (b4) the same with 4 workers
    (c)  PostgreSQL database, PostgreSQL queue, rate limits in Redis; 2 workers (not by default)
    (s)  PostgreSQL database, SQS queue and S3 objects on moto's server; 2 workers. Functional
         only: every document must be archived, its docs/s say nothing (moto is no AWS)

PostgreSQL: `--postgres URL` (default `BASTION_TEST_POSTGRES_URL`, else the local server's
`test` database); each project gets a schema of its own, dropped afterwards. Redis: `--redis
URL` (default `BASTION_TEST_REDIS_URL`, else the local server's database 0); each queue gets a
key prefix of its own, deleted afterwards. Nothing else on either server is touched.

Per row, as in `bench/pipeline.py` (whose phases this reuses): the throughput of a backlog of
`--documents` uploaded at once through the gateway, then (not for (s)) the latency (upload start
to archived) of documents arriving at `--rate` a second. The CPU seconds of each service, and
of the PostgreSQL and Redis servers, during the backlog show where the cores went.

Targets (2 cores): (b2) throughput >= 0.8x (a); (b2) p50 < 200 ms at 10 docs/s.
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "src"))

from _moto import AWS_ENV, REGION, moto_setup  # noqa: E402
from bastion.config import Settings, load_settings  # noqa: E402
from bastion.pipeline.archive_repo import ArchiveRepository  # noqa: E402
from bastion.project import init_project  # noqa: E402
from bastion.runtime import Supervisor  # noqa: E402
from bastion.storage.database import shared_engine  # noqa: E402
from bastion.testing.postgres import postgres_schema  # noqa: E402
from bastion.testing.scale_stack import scale_out, scale_specs  # noqa: E402
from pipeline import _process_tree_cpu, cpu_by_service, latency, throughput  # noqa: E402

THROUGHPUT_RATIO = 0.8
P50_TARGET_MS = 200.0
BASELINE = "a"
TARGET_ROW = "b2"
# The database and queue servers shared by every row (their CPU is not the services').
SERVERS = {"postgres": ("postgres",), "redis": ("redis-server",)}


@dataclass(frozen=True)
class Variant:
    label: str
    postgres: bool
    queue: str  # "sqlite", "redis", "postgres" or "sqs" (with S3 objects)
    workers: int
    meaningful: bool = True  # False: functional only, its speed is moto's


VARIANTS = {
    "a": Variant("embedded: SQLite + SQLite queue", postgres=False, queue="sqlite", workers=2),
    "b1": Variant("PostgreSQL + Redis Streams", postgres=True, queue="redis", workers=1),
    "b2": Variant("PostgreSQL + Redis Streams", postgres=True, queue="redis", workers=2),
    "b4": Variant("PostgreSQL + Redis Streams", postgres=True, queue="redis", workers=4),
    "c": Variant("PostgreSQL + PostgreSQL queue", postgres=True, queue="postgres", workers=2),
    "s": Variant(
        "PostgreSQL + SQS + S3 (moto)", postgres=True, queue="sqs", workers=2, meaningful=False
    ),
}
DEFAULT_ROWS = ["a", "b1", "b2", "b4", "s"]


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
def env(values: Mapping[str, str | None]) -> Iterator[None]:
    """Each variable set to its value (unset for None) for the block, as `bastion init` and the
    services (which inherit the environment) read them."""
    before = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pipeline_section(
    variant: Variant, args: argparse.Namespace, stack: contextlib.ExitStack
) -> dict[str, Any] | None:
    """The `pipeline` settings of `variant`'s queue (and objects), on resources of its own."""
    if variant.queue == "redis":
        prefix = stack.enter_context(redis_prefix(args.redis))
        return {"queue_url": f"{args.redis}?prefix={prefix}queue"}
    if variant.queue == "postgres":
        return {"queue_url": stack.enter_context(postgres_schema(args.postgres, "bench"))}
    if variant.queue == "sqs":
        stack.enter_context(env(AWS_ENV))
        moto = stack.enter_context(moto_setup())
        return {
            "queue_url": moto.queue_url,
            "sqs_endpoint_url": moto.endpoint,
            "object_store_url": moto.object_store_url,
            "s3_endpoint_url": moto.endpoint,
            "aws_region": REGION,
        }
    return None


@contextlib.contextmanager
def project(
    variant: Variant, args: argparse.Namespace, uploads: int
) -> Iterator[tuple[Settings, Supervisor]]:
    """A fresh project for `variant` (its config file) in a temporary folder, on schemas and a
    key prefix of its own; one replica of each agent and the variant's workers."""
    workdir = Path(tempfile.mkdtemp(prefix="bastion-bench-scale-"))
    with contextlib.ExitStack() as stack:
        database = (
            stack.enter_context(postgres_schema(args.postgres, "bench"))
            if variant.postgres
            else None
        )
        with env({"BASTION_DATABASE__URL": database}):  # `bastion init` migrates it
            config = init_project(workdir / "p").config
        sections: dict[str, dict[str, Any]] = {
            "logging": {"level": "WARNING"},
            # Every upload comes from this one address: room for all of them in the WAF.
            "waf": {"rate_limit": max(2000, 2 * uploads)},
        }
        if database:
            sections["database"] = {"url": database}
            sections["rate_limit"] = {"redis_url": args.redis}
        queue = pipeline_section(variant, args, stack)
        if queue:
            sections["pipeline"] = queue
        layout = scale_out(config, replicas=1, workers=variant.workers, **sections)
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


def cpu_by_server() -> dict[str, float]:
    """CPU seconds so far of every PostgreSQL and Redis server process on the machine (other
    jobs using the same servers count too)."""
    out = dict.fromkeys(SERVERS, 0.0)
    for _ppid, cpu, cmd in _process_tree_cpu().values():
        for name, prefixes in SERVERS.items():
            if cmd.startswith(prefixes) or f"/{prefixes[0]}" in cmd.split(" ", 1)[0]:
                out[name] += cpu
    return out


def run_phase(key: str, args: argparse.Namespace, phase: str) -> dict[str, Any]:
    """One phase ("throughput" or "latency") of variant `key`, on a fresh project."""
    variant = VARIANTS[key]
    uploads = args.documents if phase == "throughput" else int(args.rate * args.steady_seconds)
    print(f"({key}) {variant.label}, {variant.workers} workers: {phase} ...", flush=True)
    with project(variant, args, uploads) as (settings, supervisor):
        repo = ArchiveRepository(shared_engine(settings.database_url()))
        before, servers_before = cpu_by_service(supervisor), cpu_by_server()
        if phase == "throughput":
            result = throughput(settings, repo, args.documents)
        else:
            result = latency(settings, repo, args.rate, args.steady_seconds)
        after, servers_after = cpu_by_service(supervisor), cpu_by_server()
    cpu = {k: round(after[k] - before.get(k, 0), 1) for k in after}
    cpu.update({k: round(servers_after[k] - servers_before[k], 1) for k in servers_after})
    result["cpu_seconds"] = cpu
    if phase == "throughput":
        # Cores kept busy by the services and servers while the backlog drained.
        result["cores_busy"] = round(sum(cpu.values()) / result["total_seconds"], 2)
    print(f"  CPU seconds by process: {cpu}", flush=True)
    return result


def phases(key: str) -> tuple[str, ...]:
    """A functional-only row is not timed at a steady rate: its latency would be moto's."""
    return ("throughput", "latency") if VARIANTS[key].meaningful else ("throughput",)


def ratio(results: dict[str, dict[str, Any]], key: str) -> float | None:
    """`key`'s backlog throughput over the baseline's, or None without the baseline."""
    base = results.get(BASELINE)
    if base is None or key not in results:
        return None
    rate = results[key]["throughput"]["docs_per_second"]
    return float(rate / base["throughput"]["docs_per_second"])


def checks(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets: (b2) throughput >= 0.8x (a), (b2) p50 below 200 ms; and every document of
    a functional-only row archived, none failed."""
    found: list[dict[str, Any]] = []
    what = f"({TARGET_ROW}) >= {THROUGHPUT_RATIO:g}x ({BASELINE}) docs/s"
    value = ratio(results, TARGET_ROW)
    if value is not None:
        found.append({"check": what, "value": f"{value:.2f}x", "passed": value >= THROUGHPUT_RATIO})
    else:
        found.append({"check": what, "value": f"needs {BASELINE} and {TARGET_ROW}", "passed": None})
    what = f"({TARGET_ROW}) p50 < {P50_TARGET_MS:g} ms"
    if TARGET_ROW in results:
        p50 = results[TARGET_ROW]["latency"]["p50_ms"]
        found.append({"check": what, "value": f"{p50:g} ms", "passed": p50 < P50_TARGET_MS})
    else:
        found.append({"check": what, "value": f"needs {TARGET_ROW}", "passed": None})
    for key, result in results.items():
        if not VARIANTS[key].meaningful:
            t = result["throughput"]
            done = t["archived"] == t["documents"] and t["failed"] == 0
            value = f"{t['archived']}/{t['documents']}, {t['failed']} failed"
            found.append({"check": f"({key}) all archived", "value": value, "passed": done})
    return found


def render(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    header = (
        f"{'row':<36} {'workers':>7} {'docs/s':>7} {'vs (a)':>7} {'p50 ms':>7} {'p90 ms':>7} "
        f"{'p99 ms':>7} {'failed':>6} {'cores':>5}"
    )
    lines = [
        f"one process per agent; ratios to ({BASELINE}), {VARIANTS[BASELINE].workers} workers; "
        f"throughput: a backlog of {args.documents}; latency: {args.rate:g} docs/s for "
        f"{args.steady_seconds:g} s; cores: CPU seconds of services + servers / backlog seconds",
        header,
        "-" * len(header),
    ]
    for key, result in results.items():
        variant, t = VARIANTS[key], result["throughput"]
        lat = result.get("latency", {})
        value = ratio(results, key)
        shown = "-" if value is None else f"{value:.2f}"
        mark = "" if variant.meaningful else "*"
        lines.append(
            f"{'(' + key + ') ' + variant.label:<36} {variant.workers:>7} "
            f"{str(t['docs_per_second']) + mark:>7} {shown + mark:>7} "
            + " ".join(f"{lat[p]:>7.1f}" if p in lat else f"{'-':>7}" for p in _PERCENTILES)
            + f" {t['failed']:>6} {t['cores_busy']:>5}"
        )
    if any(not VARIANTS[k].meaningful for k in results):
        lines.append("* functional only: moto's speed, not AWS's")
    lines.append("")
    verdicts = {True: "PASS", False: "FAIL", None: "n/a"}
    lines.extend(
        f"{c['check']:<28} {c['value']:>22}  {verdicts[c['passed']]}" for c in checks(results)
    )
    return "\n".join(lines)


_PERCENTILES = ("p50_ms", "p90_ms", "p99_ms")


def _variant_keys(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys or any(k not in VARIANTS for k in keys):
        raise argparse.ArgumentTypeError(f"{text!r}: give rows from {', '.join(VARIANTS)}")
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--steady-seconds", type=float, default=30.0)
    parser.add_argument(
        "--only",
        type=_variant_keys,
        default=DEFAULT_ROWS,
        help=f"the rows to run, from {','.join(VARIANTS)} (default {','.join(DEFAULT_ROWS)})",
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

    load = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    for key in args.only:
        results[key] = {phase: run_phase(key, args, phase) for phase in phases(key)}
    load = os.getloadavg()
    print(
        f"\n(whole run: {time.monotonic() - started:.0f} s; load average at end: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f})\n"
    )
    print(render(results, args))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "checks": checks(results)}, indent=2))
    if args.strict and any(c["passed"] is False for c in checks(results)):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
