"""Tracing's own CPU per call, measured in one process without sockets.

    python bench/_tracing_cost.py [--calls 1500] [--rounds 15]

Two echo agents of one project, full security stack, one with `observability.tracing_enabled`
and one without, are driven through their ASGI entry point with the same `echo` request
(an API key, rate limit out of reach), in alternating rounds; each round's process CPU time per
call is taken and the fastest round of each is kept (the least disturbed by other work on the
machine). The difference is what tracing adds per call in the app, without the HTTP server's
share; `bench/rpc.py` relates it to the full stack's CPU per call. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

BODY = b'{"jsonrpc":"2.0","id":1,"method":"echo","params":{"message":"hello"}}'
BENCH_RATE = "100000000/minute"


async def drive(app: Any, key: str, calls: int) -> float:
    """Process CPU microseconds per call over `calls` requests to `app`."""
    headers = [
        (b"content-type", b"application/json"),
        (b"x-api-key", key.encode()),
        (b"content-length", str(len(BODY)).encode()),
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/message",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "query_string": b"",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "root_path": "",
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.process_time()
    for _ in range(calls):
        await app(dict(scope), receive, send)
    elapsed = time.process_time() - started
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected answers: {sorted(set(statuses))}")
    return elapsed / calls * 1e6


async def measure(calls: int, rounds: int) -> dict[str, Any]:
    from bastion.agents.echo import echo_definition
    from bastion.config import load_settings
    from bastion.observability import tracing
    from bastion.project import init_project
    from bastion.runtime import AgentApp

    project = init_project(Path(tempfile.mkdtemp(prefix="bastion-tracing-cost-")) / "p")
    apps: dict[bool, Any] = {}
    for traced in (True, False):
        settings = load_settings(project.config)
        settings.rate_limit.default = BENCH_RATE
        settings.observability.tracing_enabled = traced
        tracing._TRACING.clear()  # each app sets up tracing of its own
        apps[traced] = AgentApp(echo_definition(), settings)
    per_call: dict[bool, list[float]] = {True: [], False: []}
    async with AsyncExitStack() as stack:
        for app in apps.values():
            inner = app.server._app
            await stack.enter_async_context(inner.router.lifespan_context(inner))
        for traced in (True, False):  # warm-up
            await drive(apps[traced], project.admin_key, calls // 5)
        for _ in range(rounds):
            for traced in (True, False):
                per_call[traced].append(await drive(apps[traced], project.admin_key, calls))
    on, off = min(per_call[True]), min(per_call[False])
    return {
        "calls_per_round": calls,
        "rounds": rounds,
        "on_us": round(on, 2),
        "off_us": round(off, 2),
        "added_us": round(on - off, 2),
        "median_on_us": round(statistics.median(per_call[True]), 2),
        "median_off_us": round(statistics.median(per_call[False]), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1500, help="calls per round")
    parser.add_argument("--rounds", type=int, default=15, help="rounds per variant")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.calls, args.rounds))))


if __name__ == "__main__":
    main()
