"""Header grammar checks (a small part of CRS 920, protocol enforcement).

`Accept` is a comma-separated list of media ranges with parameters (RFC 9110, 12.5.1); a value
holding characters outside that grammar (markup, quotes out of place, control characters) is
not sent by any real client and is a common carrier for injected payloads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bastion.edge.request import InspectedRequest

__all__ = ["detect"]

_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = rf"\s*;\s*{_TCHARS}\s*=\s*(?:{_TCHARS}|\"[^\"\\\x00-\x1f]*\")"
_RANGE = rf"{_TCHARS}/{_TCHARS}(?:{_PARAM})*"
_ACCEPT = re.compile(rf"\s*(?:{_RANGE})?(?:\s*,\s*(?:{_RANGE})?)*\s*")


def detect(req: InspectedRequest) -> Iterator[tuple[str, str]]:
    """Yield (rule, target) for each header of `req` that breaks its grammar."""
    for name, value in req.headers:
        if name == "accept" and value and not _ACCEPT.fullmatch(value):
            yield "invalid_accept", "header:accept"
