"""JWKS sources and caching: where an issuer's public keys come from and how long we keep them.

A JWK set is read from `https://` (any host), `http://` (loopback hosts only) or `file://`
(absolute path). Keys are parsed into PyJWT key objects; a key is kept only when its type and
curve map to one of the allowed algorithms (RS256, ES256, EdDSA) and any `alg` it declares
agrees. Private members are stripped before parsing, so a set that leaks them never yields a
private key object.

`JwksCache` keeps the parsed set for `cache_seconds`, refreshes it once when a token names an
unknown `kid` (at most once per `cooldown_seconds`, so random kids cannot make us hammer the
issuer), coalesces concurrent refreshes into one fetch, and keeps the cached set when a
refresh fails.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from bastion.config import ConfigError
from bastion.egress import egress_client, origin_policy

ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})
MIN_RSA_BITS = 2048
DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_JWKS_BYTES = 1024 * 1024

_KID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Members that only private (or symmetric) keys carry.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class JwksError(Exception):
    """A JWK set could not be fetched or parsed; the message names the source and the cause."""


def valid_kid(kid: object) -> bool:
    """A plain key identifier: 1-128 characters of `[A-Za-z0-9._-]`, never containing `..`."""
    return isinstance(kid, str) and _KID_RE.fullmatch(kid) is not None and ".." not in kid


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One public key from a JWK set, with the single algorithm it may verify."""

    kid: str
    alg: str
    jwk: jwt.PyJWK
    fingerprint: str  # canonical JSON of the public members, to notice a replaced key

    def __repr__(self) -> str:
        return f"VerificationKey(kid={self.kid!r}, alg={self.alg!r})"


def _algorithm_for(jwk: dict[str, Any]) -> str | None:
    kty = jwk.get("kty")
    crv = jwk.get("crv")
    if kty == "RSA":
        return "RS256"
    if kty == "EC" and crv == "P-256":
        return "ES256"
    if kty == "OKP" and crv == "Ed25519":
        return "EdDSA"
    return None


