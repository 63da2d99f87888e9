"""Rendering console pages: the templates, the navigation a principal may see, security headers.

Every page is a Jinja2 template (autoescaped) extending `base.html`. `Pages.render` adds what
every page needs: the signed-in principal, the views it is granted (the navigation shows only
those), the CSRF token for its forms, and the headers: a strict Content-Security-Policy (scripts
and styles from the gateway only, no inline script, no eval), no framing, no sniffing, no
referrer beyond the origin. `Pages.refusal` answers a refused page as a page: 401 sends the
browser to the sign-in form, anything else renders the error with its correlation ID.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bastion.protocol.http_errors import ApiError
from bastion.security import PolicyStore
from bastion.web.console.session import CSRF_COOKIE

AGENT = "gateway"
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


@dataclass(frozen=True, slots=True)
class View:
    """One console view: its RBAC action is `gateway.console_<name>`."""

    name: str
    title: str
    path: str

    @property
    def action(self) -> str:
        return f"console_{self.name}"


VIEWS = (
    View("documents", "Documents", "/console/documents"),
    View("dlq", "Dead letters", "/console/dlq"),
    View("research", "Research", "/console/research"),
    View("security", "Security", "/console/security"),
    View("audit", "Audit", "/console/audit"),
    View("alarms", "Alarms", "/console/alarms"),
)
VIEWS_BY_NAME = {view.name: view for view in VIEWS}
TEMPLATES_DIR = files("bastion.web.console") / "templates"
STATIC_DIR = files("bastion.web.console") / "static"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["urlquote"] = lambda value: quote(str(value), safe="")
    return env


def secure_headers(response: Response) -> Response:
    """`response` with the console's security headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


class Pages:
    """Renders console templates for a principal."""

    def __init__(self, policy: PolicyStore) -> None:
        self.policy = policy
        self.env = _environment()

    def allowed(self, principal: str, action: str) -> bool:
        """Whether `principal` is granted `gateway.<action>`."""
        allowed, _rule = self.policy.decide(principal, AGENT, action)
        return allowed

    def views_for(self, principal: str) -> list[View]:
        """The views `principal` may open, in navigation order."""
        return [view for view in VIEWS if self.allowed(principal, view.action)]

    def render(
        self,
        request: Request,
        template: str,
        *,
        principal: str | None,
        view: str | None = None,
        status: int = 200,
        **context: Any,
    ) -> Response:
        values: dict[str, Any] = {
            "principal": principal,
            "nav": self.views_for(principal) if principal else [],
            "current": view,
            "csrf_token": request.cookies.get(CSRF_COOKIE, ""),
        }
        values.update(context)
        body = self.env.get_template(template).render(**values)
        return secure_headers(HTMLResponse(body, status_code=status))

    def refusal(self, request: Request, err: ApiError, correlation_id: str) -> Response:
        """The refusal renderer for `Guard.protect`: pages instead of JSON errors (401: to the
        sign-in form, back here afterwards)."""
        if err.status == 401:
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            return secure_headers(
                RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            )
        return self.render(
            request,
            "error.html",
            principal=None,
            status=err.status,
            error=err,
            correlation_id=correlation_id,
        )
