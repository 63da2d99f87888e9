"""JWT bearer verification: turns a token from a trusted issuer into an `Identity`.

Trusted issuers are the built-in token service (always) and the issuers configured under
`auth.jwt.issuers`. The issuer is chosen by the token's `iss` claim among those, and its keys
come only from its configured JWKS location: key locations in the token header (`jku`, `x5u`,
`jwk`, `x5c`) are refused outright, as is any `crit` extension. Only RS256, ES256 and EdDSA are
accepted, and the algorithm must be the one bound to the key named by `kid`.

Successfully verified tokens are cached (bounded, keyed by the exact token) until their `exp`;
every cache hit re-checks `exp` against the clock, and a JWKS refresh that drops or replaces
a key invalidates the cached tokens of that issuer.

A token of the built-in token service never outlives the API key it was exchanged for: it names
that key in its `key_id` claim (a token without one is refused), and every use, cache hits
included, asks the key store whether the key is still live (`LocalTrust.key_refusal`, the key
store's cached lookup: a revoked key's tokens fail within `auth.api_key_cache_seconds`, like
the key). Tokens of external issuers have no local key and are checked by signature and time.

Revoked tokens (`bastion.security.revocation`): every use, cache hits included, asks the
denylist whether the token's `jti` was revoked; a revoked token, or one whose revocation state
cannot be read (store unreachable), is refused. A token without a `jti` cannot be revoked: it is
accepted unless `auth.jwt.require_jti` is set (the built-in token service always sets one).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt

from bastion.config import ConfigError, JWTSettings
from bastion.core.context import Identity
from bastion.security.apikeys import valid_key_id
from bastion.security.jwks import (
    ALLOWED_ALGORITHMS,
    JwksCache,
    JwksError,
    VerificationKey,
    parse_jwks,
    valid_kid,
)
from bastion.security.revocation import RevocationStoreError, TokenDenylist, valid_jti

DEFAULT_CACHE_SIZE = 10_000

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_SAFE_RE = re.compile(r"[A-Za-z0-9._+-]{1,32}")
# Header members that carry or point to keys: trusting them would let a token pick its own key.
_KEY_LOCATION_HEADERS = ("jku", "x5u", "jwk", "x5c")
_ALLOWED_TYP = frozenset({"jwt", "at+jwt", "application/jwt", "application/at+jwt"})
# External subjects and client ids: printable, bounded.
_EXTERNAL_ID_RE = re.compile(r"[^\x00-\x1f\x7f]{1,256}")
# Local principal names, as the API-key store allows them (never containing ':').
_LOCAL_PRINCIPAL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
# The claim naming the API key a built-in token was exchanged for.
KEY_ID_CLAIM = "key_id"

# `(key_id, principal)` -> why a token from that key must be refused now, or None.
KeyRefusal = Callable[[str, str], Awaitable[str | None]]


class TokenError(Exception):
    """A bearer token was refused. `reason` is for the audit log; it never holds the token."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class IssuerUnavailable(TokenError):
    """The issuer's keys could not be obtained, so the token could not be checked."""


@dataclass(frozen=True, slots=True)
class LocalTrust:
    """The built-in token service, as the verifier sees it: its public keys, in-process, and
    the check that the API key behind one of its tokens is still live."""

    issuer: str
    audience: str
    keys: Callable[[], dict[str, Any]]
    key_refusal: KeyRefusal


class _KeySource(Protocol):
    revocations: int

    async def get(self, kid: str) -> VerificationKey | None: ...


class _LocalKeys:
    """The token service's public keys, re-parsed only when it hands out a new set."""

    def __init__(self, trust: LocalTrust) -> None:
        self._trust = trust
        self._source: object = None
        self._keys: dict[str, VerificationKey] = {}
        self.revocations = 0

    async def get(self, kid: str) -> VerificationKey | None:
        data = self._trust.keys()
        if data is not self._source:
            try:
                keys = parse_jwks(data, allow_empty=True)
            except JwksError as exc:
                raise JwksError(f"built-in token service: {exc}") from None
            old = self._keys
            if any(k not in keys or keys[k].fingerprint != v.fingerprint for k, v in old.items()):
                self.revocations += 1
            self._keys, self._source = keys, data
        return self._keys.get(kid)


@dataclass(frozen=True, slots=True)
class _Issuer:
    name: str
    issuer: str
    audience: str | list[str] | None
    client_ids: frozenset[str] | None
    token_use: str | None
    keys: _KeySource
    local: bool


@dataclass(frozen=True, slots=True)
class _Verified:
    identity: Identity
    exp: float
    keys: _KeySource
    revocations: int


def _safe(value: object) -> str:
    """An attacker-supplied header value, fit for a log line (or '?')."""
    return value if isinstance(value, str) and _SAFE_RE.fullmatch(value) else "?"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("duplicate member")
        out[k] = v
    return out


def _segment(seg: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))
        data = json.loads(raw, object_pairs_hook=_no_duplicates)
    except (binascii.Error, ValueError, RecursionError):
        raise TokenError("malformed token") from None
    if not isinstance(data, dict):
        raise TokenError("malformed token")
    return data


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


