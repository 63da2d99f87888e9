"""Delegation, not impersonation: calls made on a principal's behalf (RFC 8693 style).

When the gateway starts work for a user (a research run), it does not lend the user's
credential to the agents, and they do not act with their own authority alone. Each hop
authenticates as itself (its own key or token) and carries, in `X-Bastion-Delegation`, a short
delegation token signed by the built-in token service:

    {"sub": <the asking principal>, "act": {"sub": <the caller>, "act": {"sub": ...}},
     "aud": "<token audience>:delegation", "key_id": <the subject's API key>, "exp", ...}

`act` is the acting chain, nearest first (RFC 8693 section 4.1). The callee checks the
signature, the audience, the times, that the subject's API key is still live, and that the
nearest actor is the principal who authenticated the call: a delegation token lifted from one
agent is refused from any other. A verified delegation is on the request context
(`RequestContext.delegation`), the audit record names it, and the callee's own calls then carry
a new token for the next hop, the chain extended by the callee, never living longer than the one
it received. The separate audience keeps a delegation token from ever serving as an access
token (and an access token from serving as a delegation).

Authorization is unchanged: the caller needs its own grant for the method. A delegation narrows
what the callee does for it (the archivist then shows only the subject's documents); it never
widens what the caller may call.

A token passed on is reused for the same subject, key and chain until `REUSE_FRACTION` of its
lifetime has passed (never past the bound of the call that passes it on, and never once the
signing keys changed), like an access token: one signature per chain instead of one per call,
and the callee's verifier answers a token it has seen from its cache. Nothing is checked less
often: every use still has its signature cached only until `exp`, its subject's key re-checked
for liveness and its nearest actor matched to the authenticated caller.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bastion.config import JWTSettings, TokenServiceSettings
from bastion.core.context import Delegation, Identity, RequestContext, onward_delegation_var
from bastion.protocol.endpoints import DELEGATION_HEADER
from bastion.security.jwt_verify import (
    KEY_ID_CLAIM,
    JwtVerifier,
    KeyRefusal,
    LocalTrust,
    TokenError,
)
from bastion.security.stages import RequestStage, unauthenticated
from bastion.security.token_service import SigningKeys

__all__ = ["DELEGATION_HEADER", "DelegationError", "Delegations", "make_delegation_stage"]

AUDIENCE_SUFFIX = ":delegation"
MAX_CHAIN = 8
# A token passed on is minted again once this fraction of its lifetime has passed.
REUSE_FRACTION = 0.8
# The most tokens kept for reuse (subject, key, chain); the oldest go first.
REUSE_CACHE_SIZE = 4096
_HEADER_KEY = DELEGATION_HEADER.lower()
_PRINCIPAL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")


class DelegationError(Exception):
    """A delegation cannot be made (the subject has no API key behind its credential, or the
    credential has expired). The message says why."""


def _nested(actors: tuple[str, ...]) -> dict[str, Any]:
    act: dict[str, Any] = {"sub": actors[-1]}
    for actor in reversed(actors[:-1]):
        act = {"sub": actor, "act": act}
    return act


def _chain(claims: dict[str, Any]) -> tuple[str, ...]:
    actors: list[str] = []
    act = claims.get("act")
    while act is not None:
        if not isinstance(act, dict) or len(actors) >= MAX_CHAIN:
            raise TokenError("delegation: malformed act chain")
        sub = act.get("sub")
        if not isinstance(sub, str) or not _PRINCIPAL_RE.fullmatch(sub):
            raise TokenError("delegation: an actor without a valid sub")
        actors.append(sub)
        act = act.get("act")
    if not actors:
        raise TokenError("delegation: no act claim")
    return tuple(actors)


@dataclass(frozen=True, slots=True)
class _Minted:
    """A token kept for reuse: its expiry, when to stop reusing it, the key set it was signed
    under."""

    token: str
    exp: int
    reuse_until: float
    keys: object


class Delegations:
    """Mints and verifies delegation tokens with the built-in token service's keys."""

    def __init__(
        self,
        settings: TokenServiceSettings,
        keys: SigningKeys,
        key_refusal: KeyRefusal,
        *,
        jwt_settings: JWTSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._clock = clock
        self.audience = settings.audience + AUDIENCE_SUFFIX
        self._minted: OrderedDict[tuple[str, str, tuple[str, ...]], _Minted] = OrderedDict()
        verifier_settings = (jwt_settings or JWTSettings()).model_copy(update={"issuers": []})
        self._verifier = JwtVerifier(
            verifier_settings,
            local=LocalTrust(
                issuer=settings.issuer,
                audience=self.audience,
                keys=keys.public_jwks,
                key_refusal=key_refusal,
            ),
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"Delegations(audience={self.audience!r})"

    def mint(self, subject: str, *, key_id: str, actors: tuple[str, ...], expires_at: float) -> str:
        """A delegation of `subject` (whose credential is API key `key_id`) to `actors`, the
        nearest first, valid for the token lifetime and never past `expires_at`."""
        return self._mint(subject, key_id=key_id, actors=actors, expires_at=expires_at)[0]

    def token(
        self, subject: str, *, key_id: str, actors: tuple[str, ...], expires_at: float
    ) -> str:
        """`mint`'s delegation, the one minted before for the same subject, key and chain while
        less than `REUSE_FRACTION` of its lifetime has passed, it ends by `expires_at` and the
        signing keys are the ones it was signed with."""
        cache_key = (subject, key_id, actors)
        keys = self._keys.public_jwks()  # the same object until the key set changes
        hit = self._minted.get(cache_key)
        if (
            hit is not None
            and hit.keys is keys
            and hit.exp <= expires_at
            and self._clock() < hit.reuse_until
        ):
            return hit.token
        token, iat, exp = self._mint(subject, key_id=key_id, actors=actors, expires_at=expires_at)
        if hit is not None:
            del self._minted[cache_key]
        elif len(self._minted) >= REUSE_CACHE_SIZE:
            self._minted.popitem(last=False)
        reuse_until = iat + (exp - iat) * REUSE_FRACTION
        self._minted[cache_key] = _Minted(token, exp, reuse_until, keys)
        return token

    def _mint(
        self, subject: str, *, key_id: str, actors: tuple[str, ...], expires_at: float
    ) -> tuple[str, int, int]:
        """A new delegation token, its `iat` and its `exp`."""
        if not actors or len(actors) > MAX_CHAIN:
            raise DelegationError(f"a delegation names 1 to {MAX_CHAIN} actors")
        iat = int(self._clock())
        exp = min(iat + self._settings.ttl_seconds, int(expires_at))
        if exp <= iat:
            raise DelegationError(f"the credential of {subject} has expired: sign in again")
        claims = {
            "iss": self._settings.issuer,
            "aud": self.audience,
            "sub": subject,
            "act": _nested(actors),
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "jti": secrets.token_urlsafe(16),
            KEY_ID_CLAIM: key_id,
        }
        return self._keys.sign(claims), iat, exp

    async def verify(self, token: str, caller: str) -> Delegation:
        """The delegation `token` carries for a call authenticated as `caller`; TokenError (its
        reason for the audit log) when it is forged, expired, revoked or not `caller`'s."""
        identity = await self._verifier.verify(token)
        claims = identity.claims or {}
        actors = _chain(claims)
        if actors[0] != caller:
            raise TokenError(f"delegation: its actor is {actors[0]}, the caller is {caller}")
        assert identity.expires_at is not None  # `exp` is required by the verifier
        return Delegation(
            subject=identity.principal,
            actors=actors,
            expires_at=identity.expires_at,
            token=token,
            key_id=identity.api_key_id,
        )

    def onward(self, delegation: Delegation) -> Callable[[str], str]:
        """The next hop's token for a call made as `actor` on `delegation`'s behalf."""
        if delegation.key_id is None:  # verified delegations always name a key
            raise DelegationError("a delegation without the subject's key cannot be passed on")
        key_id = delegation.key_id

        def token_for(actor: str) -> str:
            return self.token(
                delegation.subject,
                key_id=key_id,
                actors=(actor, *delegation.actors),
                expires_at=delegation.expires_at,
            )

        return token_for

    @contextmanager
    def acting_for(self, identity: Identity) -> Iterator[None]:
        """Within the block, every agent call carries a delegation of `identity`'s principal
        to the calling principal (the gateway starting work for a user)."""
        if identity.api_key_id is None:
            raise DelegationError(
                f"{identity.principal} signed in without a Bastion API key behind its "
                "credential: work on its behalf needs one (use an API key or a token of the "
                "built-in token service)"
            )
        key_id = identity.api_key_id
        expires_at = identity.expires_at
        if expires_at is None:
            expires_at = self._clock() + self._settings.ttl_seconds

        def token_for(actor: str) -> str:
            return self.token(
                identity.principal, key_id=key_id, actors=(actor,), expires_at=expires_at
            )

        reset = onward_delegation_var.set(token_for)
        try:
            yield
        finally:
            onward_delegation_var.reset(reset)


def make_delegation_stage(delegations: Delegations) -> RequestStage:
    """The request stage after authentication: verify a delegation the request carries.

    Without one, the call's own calls carry none. A forged, expired, revoked or misdirected
    delegation refuses the request (401), as a bad credential does.
    """

    async def delegation(req: RequestContext) -> None:
        token = req.headers.get(_HEADER_KEY)
        if token is None:
            onward_delegation_var.set(None)
            return
        if req.identity is None:
            raise unauthenticated("delegation without a credential")
        try:
            verified = await delegations.verify(token.strip(), req.identity.principal)
        except TokenError as exc:
            raise unauthenticated(f"delegation rejected: {exc.reason}") from None
        req.delegation = verified
        onward_delegation_var.set(delegations.onward(verified))

    return delegation
