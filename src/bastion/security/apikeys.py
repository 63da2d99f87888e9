"""API keys: format, hashing, storage and verification.

A key reads `bst_<key_id>_<secret>`: `key_id` is 12 characters of `[a-z0-9]` (public, used to
look the key up), `secret` is 64 hex characters (256 bits). Only a hash is stored: SHA-256 of
the whole key, or HMAC-SHA256 with a server-side pepper when one is configured. Each hash
records the pepper version that made it, so configuring a new pepper does not invalidate
existing keys. Hashes are compared with `hmac.compare_digest`.

Peppers come from secret references (`PepperRing`). The current pepper's secret holds one
pepper (of version `auth.pepper_version`) or a JSON keyring
`{"current": 2, "peppers": {"1": "...", "2": "..."}}`; it is fetched again after
`secrets.ttl_seconds`, so a new pepper version put into the store is used for new keys without
a restart, while older versions keep verifying the keys hashed with them. A version whose value
changes is refused (it would invalidate every key hashed with it): the old value is kept.

Verified lookups are cached for `auth.api_key_cache_seconds` (default 2 s): that is the longest
a revoked key can still be accepted by a running agent. `refusal` answers, through the same
cached lookup, whether a key still stands behind a credential derived from it (a token of the
built-in token service, an open event stream), so those end within the same window.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from bastion.core.context import Identity
from bastion.security.secrets import Secret, SecretError, SecretValue
from bastion.storage import ApiKey

KEY_PREFIX = "bst_"
_KEY_ID = r"[a-z0-9]{12}"
_KEY_ID_RE = re.compile(_KEY_ID)
KEY_RE = re.compile(rf"^{KEY_PREFIX}({_KEY_ID})_([0-9a-f]{{64}})$")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_PRINCIPAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_NEGATIVE_CACHE_MAX = 10_000
_VERIFIED_CACHE_MAX = 10_000
_FORCED_REFRESH_SECONDS = 1.0

log = logging.getLogger(__name__)


class ApiKeyError(Exception):
    """A key operation failed; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class _Cached:
    key_hash: str
    scheme: str
    pepper_version: int | None
    principal: str
    expires_at: float | None
    revoked: bool
    fetched_at: float


def new_key() -> tuple[str, str]:
    """A fresh `(key_id, key)`."""
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_hex(32)}"


def valid_key_id(value: object) -> TypeGuard[str]:
    """Whether `value` is a key id (the public part of a key), e.g. from a token's claim."""
    return isinstance(value, str) and _KEY_ID_RE.fullmatch(value) is not None


def parse_key_id(key: str) -> str | None:
    m = KEY_RE.match(key)
    return m.group(1) if m else None


def validate_principal(principal: str) -> str:
    if not _PRINCIPAL_RE.match(principal) or ":" in principal:
        raise ApiKeyError(
            f"invalid principal name {principal!r}: use letters, digits and . _ @ - "
            "(at most 128 characters; ':' is reserved for external identities)"
        )
    return principal


PepperSource = Secret | SecretValue


def _value(source: PepperSource) -> SecretValue:
    return source.get() if isinstance(source, Secret) else source