class JwtVerifier:
    """Verifies bearer JWTs from the built-in token service and the configured issuers."""

    def __init__(
        self,
        settings: JWTSettings,
        *,
        local: LocalTrust | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        cache_size: int = DEFAULT_CACHE_SIZE,
        denylist: TokenDenylist | None = None,
    ) -> None:
        self._clock = clock
        self._denylist = denylist
        self._require_jti = settings.require_jti
        self._leeway = float(settings.leeway_seconds)
        self._max_bytes = settings.max_token_bytes
        self._cache_size = cache_size
        self._cache: dict[str, _Verified] = {}
        self._issuers: dict[str, _Issuer] = {}
        self._key_refusal = local.key_refusal if local is not None else None
        if local is not None:
            self._issuers[local.issuer] = _Issuer(
                name="local",
                issuer=local.issuer,
                audience=local.audience,
                client_ids=None,
                token_use=None,
                keys=_LocalKeys(local),
                local=True,
            )
        names: set[str] = set()
        for cfg in settings.issuers:
            where = f"auth.jwt.issuers[{cfg.name}]"
            if cfg.name in names:
                raise ConfigError(f"{where}: the issuer name {cfg.name!r} is used twice")
            names.add(cfg.name)
            if cfg.issuer in self._issuers:
                raise ConfigError(
                    f"{where}: issuer {cfg.issuer!r} is already trusted (by another entry "
                    "or as the built-in token service); each issuer must appear once"
                )
            if not cfg.audience and not cfg.client_ids:
                raise ConfigError(
                    f"{where}: set audience or client_ids, so that tokens the issuer mints "
                    "for other applications are refused"
                )
            cache = JwksCache(
                cfg.jwks_url,
                name=cfg.name,
                http=http,
                clock=clock,
                cache_seconds=settings.jwks_cache_seconds,
                cooldown_seconds=settings.jwks_refresh_cooldown_seconds,
            )
            self._issuers[cfg.issuer] = _Issuer(
                name=cfg.name,
                issuer=cfg.issuer,
                audience=cfg.audience or None,
                client_ids=frozenset(cfg.client_ids) if cfg.client_ids else None,
                token_use=cfg.token_use,
                keys=cache,
                local=False,
            )

    def __repr__(self) -> str:
        return f"JwtVerifier(issuers={sorted(i.name for i in self._issuers.values())!r})"

    def jwks_cache(self, name: str) -> JwksCache | None:
        """The JWKS cache of a configured issuer, by name (for health checks and tests)."""
        for issuer in self._issuers.values():
            if issuer.name == name and isinstance(issuer.keys, JwksCache):
                return issuer.keys
        return None

    def clear_cache(self) -> None:
        self._cache.clear()

    @property
    def denylist(self) -> TokenDenylist | None:
        """Where revoked token ids are listed (None: revocation is not checked)."""
        return self._denylist

    async def aclose(self) -> None:
        """Drop cached tokens and close the denylist. The HTTP client, when one was passed in,
        belongs to the caller."""
        self._cache.clear()
        if self._denylist is not None:
            await self._denylist.aclose()

    async def verify(self, token: str) -> Identity:
        """The caller's identity, or TokenError saying (for the audit log) why not."""
        if not isinstance(token, str) or len(token) > self._max_bytes:
            raise TokenError("token too large")
        identity = await self._signed_identity(token)
        await self._check_revoked(token, identity)
        if identity.api_key_id is not None:
            assert self._key_refusal is not None  # only built-in tokens name a key
            refusal = await self._key_refusal(identity.api_key_id, identity.principal)
            if refusal is not None:
                self._cache.pop(token, None)
                raise TokenError(f"built-in token: {refusal}")
        return identity

    async def _check_revoked(self, token: str, identity: Identity) -> None:
        jti = (identity.claims or {}).get("jti")
        if self._denylist is None or not isinstance(jti, str):
            return
        try:
            revoked = await self._denylist.is_revoked(jti)
        except RevocationStoreError as exc:
            raise TokenError(f"revocation list unavailable ({exc}): token refused") from None
        if revoked:
            self._cache.pop(token, None)
            raise TokenError("token revoked")

    async def _signed_identity(self, token: str) -> Identity:
        """The identity of a well-signed, current token, from the cache when it is there."""
        hit = self._cache.get(token)
        if hit is not None:
            if self._clock() < hit.exp and hit.keys.revocations == hit.revocations:
                return hit.identity
            self._cache.pop(token, None)
        verified = await self._verify(token)
        if self._clock() < verified.exp:
            if len(self._cache) >= self._cache_size:
                self._evict()
            self._cache[token] = verified
        return verified.identity

    def _evict(self) -> None:
        now = self._clock()
        expired = [t for t, v in self._cache.items() if v.exp <= now]
        for t in expired:
            del self._cache[t]
        while len(self._cache) >= self._cache_size:
            del self._cache[next(iter(self._cache))]

    async def _verify(self, token: str) -> _Verified:
        if not _TOKEN_RE.fullmatch(token):
            if token.count(".") == 2 and token.endswith("."):
                raise TokenError("token has no signature")
            raise TokenError("malformed token")
        head_seg, body_seg, _ = token.split(".")
        header = _segment(head_seg)
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise TokenError("malformed token: no alg")
        if alg.lower() == "none":
            raise TokenError("unsigned token (alg none)")
        if alg not in ALLOWED_ALGORITHMS:
            raise TokenError(f"algorithm {_safe(alg)} not allowed")
        for member in _KEY_LOCATION_HEADERS:
            if member in header:
                raise TokenError(f"header {member} not accepted")
        if "crit" in header:
            raise TokenError("critical header extensions not supported")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in _ALLOWED_TYP):
            raise TokenError(f"token type {_safe(typ)} not accepted")
        kid = header.get("kid")
        if not valid_kid(kid):
            raise TokenError("missing or invalid kid")
        assert isinstance(kid, str)

        unverified = _segment(body_seg)
        iss = unverified.get("iss")
        if not isinstance(iss, str):
            raise TokenError("token has no issuer")
        issuer = self._issuers.get(iss)
        if issuer is None:
            raise TokenError("untrusted issuer")

        try:
            key = await issuer.keys.get(kid)
        except JwksError as exc:
            raise IssuerUnavailable(f"issuer {issuer.name}: keys unavailable: {exc}") from None
        revocations = issuer.keys.revocations
        if key is None:
            raise TokenError(f"issuer {issuer.name}: unknown kid {kid}")
        if key.alg != alg:
            raise TokenError(f"issuer {issuer.name}: algorithm {alg} does not match key {kid}")

        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.jwk,
                algorithms=[alg],
                issuer=issuer.issuer,
                audience=issuer.audience,
                options={
                    "require": ["exp"],
                    "verify_aud": issuer.audience is not None,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenError(f"issuer {issuer.name}: bad signature") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"issuer {issuer.name}: {type(exc).__name__}") from None

        exp = self._check_times(claims)
        self._check_client(issuer, claims)
        principal = self._principal(issuer, claims)
        jti = claims.get("jti")
        if self._require_jti and not valid_jti(jti):
            raise TokenError("token has no valid jti (auth.jwt.require_jti is set)")
        sub = claims.get("sub")
        identity = Identity(
            principal=principal,
            auth_method="jwt",
            credential_id=jti if isinstance(jti, str) else sub if isinstance(sub, str) else None,
            expires_at=exp,
            claims=claims,
            api_key_id=self._api_key_id(claims) if issuer.local else None,
        )
        return _Verified(identity=identity, exp=exp, keys=issuer.keys, revocations=revocations)

    def _check_times(self, claims: dict[str, Any]) -> float:
        now = self._clock()
        exp = _number(claims.get("exp"))
        if exp is None:
            raise TokenError("exp is not a number")
        if exp <= now - self._leeway:
            raise TokenError("token expired")
        if "nbf" in claims:
            nbf = _number(claims["nbf"])
            if nbf is None:
                raise TokenError("nbf is not a number")
            if nbf > now + self._leeway:
                raise TokenError("token not yet valid (nbf)")
        if "iat" in claims:
            iat = _number(claims["iat"])
            if iat is None:
                raise TokenError("iat is not a number")
            if iat > now + self._leeway:
                raise TokenError("token issued in the future (iat)")
        return exp

    @staticmethod
    def _check_client(issuer: _Issuer, claims: dict[str, Any]) -> None:
        if issuer.client_ids is not None:
            client_id = claims.get("client_id")
            if not isinstance(client_id, str) or client_id not in issuer.client_ids:
                raise TokenError(f"issuer {issuer.name}: client_id not allowed")
        if issuer.token_use is not None and claims.get("token_use") != issuer.token_use:
            raise TokenError(f"issuer {issuer.name}: token_use is not {issuer.token_use}")

    @staticmethod
    def _api_key_id(claims: dict[str, Any]) -> str:
        """The API key a built-in token was exchanged for; a token naming none is refused."""
        key_id = claims.get(KEY_ID_CLAIM)
        if not valid_key_id(key_id):
            raise TokenError("built-in token without a valid key_id")
        return key_id

    @staticmethod
    def _principal(issuer: _Issuer, claims: dict[str, Any]) -> str:
        sub = claims.get("sub")
        if issuer.local:
            if not isinstance(sub, str) or not _LOCAL_PRINCIPAL_RE.fullmatch(sub):
                raise TokenError("built-in token without a valid sub")
            return sub
        client_id = claims.get("client_id")
        if client_id is not None:
            if not isinstance(client_id, str) or not _EXTERNAL_ID_RE.fullmatch(client_id):
                raise TokenError(f"issuer {issuer.name}: invalid client_id")
            return f"{issuer.name}:{client_id}"
        if not isinstance(sub, str) or not _EXTERNAL_ID_RE.fullmatch(sub):
            raise TokenError(f"issuer {issuer.name}: token has no valid sub")
        return f"{issuer.name}:{sub}"
