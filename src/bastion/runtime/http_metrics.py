"""Counting every HTTP response of an app by route template and status class.

`count_responses(app, agent, router=..., paths=...)` wraps an ASGI app so that each HTTP
response and each WebSocket handshake answer counts once in
`bastion_http_responses_total{agent, route, status_class}`:

* `route` is the path template of the route that serves the path (`/api/documents/{id}`, a
  `Mount`'s prefix joined to its inner route's), one of the fixed `paths` the app serves outside
  its router (the agent server's `/message`), or `unmatched` when none does (the 404 of an
  unknown path). Never the raw path: label values stay bounded whatever callers send. A route
  that matches the path but not the method (405) still names its template.
* `status_class` is `1xx` to `5xx`: the status of the response start; an accepted WebSocket
  counts as `1xx` (101), a handshake closed before it was accepted as `4xx` (the server answers
  403), a denial response by its status. An app that raises before answering counts as `5xx`
  (the server answers 500); a request whose client left before any answer is not counted.

The route table is read from `router` (a Starlette app or router; default `app` itself) on each
request, like the WAF's path allow-list, so the wrapper may sit outside layers that have no
routes of their own: placed outermost it counts the WAF's refusals (403, 413, 429) too. The
templates found for a path are cached (bounded), and so are the counter children, so the
common request costs two dictionary look-ups.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import Counter
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.observability.metrics import http_response_counter

__all__ = ["UNMATCHED", "RouteTemplates", "count_responses", "status_class"]

UNMATCHED = "unmatched"  # the route label of a path no route serves
_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_CACHE_LIMIT = 4096  # (scope type, path) pairs remembered; paths with parameters are unbounded


def status_class(status: int) -> str:
    """`2xx` for 204 and so on; a status outside 100-599 counts as a server error."""
    return _CLASSES.get(status // 100, "5xx")


def _routes_of(router: object) -> Sequence[BaseRoute]:
    return list(getattr(router, "routes", ()))


def _template(routes: Iterable[BaseRoute], scope: Scope) -> str | None:
    """The template of the route Starlette would choose for `scope`: the first full match, else
    the first partial one (the path matched, the method did not)."""
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        found = _route_template(route, {**scope, **child})
        if match is Match.FULL and found is not None:
            return found
        partial = partial or found
    return partial


def _route_template(route: BaseRoute, scope: Scope) -> str | None:
    prefix: str = getattr(route, "path", "")
    inner = _routes_of(route)
    if not inner:  # a Route, a WebSocketRoute, or a Mount of an app without routes
        return prefix or None
    found = _template(inner, scope)  # a Mount or Host: the inner route decides
    return None if found is None else prefix + found


class RouteTemplates:
    """The route label of a request: its route's template, a fixed path, or `unmatched`."""

    __slots__ = ("_cache", "_fixed", "_router")

    def __init__(self, router: object, paths: Iterable[str] = ()) -> None:
        self._router = router
        self._fixed = frozenset(paths)
        self._cache: dict[tuple[str, str], str] = {}

    def label(self, scope: Scope) -> str:
        path: str = scope["path"]
        if path in self._fixed:
            return path
        key = (scope["type"], path)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        found = _template(_routes_of(self._router), scope)
        if found is None:  # not cached: an unknown path must not fill the cache
            return UNMATCHED
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = found
        return found


class _ResponseCounter:
    """ASGI middleware: counts each answer (see the module docstring)."""

    def __init__(self, app: ASGIApp, agent: str, templates: RouteTemplates) -> None:
        self.app = app
        self.agent = agent
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        route = self.templates.label(scope)
        counted = False

        def count(cls: str) -> None:
            nonlocal counted
            counted = True
            self._counter(route, cls).inc()

        async def send_counted(message: Message) -> None:
            if not counted:
                answer = message["type"]
                if answer in ("http.response.start", "websocket.http.response.start"):
                    count(status_class(message["status"]))
                elif answer == "websocket.accept":
                    count("1xx")
                elif answer == "websocket.close":
                    count("4xx")  # closed before it was accepted: the server answers 403
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        except Exception:
            if not counted:
                count("5xx")  # the server answers 500
            raise

    def _counter(self, route: str, cls: str) -> Counter:
        return http_response_counter(self.agent, route, cls)


def count_responses(
    app: ASGIApp, agent: str, *, router: object | None = None, paths: Iterable[str] = ()
) -> ASGIApp:
    """`app` counting its responses as `agent` (see the module docstring). `router` holds the
    routes whose templates label them (default: `app`); `paths` are fixed paths served outside
    it, each its own label."""
    return _ResponseCounter(app, agent, RouteTemplates(app if router is None else router, paths))
