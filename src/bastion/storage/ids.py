"""Random parts of record ids: unguessable, URL-safe, the same shape for every kind of record."""

from __future__ import annotations

import base64
import secrets

__all__ = ["ID_TOKEN_PATTERN", "random_token"]

# 16 random bytes in lower-case base32 without padding: 26 characters.
ID_TOKEN_PATTERN = "[a-z2-7]{26}"  # noqa: S105 (a pattern, not a password)


def random_token() -> str:
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
