"""Keeping a long-lived connection (the gateway's event stream) to the rules a request obeys.

A request is authenticated and authorized once; a stream lives on. `watch` re-checks it every
`CredentialCheck.interval` seconds and returns the refusal that must end it:

- its credential lapsed (401): past its own expiry (the API key's, or the token's `exp`), or
  the API key behind it (the key itself, or the key a token of the built-in token service was
  exchanged for) is revoked, expired or gone. Keys are read through the key store's cached
  lookup, with records no older than the interval, and the interval is half of
  `auth.api_key_cache_seconds` (at least `MIN_INTERVAL_SECONDS`): a revoked key's streams end
  within the same window as its requests (2 s by default). Tokens of external issuers have no
  local key: only their `exp` is re-checked;
- the policy no longer allows the action (403), by a principal's or a role's grant taken away:
  seen within `policy.reload_check_seconds` + the interval (2 s by default);
- the check itself failed (503), e.g. the database is unreachable: fail closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bastion.core.context import Identity
from bastion.security.apikeys import ApiKeyStore
from bastion.security.rbac import PolicyStore
from bastion.security.stages import Denied, forbidden, unauthenticated, unavailable

MIN_INTERVAL_SECONDS = 0.25


class CredentialCheck:
    """Whether an authenticated identity's credential still holds, cheaply (cached lookups)."""

    def __init__(self, api_keys: ApiKeyStore, *, clock: Callable[[], float] = time.time) -> None:
        self._api_keys = api_keys
        self._clock = clock

    def __repr__(self) -> str:
        return f"CredentialCheck(interval={self.interval})"

    @property
    def interval(self) -> float:
        """Seconds between two checks of an open connection (see the module doc)."""
        return max(self._api_keys.cache_seconds / 2, MIN_INTERVAL_SECONDS)

    async def refusal(self, identity: Identity) -> str | None:
        """Why the identity's credential must be refused now, or None while it holds."""
        if identity.expires_at is not None and self._clock() >= identity.expires_at:
            return f"{identity.auth_method} credential expired"
        if identity.api_key_id is None:
            return None
        return await self._api_keys.refusal(
            identity.api_key_id, identity.principal, max_age=self.interval
        )


async def watch(
    identity: Identity,
    *,
    agent: str,
    action: str,
    credentials: CredentialCheck,
    policy: PolicyStore,
    each: Callable[[], object] | None = None,
) -> Denied:
    """Wait until `identity` may no longer hold a connection authorized as `agent.action`;
    the refusal says why (401 lapsed credential, 403 grant withdrawn, 503 check failed).
    `each` runs after every check that passed (to follow other grants on the same clock)."""
    while True:
        await asyncio.sleep(credentials.interval)
        try:
            reason = await credentials.refusal(identity)
        except Exception as exc:  # any store failure: fail closed
            return unavailable("authenticate", f"credential check failed ({type(exc).__name__})")
        if reason is not None:
            return unauthenticated(reason)
        allowed, why = policy.decide(identity.principal, agent, action)
        if not allowed:
            return forbidden(why)
        if each is not None:
            each()
