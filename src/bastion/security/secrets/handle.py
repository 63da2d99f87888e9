"""`Secret`: a handle on one reference, resolved at start and re-resolved after a TTL.

`get()` serves the cached value until `ttl_seconds` have passed, then fetches the reference
again, so a rotated secret is picked up without a restart. A failed refresh keeps serving the
last good value for `grace_seconds` (logging a warning that names the reference, never the
value) and retries every `RETRY_SECONDS`; past the grace the handle fails closed. A reference
that cannot be resolved at construction raises `SecretError` (fail closed at start).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bastion.config import SecretsSettings
from bastion.security.secrets.resolver import current_settings, resolve
from bastion.security.secrets.value import SecretError, SecretValue

__all__ = ["RETRY_SECONDS", "Secret"]

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0


class Secret:
    """A cached, self-refreshing secret (see the module docstring)."""

    def __init__(
        self,
        ref: str,
        base_dir: Path,
        settings: SecretsSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ref = ref
        self._base_dir = base_dir
        self._settings = settings or current_settings()
        self._ttl = self._settings.ttl_seconds
        self._grace = self._settings.grace_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._value = resolve(ref, base_dir, self._settings)
        now = clock()
        self._good_at = now
        self._next_at = now + self._ttl
        self.version = 1  # incremented each time a refresh brings a different value

    def __repr__(self) -> str:
        return f"Secret(ref={self.ref!r}, ttl_seconds={self._ttl})"

    __str__ = __repr__

    @property
    def stale(self) -> bool:
        """True when the next `get()` would fetch the reference again."""
        return self._clock() >= self._next_at

    def get(self) -> SecretValue:
        if self.stale:
            self.refresh()
        return self._value

    def refresh(self, *, force: bool = False) -> bool:
        """Fetch the reference now if due (or `force`); True when the value changed."""
        with self._lock:
            now = self._clock()
            if not force and now < self._next_at:
                return False
            try:
                value = resolve(self.ref, self._base_dir, self._settings)
            except SecretError as exc:
                if now - self._good_at > self._ttl + self._grace:
                    raise SecretError(
                        f"{self.ref}: no good value for {now - self._good_at:.0f}s, past the "
                        f"grace period; last error: {exc}"
                    ) from None
                log.warning("secret refresh failed, serving the last good value: %s", exc)
                self._next_at = now + min(self._ttl, RETRY_SECONDS)
                return False
            self._good_at = now
            self._next_at = now + self._ttl
            if value == self._value:
                return False
            self._value = value
            self.version += 1
            log.info("secret %s changed: the new value is in use", self.ref)
            return True
