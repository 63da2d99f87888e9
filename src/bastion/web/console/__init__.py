"""The operator's console, served by the gateway at `/` (docs/console.md).

Server-rendered pages (Jinja2) with a small page script, every asset served by the gateway;
sign-in turns an API key or a token into a short-lived session cookie (`session`), which
`middleware.ConsoleSessions` hands to the gateway's guard as a bearer token, with CSRF and
WebSocket origin checks. `console` holds sign-in, sign-out and the index; `views/` the views.
"""

from bastion.web.console.console import Console, ConsoleDeps
from bastion.web.console.middleware import ConsoleSessions
from bastion.web.console.pages import VIEWS, Pages
from bastion.web.console.session import Sessions

__all__ = ["VIEWS", "Console", "ConsoleDeps", "ConsoleSessions", "Pages", "Sessions"]
