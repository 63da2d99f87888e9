"""The console's Security view: refusals and interventions over a time range, as charts.

    GET /console/security?range=1h|6h|24h|7d     (default 24h, ending now)
    GET /console/security?since=...&until=...    a range of its own (epoch seconds or UTC ISO
                                                 times; `until` defaults to now), 31 days at most

Authorized as `gateway.console_security`. The page draws `security_summary` of the audit trail
(`bastion.security`): authentication failures by reason, RBAC denials by principal and method,
rate-limit hits, WAF blocks by rule, guardrail actions and findings by type, each with its
series over time (`security_charts`). Every bar links to the Audit view listing its records. A
bad range is a 400 page saying what to write.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.core.context import CallContext
from bastion.security import security_summary
from bastion.storage import shared_engine
from bastion.web.console.console import ConsoleDeps
from bastion.web.console.views.instants import parse_instant, utc_text
from bastion.web.console.views.security_charts import shown_charts

VIEW = "security"
HOUR = 3600.0
# range -> (seconds, buckets): buckets of 5 minutes, 15 minutes, 1 hour and 6 hours.
RANGES = {
    "1h": (HOUR, 12),
    "6h": (6 * HOUR, 24),
    "24h": (24 * HOUR, 24),
    "7d": (7 * 24 * HOUR, 28),
}
RANGE_LABELS = {
    "1h": "Last hour",
    "6h": "Last 6 hours",
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
}
DEFAULT_RANGE = "24h"
CUSTOM_BUCKETS = 24
MAX_CUSTOM_SECONDS = 31 * 24 * HOUR


@dataclass(frozen=True, slots=True)
class TimeRange:
    since: float
    until: float
    buckets: int
    name: str | None  # one of RANGES, or None for since/until of the caller's own


def time_range(params: dict[str, str], now: float) -> TimeRange:
    """The range a query asks for; ValueError saying what to write instead."""
    unknown = sorted(set(params) - {"range", "since", "until"})
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}: use range, or since and until")
    if "since" in params or "until" in params:
        if "range" in params:
            raise ValueError("give either range or since/until, not both")
        if "since" not in params:
            raise ValueError("since is missing: give the start of the range")
        since = parse_instant("since", params["since"])
        until = parse_instant("until", params["until"]) if "until" in params else now
        if not until > since:
            raise ValueError("until must be after since")
        if until - since > MAX_CUSTOM_SECONDS:
            raise ValueError("a range can span 31 days at most")
        return TimeRange(since, until, CUSTOM_BUCKETS, None)
    name = params.get("range", DEFAULT_RANGE)
    if name not in RANGES:
        raise ValueError(f"range must be one of {', '.join(RANGES)}")
    seconds, buckets = RANGES[name]
    return TimeRange(now - seconds, now, buckets, name)


class SecurityView:
    """The handler of the Security view."""

    def __init__(self, deps: ConsoleDeps) -> None:
        self.deps = deps

    async def index(self, request: Request, call: CallContext) -> Response:
        params = {k: v for k, v in request.query_params.items() if v}
        try:
            rng = time_range(params, time.time())
        except ValueError as err:
            return self._render(request, call, status=400, error=str(err), selected=None)
        engine = shared_engine(self.deps.settings.database_url())
        summary = await asyncio.to_thread(
            security_summary, engine, rng.since, rng.until, rng.buckets
        )
        return self._render(
            request,
            call,
            status=200,
            selected=rng.name,
            since=utc_text(rng.since),
            until=utc_text(rng.until),
            bucket_minutes=round(summary.bucket_seconds / 60),
            charts=shown_charts(summary),
        )

    def _render(
        self,
        request: Request,
        call: CallContext,
        *,
        status: int,
        selected: str | None,
        **kw: object,
    ) -> Response:
        return self.deps.pages.render(
            request,
            "security.html",
            principal=call.principal,
            view=VIEW,
            status=status,
            ranges=list(RANGE_LABELS.items()),
            selected=selected,
            **kw,
        )


def routes(deps: ConsoleDeps) -> list[BaseRoute]:
    view = SecurityView(deps)
    return [Route("/console/security", deps.page(VIEW, view.index), methods=["GET"])]