def _parse_key(raw: object) -> VerificationKey | None:
    """One JWK as a verification key, or None when it is unusable for us."""
    if not isinstance(raw, dict):
        return None
    kid = raw.get("kid")
    if not valid_kid(kid):
        return None
    assert isinstance(kid, str)
    alg = _algorithm_for(raw)
    if alg is None or alg not in ALLOWED_ALGORITHMS:
        return None
    declared = raw.get("alg")
    if declared is not None and declared != alg:
        return None
    use = raw.get("use")
    if use is not None and use != "sig":
        return None
    ops = raw.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    public = {k: v for k, v in raw.items() if k not in _PRIVATE_MEMBERS}
    try:
        key = jwt.PyJWK(public, algorithm=alg)
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if isinstance(key.key, RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        return None
    fingerprint = json.dumps(public, sort_keys=True, separators=(",", ":"))
    return VerificationKey(kid=kid, alg=alg, jwk=key, fingerprint=fingerprint)


def parse_jwks(data: object, *, allow_empty: bool = False) -> dict[str, VerificationKey]:
    """Map kid -> key for the usable keys of a JWK set document.

    Unusable keys are skipped. A kid that appears more than once is ambiguous and dropped.
    Raises JwksError when the document is not a JWK set, or has no usable key (unless
    `allow_empty`).
    """
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksError('not a JWK set (expected an object with a "keys" list)')
    keys: dict[str, VerificationKey] = {}
    seen: set[str] = set()
    for raw in data["keys"]:
        kid = raw.get("kid") if isinstance(raw, dict) else None
        if isinstance(kid, str):
            if kid in seen:
                keys.pop(kid, None)
                continue
            seen.add(kid)
        key = _parse_key(raw)
        if key is not None:
            keys[key.kid] = key
    if not keys and not allow_empty:
        raise JwksError("the JWK set has no usable key (RS256, ES256 or EdDSA with a kid)")
    return keys


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_jwks_url(url: str, *, what: str = "jwks_url") -> str:
    """Check a JWKS location; raises ConfigError saying what is accepted."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise ConfigError(f"{what}: {url!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme in ("https", "http"):
        if parts.username is not None or parts.password is not None:
            raise ConfigError(f"{what}: credentials inside the URL are not supported")
        if not host:
            raise ConfigError(f"{what}: {url!r} has no host")
        if scheme == "http" and not _is_loopback(host):
            raise ConfigError(
                f"{what}: {url!r} uses plain http on a non-loopback host; use https:// "
                "(http:// is accepted only for localhost, 127.0.0.0/8 and ::1)"
            )
        return url
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigError(
                f"{what}: {url!r} must name an absolute path, e.g. file:///etc/bastion/jwks.json"
            )
        return url
    raise ConfigError(
        f"{what}: unsupported scheme in {url!r}; use https://, http:// on a loopback host, "
        "or file:///absolute/path"
    )


class JwksCache:
    """An issuer's JWK set, fetched on demand and cached.

    `revocations` goes up whenever a refresh drops or replaces a key, so that anything
    derived from a key (verified-token caches) can notice and stop trusting it.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "jwks",
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 600.0,
        cooldown_seconds: float = 30.0,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_bytes: int = DEFAULT_MAX_JWKS_BYTES,
    ) -> None:
        self.url = validate_jwks_url(url, what=f"issuer {name}: jwks_url")
        self.name = name
        self._http = http
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cooldown = cooldown_seconds
        self._timeout = timeout_seconds
        self._max_bytes = max_bytes
        self._keys: dict[str, VerificationKey] | None = None
        self._fetched_at = -math.inf
        self._last_attempt = -math.inf
        self._last_error: str | None = None
        self._attempts = 0
        self._lock = asyncio.Lock()
        self.fetches = 0
        self.revocations = 0

    def __repr__(self) -> str:
        count = len(self._keys) if self._keys is not None else 0
        return f"JwksCache(name={self.name!r}, url={self.url!r}, keys={count})"

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys or ())

    async def get(self, kid: str) -> VerificationKey | None:
        """The key for `kid`, or None when the issuer does not publish it.

        Raises JwksError when there is no usable set at all (never fetched successfully).
        """
        now = self._clock()
        stale = self._keys is None or now - self._fetched_at >= self._cache_seconds
        # A failed attempt is not retried within the cooldown, stale set or none.
        if stale and now - self._last_attempt >= self._cooldown:
            await self.refresh()
        keys = self._keys
        if keys is None:
            raise JwksError(f"{self.name}: JWKS unavailable ({self._last_error})")
        key = keys.get(kid)
        if key is not None:
            return key
        if self._clock() - self._last_attempt < self._cooldown:
            return None
        await self.refresh()
        return (self._keys or {}).get(kid)

    async def refresh(self) -> None:
        """Fetch the set now. Concurrent callers share one fetch; failures keep the old set."""
        attempts = self._attempts  # completed attempts, as seen before queueing
        async with self._lock:
            if self._attempts != attempts:
                return  # a fetch finished while we waited: share its result
            self._last_attempt = self._clock()
            self.fetches += 1
            try:
                keys = await self._load()
            except JwksError as exc:
                self._last_error = str(exc)
                if self._keys is not None:
                    return  # keep serving the cached set
                raise
            finally:
                self._attempts += 1
            old = self._keys or {}
            if any(k not in keys or keys[k].fingerprint != v.fingerprint for k, v in old.items()):
                self.revocations += 1
            self._keys = keys
            self._fetched_at = self._clock()
            self._last_error = None

    async def _load(self) -> dict[str, VerificationKey]:
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._read()
        except TimeoutError:
            raise JwksError(f"{self.name}: fetching {self.url} timed out") from None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise JwksError(f"{self.name}: {self.url} did not return valid JSON") from None
        try:
            return parse_jwks(data)
        except JwksError as exc:
            raise JwksError(f"{self.name}: {self.url}: {exc}") from None

    async def _read(self) -> bytes:
        parts = urlsplit(self.url)
        if parts.scheme.lower() == "file":
            return await asyncio.to_thread(self._read_file, Path(unquote(parts.path)))
        if self._http is not None:
            return await self._download(self._http)
        # Through the egress perimeter, allowed exactly the configured URL's origin: a redirect
        # or a name that rebinds to another address cannot take the fetch anywhere else.
        policy = origin_policy(self.url)
        principal = f"jwks:{self.name}"
        async with egress_client(policy, principal=principal, timeout=self._timeout) as client:
            return await self._download(client)

    def _read_file(self, path: Path) -> bytes:
        try:
            with path.open("rb") as fh:
                data = fh.read(self._max_bytes + 1)
        except OSError as exc:
            raise JwksError(f"{self.name}: cannot read {path}: {exc.strerror}") from None
        if len(data) > self._max_bytes:
            raise JwksError(f"{self.name}: {path} is larger than {self._max_bytes} bytes")
        return data

    async def _download(self, client: httpx.AsyncClient) -> bytes:
        try:
            async with client.stream(
                "GET",
                self.url,
                headers={"Accept": "application/json"},
                timeout=self._timeout,
                follow_redirects=False,
            ) as resp:
                if resp.status_code != 200:
                    raise JwksError(f"{self.name}: {self.url} answered HTTP {resp.status_code}")
                buf = bytearray()
                async for chunk in resp.aiter_bytes():
                    buf += chunk
                    if len(buf) > self._max_bytes:
                        raise JwksError(
                            f"{self.name}: {self.url} sent more than {self._max_bytes} bytes"
                        )
                return bytes(buf)
        except httpx.HTTPError as exc:
            raise JwksError(
                f"{self.name}: fetching {self.url} failed ({type(exc).__name__})"
            ) from None