def _keyring(text: str, version: int) -> tuple[int, dict[int, bytes]]:
    """The current version and the peppers held by one pepper secret (plain or a keyring)."""
    if not text.lstrip().startswith("{"):
        return version, {version: text.encode("utf-8")}
    try:
        data = json.loads(text)
        peppers = {int(v): str(p).encode("utf-8") for v, p in data["peppers"].items()}
        current = int(data["current"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SecretError(
            'the pepper keyring must be {"current": N, "peppers": {"N": "..."}}'
        ) from None
    if current not in peppers or not all(peppers.values()):
        raise SecretError("the pepper keyring's current version has no pepper")
    return current, peppers


class PepperRing:
    """The API-key peppers by version and the version new hashes use (see the module doc)."""

    def __init__(
        self,
        current: PepperSource | None = None,
        version: int = 1,
        previous: dict[int, PepperSource] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._current = current
        self._version = version
        self._previous = dict(previous or {})
        self._clock = clock
        self._forced_at = float("-inf")
        self._peppers: dict[int, bytes] = {}
        self.current_version: int | None = None
        self._rebuild()

    def __repr__(self) -> str:
        return f"PepperRing(versions={sorted(self._peppers)}, current={self.current_version})"

    def _handles(self) -> list[Secret]:
        sources = [self._current, *self._previous.values()]
        return [s for s in sources if isinstance(s, Secret)]

    @property
    def stale(self) -> bool:
        return any(h.stale for h in self._handles())

    def get(self, version: int) -> bytes | None:
        return self._peppers.get(version)

    def refresh(self, *, force: bool = False) -> None:
        """Fetch the pepper secrets again if due (or `force`, at most once a second)."""
        if force:
            now = self._clock()
            if now - self._forced_at < _FORCED_REFRESH_SECONDS:
                return
            self._forced_at = now
        for handle in self._handles():
            handle.refresh(force=force)
        self._rebuild()

    def _rebuild(self) -> None:
        found = {v: _value(p).get_bytes() for v, p in self._previous.items()}
        current: int | None = None
        if self._current is not None:
            try:
                current, ring = _keyring(_value(self._current).get(), self._version)
            except SecretError as exc:
                if self.current_version is None:
                    raise SecretError(f"API-key pepper: {exc}") from None
                log.warning("keeping the current API-key peppers: %s", exc)
                return
            found.update(ring)
        merged = dict(self._peppers)
        for version, pepper in found.items():
            known = merged.get(version)
            if known is not None and not hmac.compare_digest(known, pepper):
                log.warning(
                    "API-key pepper version %d changed its value; keeping the old one "
                    "(a new pepper needs a new version number)",
                    version,
                )
                continue
            merged[version] = pepper
        if current is not None and current != self.current_version:
            if self.current_version is not None:
                log.info("API-key pepper version %d is now used for new keys", current)
            self.current_version = current
        self._peppers = merged


class ApiKeyStore:
    """Create, list, revoke, rotate and verify API keys stored in the SQL database."""

    def __init__(
        self,
        engine: Engine,
        *,
        pepper: SecretValue | None = None,
        pepper_version: int = 1,
        previous_peppers: dict[int, SecretValue] | None = None,
        peppers: PepperRing | None = None,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._ring = peppers or PepperRing(pepper, pepper_version, dict(previous_peppers or {}))
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._negative: dict[str, float] = {}
        self._verified: dict[bytes, tuple[Identity, _Cached]] = {}

    def __repr__(self) -> str:
        return f"ApiKeyStore(peppers={self._ring!r}, cache_seconds={self._cache_seconds})"

    @property
    def cache_seconds(self) -> float:
        """How long a looked-up key record is trusted: the longest a revoked key still passes."""
        return self._cache_seconds

    # -- hashing ---------------------------------------------------------------------------

    def _hash(self, key: str, scheme: str, pepper_version: int | None) -> str | None:
        raw = key.encode("ascii")
        if scheme == "sha256":
            return hashlib.sha256(raw).hexdigest()
        if scheme == "hmac-sha256" and pepper_version is not None:
            pepper = self._ring.get(pepper_version)
            if pepper is None:
                return None
            return hmac.digest(pepper, raw, "sha256").hex()
        return None

    def _new_hash(self, key: str) -> tuple[str, str, int | None]:
        if self._ring.stale:
            self._ring.refresh()
        version = self._ring.current_version
        if version is None:
            return hashlib.sha256(key.encode("ascii")).hexdigest(), "sha256", None
        digest = self._hash(key, "hmac-sha256", version)
        assert digest is not None
        return digest, "hmac-sha256", version

    # -- management ------------------------------------------------------------------------

    def create(
        self,
        principal: str,
        *,
        expires_at: float | None = None,
        label: str | None = None,
    ) -> str:
        """Create a key for `principal` and return it. It is not retrievable later."""
        validate_principal(principal)
        key_id, key = new_key()
        digest, scheme, version = self._new_hash(key)
        with Session(self._engine) as session, session.begin():
            session.add(
                ApiKey(
                    key_id=key_id,
                    principal=principal,
                    key_hash=digest,
                    hash_scheme=scheme,
                    pepper_version=version,
                    label=label,
                    created_at=self._clock(),
                    expires_at=expires_at,
                )
            )
        return key

    def list(self, principal: str | None = None) -> list[dict[str, Any]]:
        now = self._clock()
        stmt = select(ApiKey).order_by(ApiKey.principal, ApiKey.created_at)
        if principal:
            stmt = stmt.where(ApiKey.principal == principal)
        with Session(self._engine) as session:
            rows = session.scalars(stmt).all()
        return [
            {
                "key_id": r.key_id,
                "principal": r.principal,
                "label": r.label,
                "created_at": r.created_at,
                "expires_at": r.expires_at,
                "revoked_at": r.revoked_at,
                "status": _status(r, now),
            }
            for r in rows
        ]

    def revoke(self, key_id: str) -> None:
        with Session(self._engine) as session, session.begin():
            row = session.get(ApiKey, key_id)
            if row is None:
                raise ApiKeyError(f"no key with id {key_id!r}: see `bastion keys list`")
            if row.revoked_at is None:
                row.revoked_at = self._clock()
        self._forget(key_id)

    def rotate(self, key_id: str, *, grace_seconds: float = 3600.0) -> str:
        """Issue a new key for the same principal; the old one expires after the grace period."""
        with Session(self._engine) as session:
            row = session.get(ApiKey, key_id)
            if row is None or row.revoked_at is not None:
                raise ApiKeyError(f"no active key with id {key_id!r}: see `bastion keys list`")
            principal, label = row.principal, row.label
        new = self.create(principal, label=label)
        ends = self._clock() + max(grace_seconds, 0.0)
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(ApiKey)
                .where(ApiKey.key_id == key_id)
                .where((ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > ends))
                .values(expires_at=ends)
            )
        self._forget(key_id)
        return new

    def _forget(self, key_id: str) -> None:
        """Drop everything cached about a key changed through this store."""
        self._cache.pop(key_id, None)
        self._verified = {
            fp: entry for fp, entry in self._verified.items() if entry[0].credential_id != key_id
        }

    # -- verification ----------------------------------------------------------------------

    def _load(self, key_id: str) -> _Cached | None:
        with Session(self._engine) as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                return None
            return _Cached(
                key_hash=row.key_hash,
                scheme=row.hash_scheme,
                pepper_version=row.pepper_version,
                principal=row.principal,
                expires_at=row.expires_at,
                revoked=row.revoked_at is not None,
                fetched_at=self._clock(),
            )

    async def _lookup(self, key_id: str, max_age: float | None = None) -> _Cached | None:
        """The key's record, from the cache when it is younger than `max_age` (default: the
        cache window; never longer)."""
        now = self._clock()
        fresh_for = self._cache_seconds if max_age is None else min(max_age, self._cache_seconds)
        hit = self._cache.get(key_id)
        if hit is not None and now - hit.fetched_at < fresh_for:
            return hit
        missed = self._negative.get(key_id)
        if missed is not None and now - missed < fresh_for:
            return None
        found = await asyncio.to_thread(self._load, key_id)
        if found is None:
            if len(self._negative) >= _NEGATIVE_CACHE_MAX:
                self._negative.clear()
            self._negative[key_id] = now
            self._cache.pop(key_id, None)
            return None
        self._cache[key_id] = found
        return found

    async def verify(self, key: str) -> tuple[Identity | None, str]:
        """`(identity, "")` for a good key, else `(None, reason)` for the audit log."""
        # A key verified moments ago is recognised by its SHA-256 alone; the record it was
        # checked against is as fresh as the cache window allows, like every other lookup.
        fingerprint = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
        seen = self._verified.get(fingerprint)
        if seen is not None:
            known, checked = seen
            now = self._clock()
            if (
                now - checked.fetched_at < self._cache_seconds
                and not checked.revoked
                and (checked.expires_at is None or now < checked.expires_at)
            ):
                return known, ""
            del self._verified[fingerprint]
        identity, reason = await self._verify_slow(key)
        if identity is not None:
            if len(self._verified) >= _VERIFIED_CACHE_MAX:
                self._verified.clear()
            rec = self._cache.get(identity.credential_id or "")
            if rec is not None:
                self._verified[fingerprint] = (identity, rec)
        return identity, reason

    async def _verify_slow(self, key: str) -> tuple[Identity | None, str]:
        m = KEY_RE.match(key)
        if m is None:
            return None, "malformed api key"
        key_id = m.group(1)
        rec = await self._lookup(key_id)
        if rec is None:
            return None, f"unknown api key id {key_id}"
        if self._ring.stale:
            await asyncio.to_thread(self._ring.refresh)
        if rec.pepper_version is not None and self._ring.get(rec.pepper_version) is None:
            # Hashed with a pepper version this process has not seen yet: fetch it now.
            await asyncio.to_thread(self._ring.refresh, force=True)
        digest = self._hash(key, rec.scheme, rec.pepper_version)
        if digest is None or not hmac.compare_digest(digest, rec.key_hash):
            return None, f"wrong secret for api key id {key_id}"
        lapsed = self._lapsed(rec, key_id)
        if lapsed is not None:
            return None, lapsed
        identity = Identity(
            principal=rec.principal,
            auth_method="api_key",
            credential_id=key_id,
            expires_at=rec.expires_at,
            api_key_id=key_id,
        )
        return identity, ""

    def _lapsed(self, rec: _Cached, key_id: str) -> str | None:
        """Why the key no longer authenticates anyone (revoked, expired), or None."""
        if rec.revoked:
            return f"revoked api key id {key_id}"
        if rec.expires_at is not None and self._clock() >= rec.expires_at:
            return f"expired api key id {key_id}"
        return None

    async def refusal(
        self, key_id: str, principal: str, *, max_age: float | None = None
    ) -> str | None:
        """Why a credential derived from key `key_id` of `principal` must be refused now
        (unknown, another principal's, revoked, expired), or None while the key is live.

        The record comes from the same cache as `verify` (no older than `max_age` when given),
        so a revoked key's tokens stop working as soon as the key itself does.
        """
        rec = await self._lookup(key_id, max_age)
        if rec is None:
            return f"unknown api key id {key_id}"
        if not hmac.compare_digest(rec.principal.encode(), principal.encode()):
            return f"api key id {key_id} belongs to another principal"
        return self._lapsed(rec, key_id)

    async def authenticate(self, key: str) -> Identity | None:
        identity, _ = await self.verify(key)
        return identity


def _status(row: ApiKey, now: float) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and now >= row.expires_at:
        return "expired"
    return "active"
