"""`GET /metrics`: the process's Prometheus metrics, behind the same guard as every API route.

`metrics_route(guard, *collectors)` is the route an agent or the gateway mounts. The guard
authenticates the caller (API key or bearer token), authorizes `<agent>.metrics` (granted to the
`monitoring` role and to `admin` by the default policy), rate limits and audits the scrape:
metrics reveal traffic, so they are never served to an anonymous caller. The body is the
default registry (everything counted in this process) plus the process's own scrape-time
collectors, rendered off the event loop because those read the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.core.context import CallContext
from bastion.runtime.http_guard import Guard

METRICS_PATH = "/metrics"
METRICS_ACTION = "metrics"


class _Chain(Collector):
    """A process's own collectors, then the default registry (which then shows the errors
    counted by this very scrape's reads)."""

    def __init__(self, collectors: tuple[Collector, ...]) -> None:
        self._collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()
        yield from REGISTRY.collect()


def exposition_registry(*collectors: Collector) -> CollectorRegistry:
    """A registry rendering the default registry's metrics and `collectors`' (which are not
    registered globally, so several apps in one process each keep their own)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Chain(collectors))
    return registry


def metrics_route(guard: Guard, *collectors: Collector) -> Route:
    """`GET /metrics`, authorized as `<guard's agent>.metrics`."""
    registry = exposition_registry(*collectors)

    async def metrics(_request: Request, _call: CallContext) -> Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Route(METRICS_PATH, guard.protect(METRICS_ACTION, metrics), methods=["GET"])
