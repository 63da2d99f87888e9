"""The console's Alarms view: the alarm engine's rules and states, targets, history and webhook
deliveries, read-only.

    GET /console/alarms             the page
    GET /console/alarms?fragment=1  only its live part (`#alarms-live`), which the page script
                                    (`static/alarms.js`) fetches every refresh and swaps in

Both are authorized as `gateway.console_alarms`; nothing here changes the engine's state.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.core.context import CallContext
from bastion.web.console.console import ConsoleDeps
from bastion.web.console.views.alarm_board import board, iso, latest_changes, stamp, value_text

VIEW = "alarms"
SHOWN = 100  # state changes and deliveries listed, newest first
MIN_REFRESH_MS = 1_000
MAX_REFRESH_MS = 15_000


def refresh_ms(interval_seconds: float) -> int:
    """How often the page refreshes: the evaluation interval, within 1 to 15 seconds."""
    return int(min(max(interval_seconds * 1000, MIN_REFRESH_MS), MAX_REFRESH_MS))


class AlarmsView:
    """Renders the engine's snapshot for a principal granted the view."""

    def __init__(self, deps: ConsoleDeps) -> None:
        self.deps = deps

    async def page(self, request: Request, call: CallContext) -> Response:
        alarms = self.deps.alarms
        settings = self.deps.settings.alarms
        view = board(alarms.snapshot(SHOWN), latest_changes(alarms.history(settings.history_size)))
        fragment = request.query_params.get("fragment") == "1"
        return self.deps.pages.render(
            request,
            "alarms_live.html" if fragment else "alarms.html",
            principal=call.principal,
            view=VIEW,
            board=view,
            webhooks=len(settings.webhooks),
            refresh_ms=refresh_ms(view.interval_seconds),
            now_text=stamp(time.time()),
            stamp=stamp,
            iso=iso,
            value_text=value_text,
        )


def routes(deps: ConsoleDeps) -> list[BaseRoute]:
    view = AlarmsView(deps)
    return [Route("/console/alarms", deps.page(VIEW, view.page), methods=["GET"])]
