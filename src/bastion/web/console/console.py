"""The operator's console on the gateway: sign-in and sign-out, the index, and the views' routes.

    GET  /                      to the first view the principal may open (or the sign-in form)
    GET  /login                 the sign-in form (sets the CSRF cookie)
    POST /login                 credential -> session cookie, then to `next` (a local path)
    POST /logout                revoke the session's token, clear the cookie
    GET  /console/session       {"principal", "expires_in"}: the page script's keep-alive
    GET  /static/...            the console's CSS and JavaScript (no CDN)
    /console/<view>...          the views (`bastion.web.console.views`), each authorized as
                                `gateway.console_<view>`

Sign-in and sign-out are audited as `gateway.console_sign_in` / `console_sign_out` (outcome
`ok` or `denied:authenticate`, the reason in the record only). The pages' own calls go through
`Guard.protect` like the JSON API, with a page instead of JSON for a refusal.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bastion.alarms import AlarmService
from bastion.config import Settings
from bastion.core.context import CallContext, Identity
from bastion.runtime import AgentClient, Endpoint, Guard, Handler, request_context
from bastion.security import RevocationStoreError, SecurityStack
from bastion.storage import Queue
from bastion.web.console.middleware import (
    csrf_cookie,
    expired_cookie,
    is_secure,
    request_cookies,
    session_cookie,
)
from bastion.web.console.pages import STATIC_DIR, VIEWS, VIEWS_BY_NAME, Pages, secure_headers
from bastion.web.console.session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Sessions,
    SignInRefused,
    new_csrf_token,
)
from bastion.web.research import ResearchCalls

log = structlog.get_logger("bastion.console")

SIGN_IN_ACTION = "console_sign_in"
SIGN_OUT_ACTION = "console_sign_out"
SESSION_ACTION = "console_session"
REFUSED_MESSAGE = "That API key or token was not accepted. Check it and try again."


@dataclass
class ConsoleDeps:
    """What the views read and call: the gateway's own clients and stores."""

    settings: Settings
    stack: SecurityStack
    guard: Guard
    pages: Pages
    archivist: AgentClient  # the gateway's client of the archivist (its own credential)
    queue: Queue  # the pipeline queue (and its dead-letter queue)
    research: ResearchCalls  # the research agent, acting for the asking principal
    scope: Callable[[CallContext], str | None]  # whose documents a caller sees (None: all)
    alarms: AlarmService  # the gateway's alarm engine (rules, states, history, notifications)
    # A correlation id's audit rows and a trace's spans, for the document detail page (None:
    # the page says they are not available). See `views.documents` for the rows' keys.
    audit_path: Callable[[str], Awaitable[list[dict[str, Any]]]] | None = None
    trace: Callable[[str], Awaitable[list[dict[str, Any]]]] | None = None

    def page(self, view: str, handler: Handler, *, action: str | None = None) -> Endpoint:
        """`handler` as a console endpoint: authorized as `gateway.<action>` (default: the
        view's, `console_<view>`), a refusal answered as a page."""
        return self.guard.protect(
            action or VIEWS_BY_NAME[view].action, handler, refusal=self.pages.refusal
        )


def local_target(value: str | None) -> str:
    """`value` when it is a path on this site, else `/` (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


class Console:
    """The console's routes."""

    def __init__(self, deps: ConsoleDeps) -> None:
        self.deps = deps
        self.sessions = Sessions(deps.stack)
        self.pages = deps.pages

    def routes(self, views: list[BaseRoute]) -> list[BaseRoute]:
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route(
                "/console/session",
                self.deps.guard.protect(SESSION_ACTION, self.session),
                methods=["GET"],
            ),
            Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
            *views,
        ]

    async def _principal(self, request: Request) -> str | None:
        token = request.cookies.get(SESSION_COOKIE)
        if token is None:
            return None
        identity = await self.sessions.identity(token)
        return identity.principal if identity else None

    async def index(self, request: Request) -> Response:
        principal = await self._principal(request)
        if principal is None:
            return secure_headers(RedirectResponse("/login", status_code=303))
        views = self.pages.views_for(principal)
        if not views:
            return self.pages.render(
                request, "no_views.html", principal=principal, status=403, views=VIEWS
            )
        return secure_headers(RedirectResponse(views[0].path, status_code=303))

    async def login_form(self, request: Request) -> Response:
        return self._login_page(request, status=200)

    def _login_page(self, request: Request, *, status: int, error: str | None = None) -> Response:
        csrf = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
        response = self.pages.render(
            request,
            "login.html",
            principal=None,
            status=status,
            error=error,
            next=local_target(request.query_params.get("next")),
            csrf_token=csrf,
        )
        if request.cookies.get(CSRF_COOKIE) != csrf:
            response.headers.append(
                "set-cookie", csrf_cookie(csrf, secure=is_secure(request.scope))
            )
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        credential = form.get("credential")
        target = local_target(str(form.get("next") or "/"))
        call = CallContext(request=request_context(request, "gateway"), method=SIGN_IN_ACTION)
        try:
            if not isinstance(credential, str):
                raise SignInRefused("no credential in the form")
            session = await self.sessions.sign_in(credential)
        except SignInRefused as exc:
            await self.deps.guard.record(call, "denied:authenticate", 401, exc.reason)
            return self._login_page(request, status=401, error=REFUSED_MESSAGE)
        call.request.identity = Identity(principal=session.principal, auth_method="console")
        await self.deps.guard.record(call, "ok", 303)
        secure = is_secure(request.scope)
        response = secure_headers(RedirectResponse(target, status_code=303))
        response.headers.append("set-cookie", session_cookie(session, secure=secure))
        # A new CSRF token with every session: one seen before sign-in is not reused after it.
        response.headers.append("set-cookie", csrf_cookie(new_csrf_token(), secure=secure))
        return response

    async def logout(self, request: Request) -> Response:
        token = request_cookies(request.scope["headers"]).get(SESSION_COOKIE)
        call = CallContext(request=request_context(request, "gateway"), method=SIGN_OUT_ACTION)
        principal = None
        if token is not None:
            try:
                principal = await self.sessions.sign_out(token)
            except RevocationStoreError as exc:
                log.error("sign-out failed: the token could not be revoked", error=str(exc))
                await self.deps.guard.record(call, "error:revocation_unavailable", 503, str(exc))
                return self.pages.render(
                    request,
                    "error.html",
                    principal=None,
                    status=503,
                    error=None,
                    message="Signing out failed: the revocation list cannot be reached. "
                    "Try again; the session ends by itself when its token expires.",
                    correlation_id=call.correlation_id,
                )
        if principal is not None:
            call.request.identity = Identity(principal=principal, auth_method="console")
        await self.deps.guard.record(call, "ok", 303)
        secure = is_secure(request.scope)
        response = secure_headers(RedirectResponse("/login", status_code=303))
        response.headers.append("set-cookie", expired_cookie(SESSION_COOKIE, secure=secure))
        response.headers.append("set-cookie", expired_cookie(CSRF_COOKIE, secure=secure))
        return response

    async def session(self, _request: Request, call: CallContext) -> Response:
        identity = call.request.identity
        assert identity is not None  # the guard authenticated the call
        remaining = max(0, int((identity.expires_at or time.time()) - time.time()))
        return secure_headers(JSONResponse({"principal": call.principal, "expires_in": remaining}))
