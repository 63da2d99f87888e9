"""Keyset pagination cursors: the (created_at, id) of the last row of a page, opaque to clients.

A cursor is that pair as compact JSON in URL-safe base64 without padding. Any table paged
newest first by (created_at, id) uses these two functions, so every list answers the same kind
of cursor and refuses a malformed one the same way.
"""

from __future__ import annotations

import base64
import binascii
import json

__all__ = ["decode_cursor", "encode_cursor"]


def encode_cursor(created_at: float, row_id: str) -> str:
    raw = json.dumps([created_at, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The (created_at, id) a cursor holds; ValueError("invalid cursor") for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = json.loads(raw)
        if isinstance(created_at, bool) or not isinstance(created_at, int | float):
            raise ValueError
        if not isinstance(row_id, str):
            raise ValueError
        return float(created_at), row_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValueError("invalid cursor") from None
