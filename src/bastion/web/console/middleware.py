"""The session cookie as a credential: `ConsoleSessions`, an ASGI layer in front of the gateway.

For a request that carries the session cookie and no credential of its own (no `X-API-Key`,
`Authorization` or WebSocket token), the cookie's token is handed on as `Authorization: Bearer`,
so every route (console pages, the JSON API, both WebSockets) authenticates, authorizes, rate
limits and audits it like any bearer token. On top of that:

- **CSRF.** A state-changing request (anything but GET, HEAD, OPTIONS) made with the cookie, and
  every sign-in and sign-out, must carry the CSRF token, equal to the `bastion_csrf` cookie, in
  `X-CSRF-Token` or in a form field `csrf_token` (double submit; a small form body is read here
  and replayed to the app), and an `Origin` header, when sent, must be the gateway's own. Else
  403 `csrf_failed`, before the app sees the request.
- **WebSocket origin.** A WebSocket opened with the cookie must come from the gateway's own
  origin (or one in `console.allowed_origins`); else the handshake is accepted and closed at
  once with 4003, as the gateway's other WebSocket refusals are.
- **Renewal.** A successful answer to a request authenticated by the cookie gets a fresh cookie
  once half of the token's lifetime has passed (`Sessions.renew`).

A request with a credential of its own ignores the cookie: scripts never need a CSRF token.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.protocol.http_errors import ApiError, error_response
from bastion.web.console.session import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    Sessions,
)
from bastion.web.ws_auth import QUERY_TOKEN_KEY

log = structlog.get_logger("bastion.console")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths whose POSTs need the CSRF token even without a session (signing in and out).
CSRF_ALWAYS = frozenset({"/login", "/logout"})
MAX_FORM_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
_OWN_CREDENTIALS = frozenset({b"authorization", b"x-api-key"})

CSRF_FAILED = ApiError(
    403,
    "csrf_failed",
    "this request lacks a valid CSRF token: reload the page and try again",
    outcome="denied:csrf",
)
CROSS_ORIGIN_CLOSE = (4003, "cross-origin session refused: open the console from its own origin")


def request_cookies(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's cookies by name (a malformed header counts as none)."""
    jar: SimpleCookie = SimpleCookie()
    for name, value in headers:
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:
                continue
    return {name: morsel.value for name, morsel in jar.items()}


def session_cookie(session: Session, *, secure: bool) -> str:
    """The `Set-Cookie` value holding a session's token."""
    return _cookie(SESSION_COOKIE, session.token, max_age=session.max_age, secure=secure)


def csrf_cookie(token: str, *, secure: bool) -> str:
    """The `Set-Cookie` value holding the CSRF token (a browser-session cookie)."""
    return _cookie(CSRF_COOKIE, token, max_age=None, secure=secure)


def expired_cookie(name: str, *, secure: bool) -> str:
    """A `Set-Cookie` value that deletes cookie `name`."""
    return _cookie(name, "", max_age=0, secure=secure)


def _cookie(name: str, value: str, *, max_age: int | None, secure: bool) -> str:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def is_secure(scope: Scope) -> bool:
    """Whether the request came over TLS (cookies are then marked Secure)."""
    return scope.get("scheme") in ("https", "wss")


def own_origin(scope: Scope) -> str | None:
    """The gateway's origin as the browser sees it (scheme and Host header)."""
    host = _header(scope, b"host")
    if host is None:
        return None
    scheme = "https" if is_secure(scope) else "http"
    return f"{scheme}://{host}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class ConsoleSessions:
    """The ASGI layer described in the module docstring."""

    def __init__(
        self, app: ASGIApp, sessions: Sessions, *, allowed_origins: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.allowed_origins = frozenset(o.rstrip("/") for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = list(scope.get("headers", ()))
        cookies = request_cookies(headers)
        token = cookies.get(SESSION_COOKIE)
        own = any(name in _OWN_CREDENTIALS for name, _ in headers)
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, token if not own else None)
            return
        method = scope.get("method", "GET")
        needs_csrf = method not in SAFE_METHODS and (
            scope.get("path") in CSRF_ALWAYS or (token is not None and not own)
        )
        if needs_csrf:
            receive, ok = await self._check_csrf(scope, receive, cookies)
            if not ok:
                log.warning("console request refused", reason="csrf", path=scope.get("path"))
                await error_response(CSRF_FAILED, None)(scope, receive, send)
                return
        if token is None or own:
            await self.app(scope, receive, send)
            return
        scope = {**scope, "headers": [*headers, (b"authorization", b"Bearer " + token.encode())]}
        await self.app(scope, receive, self._renewing(scope, send, token))

    def _origin_ok(self, scope: Scope) -> bool:
        origin = _header(scope, b"origin")
        if origin is None:
            return True
        origin = origin.rstrip("/")
        return origin == own_origin(scope) or origin in self.allowed_origins

    async def _check_csrf(
        self, scope: Scope, receive: Receive, cookies: dict[str, str]
    ) -> tuple[Receive, bool]:
        expected = cookies.get(CSRF_COOKIE)
        if not expected or not self._origin_ok(scope):
            return receive, False
        sent = _header(scope, CSRF_HEADER.encode())
        if sent is None and (_header(scope, b"content-type") or "").startswith(FORM_TYPE):
            body, receive = await _buffered(receive)
            if body is None:
                return receive, False
            sent = dict(parse_qsl(body.decode("latin-1"))).get(CSRF_FIELD)
        ok = sent is not None and hmac.compare_digest(sent.encode(), expected.encode())
        return receive, ok

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, token: str | None
    ) -> None:
        offered = _header(scope, b"sec-websocket-protocol") or ""
        if token is None or scope.get(QUERY_TOKEN_KEY) or "bearer." in offered:
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is None or not self._origin_ok(scope):
            await _refuse_websocket(receive, send)
            return
        headers = [*scope.get("headers", ()), (b"authorization", b"Bearer " + token.encode())]
        await self.app({**scope, "headers": headers}, receive, send)

    def _renewing(self, scope: Scope, send: Send, token: str) -> Send:
        secure = is_secure(scope)

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                renewed = await self.sessions.renew(token)
                if renewed is not None:
                    headers = MutableHeaders(scope=message)
                    headers.append("set-cookie", session_cookie(renewed, secure=secure))
            await send(message)

        return wrapped


async def _buffered(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole request body (None when over `MAX_FORM_BYTES`), and a `receive` replaying it."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None, receive
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _refuse_websocket(receive: Receive, send: Send) -> None:
    """Accept, then close at once with 4003 (so that a browser sees the code)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    code, reason = CROSS_ORIGIN_CLOSE
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code, "reason": reason})
