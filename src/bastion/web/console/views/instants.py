"""Points in time as the Security and Audit views read and show them.

A URL gives a time as epoch seconds (what the chart links carry, exact) or as a UTC date and
time in ISO 8601 (`2026-12-07T22:30`, what an operator types); the pages show UTC to the second.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

# The latest time a page can show (9999-12-31 23:59:59 UTC).
LATEST = 253402300799.0


def parse_instant(name: str, raw: str) -> float:
    """`raw` as epoch seconds; ValueError naming `name` and the accepted forms."""
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{name} must be a UTC time such as 2026-12-07T22:30 or epoch seconds"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        value = parsed.timestamp()
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of epoch seconds")
    if not 0 <= value <= LATEST:
        raise ValueError(f"{name} must be a time between 1970 and the year 9999")
    return value


def utc_text(ts: float | None) -> str:
    """A Unix time as the pages show it: UTC, to the second (an empty text for None)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
