"""Console sign-in sessions: an API key or a built-in token in, a short-lived token cookie out.

A session is a token of the gateway's built-in token service (`auth.token_service`), exchanged
for the credential the operator signed in with. It names the API key behind it (claim
`key_id`), so revoking that key ends the session everywhere, and it never outlives the key. The
cookie holding it is HttpOnly, SameSite=Strict, Secure when the gateway is served over TLS, and
lives as long as the token; `Sessions.renew` issues a fresh token once half of the old one's
lifetime has passed (`ConsoleSessions` does it on any authenticated console response).

Signing out lists the token's `jti` in the verifier's denylist (in Redis when the rate limiter
uses Redis, so every gateway replica refuses the old cookie from the next request on); the API
key itself stays valid.

A sign-in is refused with one message whatever the reason (no oracle for which keys exist); the
reason goes to the audit record only.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from bastion.core.context import Identity
from bastion.security import KEY_PREFIX, RevocationStoreError, SecurityStack, TokenError

SESSION_COOKIE = "bastion_session"
CSRF_COOKIE = "bastion_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Longest credential accepted at sign-in (a JWT with room to spare); anything longer is refused.
MAX_CREDENTIAL_CHARS = 8192


class SignInRefused(Exception):
    """The credential was not accepted; `reason` is for the audit record, never the page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in session: the cookie's token, its lifetime, and who it is for."""

    token: str
    max_age: int
    principal: str


def new_csrf_token() -> str:
    """A fresh random CSRF token (double-submit: cookie and form field or header)."""
    return secrets.token_urlsafe(24)


class Sessions:
    """Signs operators in and out, and renews their session tokens."""

    def __init__(self, stack: SecurityStack) -> None:
        self._stack = stack

    async def sign_in(self, credential: str) -> Session:
        """A session for an API key or a token of the built-in token service."""
        credential = credential.strip()
        if not credential or len(credential) > MAX_CREDENTIAL_CHARS:
            raise SignInRefused("empty or oversized credential")
        if credential.startswith(KEY_PREFIX):
            identity, reason = await self._stack.api_keys.verify(credential)
            if identity is None:
                raise SignInRefused(f"api key: {reason}")
        else:
            identity = await self._verified(credential)
        return self._issue(identity)

    async def identity(self, token: str) -> Identity | None:
        """Who a session token is for, or None when it is not (or no longer) valid."""
        try:
            return await self._verified(token)
        except SignInRefused:
            return None

    async def renew(self, token: str) -> Session | None:
        """A fresh session when `token` is valid and past half its lifetime, else None."""
        identity = await self.identity(token)
        if identity is None or identity.expires_at is None:
            return None
        claims = identity.claims or {}
        issued = claims.get("iat")
        if not isinstance(issued, int | float):
            return None
        if time.time() < issued + (identity.expires_at - issued) / 2:
            return None
        try:
            return self._issue(identity)
        except SignInRefused:
            return None

    async def sign_out(self, token: str) -> str | None:
        """Revoke the session's token; the principal it was for (None: it was not valid)."""
        identity = await self.identity(token)
        if identity is None:
            return None
        jti = (identity.claims or {}).get("jti")
        denylist = self._stack.jwt.denylist
        if denylist is None or not isinstance(jti, str) or identity.expires_at is None:
            raise RevocationStoreError("token revocation is not configured")
        await denylist.revoke(jti, identity.expires_at)
        return identity.principal

    async def _verified(self, token: str) -> Identity:
        try:
            identity = await self._stack.jwt.verify(token)
        except TokenError as exc:
            raise SignInRefused(f"token: {exc.reason}") from None
        if identity.api_key_id is None:
            raise SignInRefused("token: not issued by the built-in token service")
        return identity

    def _issue(self, identity: Identity) -> Session:
        key_id = identity.api_key_id
        if key_id is None:
            raise SignInRefused("credential names no API key")
        try:
            token, lifetime = self._stack.token_service.issue(
                identity.principal, key_id=key_id, not_after=identity.expires_at
            )
        except ValueError as exc:
            raise SignInRefused(str(exc)) from None
        return Session(token=token, max_age=lifetime, principal=identity.principal)
