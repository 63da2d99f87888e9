"""The console's views, one module each; `view_routes` gathers their routes.

A view module exports `routes(deps: ConsoleDeps) -> list[BaseRoute]`; each endpoint is wrapped
with `deps.page(view, handler)`, so it is authorized as `gateway.console_<view>` (or a stricter
action, such as redriving dead letters) and audited like any gateway route.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from bastion.web.console.console import ConsoleDeps
from bastion.web.console.views import alarms, audit, dlq, documents, research, security


def view_routes(deps: ConsoleDeps) -> list[BaseRoute]:
    """Every view's routes."""
    routes: list[BaseRoute] = []
    routes += documents.routes(deps)
    routes += research.routes(deps)
    routes += dlq.routes(deps)
    routes += alarms.routes(deps)
    routes += security.routes(deps)
    routes += audit.routes(deps)
    return routes
