"""Log4Shell-style JNDI lookup injection (``${jndi:ldap://...}`` and its obfuscations).

Log4j lookups nest, so attackers spell ``jndi`` through other lookups: ``${lower:j}``,
``${::-j}``, ``${env:NOPE:-j}``, ``${date:'j'}``. The detector resolves the innermost lookups of
a value (a default after ``:-``, the argument of case and date lookups) until nothing changes,
then looks for a ``${jndi:`` lookup, or a JNDI URL scheme (``ldap:``, ``rmi:``, ``dns:`` ...)
right after ``jndi:``.
"""

from __future__ import annotations

import re

__all__ = ["detect"]

_INNER = re.compile(r"\$\{([^${}]*)\}")
_JNDI = re.compile(r"\$\{\s*jndi\s*:|jndi\s*:\s*(?:ldaps?|rmi|dns|iiop|corba|nds|nis|https?)\b")
_MAX_ROUNDS = 16


def _resolve(match: re.Match[str]) -> str:
    body = match.group(1)
    if body.strip().startswith("jndi"):
        return "\x00{" + body + "}"
    if ":-" in body:
        return body.split(":-", 1)[1]
    head, sep, rest = body.partition(":")
    if sep and head.strip() in ("lower", "upper", "date", "main", "sys", "env", "ctx", "map"):
        return rest.strip("'\"")
    return body


def detect(forms: tuple[str, ...]) -> str | None:
    """The name of the JNDI-lookup rule that fires on any of `forms`, or None."""
    for form in forms:
        if "${" not in form and "jndi" not in form:
            continue
        if _JNDI.search(form):
            return "jndi_lookup"
        current = form
        for _ in range(_MAX_ROUNDS):
            resolved = _INNER.sub(_resolve, current)
            if resolved == current:
                break
            current = resolved
        if "\x00{jndi" in current.replace(" ", "") or _JNDI.search(current):
            return "jndi_lookup"
    return None
