"""Rule 0: the allow-list of application paths (anything else: HTTP 404).

The list is the wrapped app's own route table, read on every request so that routes added
later are allowed without configuration, plus `waf.extra_paths` (Starlette path syntax,
`/static/{rest:path}`) and any fixed paths the caller serves outside its router (the agent
server's `/message`). A route that matches the path but not the method still counts as
allowed: the app answers 405 itself. HTTP routes allow HTTP requests only and WebSocket
routes WebSocket handshakes only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from starlette.routing import BaseRoute, Match, compile_path
from starlette.types import Scope

RULE_ID = "path_allowlist.unknown_path"

RouteSource = Callable[[], Sequence[BaseRoute]]


def app_routes(app: object) -> RouteSource:
    """The live route table of a Starlette app (empty for an app without one)."""

    def routes() -> Sequence[BaseRoute]:
        return list(getattr(app, "routes", ()))

    return routes


class PathAllowList:
    __slots__ = ("_paths", "_routes")

    def __init__(self, routes: RouteSource, paths: Iterable[str] = ()) -> None:
        self._routes = routes
        self._paths: tuple[re.Pattern[str], ...] = tuple(compile_path(p)[0] for p in paths)

    def allows(self, scope: Scope) -> bool:
        """Whether an app route (or an extra path) serves this request's path."""
        path = scope["path"]
        if any(p.match(path) for p in self._paths):
            return True
        return any(route.matches(scope)[0] is not Match.NONE for route in self._routes())

    def allows_path(self, method: str, path: str) -> bool:
        """The same check for a recorded HTTP request (offline evaluation)."""
        scope: Scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        return self.allows(scope)
