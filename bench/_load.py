"""Python load generator, used when `wrk` is not installed. Runs in its own process.

    python bench/_load.py SPEC.json

SPEC holds host, port, path, body, headers, expect (substrings every good response body
contains), connections, duration and warmup (seconds). Each connection is one asyncio task
that sends the same POST over one keep-alive HTTP/1.1 connection, waits for the answer and
sends the next one (closed loop, like wrk). Requests answered during the warm-up are not
counted. Prints one line, `LOAD_RESULT {json}`, with the same fields as the wrk script.

It is much slower than wrk per request: on a small machine it competes with the server for
CPU, so its numbers are lower bounds and only comparable with each other.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Stats:
    latencies_us: list[float] = field(default_factory=list)
    non2xx: int = 0
    bad: int = 0
    connect_errors: int = 0
    read_errors: int = 0
    last_status: int = 0
    sample: str = ""


def build_request(spec: dict[str, Any]) -> bytes:
    body: bytes = spec["body"].encode()
    lines = [
        f"POST {spec['path']} HTTP/1.1",
        f"Host: {spec['host']}:{spec['port']}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in spec["headers"].items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError("response without Content-Length")
    body = await reader.readexactly(length)
    return status, body


async def connection(
    spec: dict[str, Any], request: bytes, stats: Stats, measure_from: float, end: float
) -> None:
    expect = [e.encode() for e in spec["expect"]]
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < end:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(spec["host"], spec["port"])
            except OSError:
                stats.connect_errors += 1
                await asyncio.sleep(0.05)
                continue
        started = time.perf_counter()
        try:
            writer.write(request)
            status, body = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            stats.read_errors += 1
            writer.close()
            writer = None
            continue
        done = time.perf_counter()
        if started < measure_from or done > end:
            continue
        stats.latencies_us.append((done - started) * 1e6)
        if not 200 <= status <= 299:
            stats.non2xx += 1
            stats.last_status = status
            stats.sample = stats.sample or body[:300].decode("utf-8", "replace")
        elif not all(e in body for e in expect):
            stats.bad += 1
            stats.sample = stats.sample or body[:300].decode("utf-8", "replace")
    if writer is not None:
        writer.close()


def percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100.0 * len(ordered)) - 1))
    return ordered[index]


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    request = build_request(spec)
    stats = Stats()
    now = time.perf_counter()
    measure_from = now + float(spec["warmup"])
    end = measure_from + float(spec["duration"])
    await asyncio.gather(
        *(
            connection(spec, request, stats, measure_from, end)
            for _ in range(int(spec["connections"]))
        )
    )
    ordered = sorted(stats.latencies_us)
    count = len(ordered)
    return {
        "requests": count,
        "duration_us": float(spec["duration"]) * 1e6,
        "p50_us": percentile(ordered, 50),
        "p90_us": percentile(ordered, 90),
        "p99_us": percentile(ordered, 99),
        "max_us": ordered[-1] if ordered else 0.0,
        "mean_us": sum(ordered) / count if count else 0.0,
        "non2xx": stats.non2xx,
        "bad": stats.bad,
        "last_status": stats.last_status,
        "sample": stats.sample,
        "errors": {
            "connect": stats.connect_errors,
            "read": stats.read_errors,
            "write": 0,
            "timeout": 0,
        },
    }


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(spec))
    else:
        result = uvloop.run(run(spec))
    sys.stdout.write("LOAD_RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
