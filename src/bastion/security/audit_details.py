"""What the `detail` of an audit record says, reduced to a small fixed vocabulary.

Refusals and guardrail decisions put their internal reason in `detail`, free text that may name
a key id or a parameter. Charts need bounded labels, so this module owns the mapping, both as a
Python function and as SQL (the same table builds both, so they cannot disagree):

- authentication failures (`denied:authenticate`, written by the authenticate and delegation
  stages, the liveness check and the WebSocket handshake): `AUTH_REASONS`;
- WAF blocks (`denied:waf`): detail `rules: <rule_id>@<target>, <rule_id>@<target>...`, rule
  ids being dotted names and targets never holding `,` or a space (`bastion.edge.managed`);
- guardrail decisions (`guardrail.scan`, outcome `guardrail:<ACTION>`): detail
  `policy=<v> source=<s> direction=<d> types=<T1>,<T2>`.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, case, func, literal, or_

from bastion.storage import AuditRecord

__all__ = [
    "AUTH_REASONS",
    "auth_reason",
    "auth_reason_sql",
    "guardrail_type_sql",
    "guardrail_types",
    "waf_rule_sql",
    "waf_rules",
]

# (reason, LIKE patterns), first match wins. The patterns are lower case and match the texts
# of `authn`, `apikeys`, `jwt_verify`, `delegation`, `liveness` and `web.ws_auth`.
_AUTH_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unavailable", ("credential check failed%", "%revocation list unavailable%")),
    ("missing_credential", ("no credential", "delegation without a credential")),
    ("revoked", ("%revoked%",)),
    ("expired", ("%expired%",)),
    ("unknown_key", ("%unknown api key id%", "%unknown kid%", "%untrusted issuer%")),
    ("wrong_secret", ("wrong secret for api key id%",)),
    (
        "bad_signature",
        ("%bad signature%", "%has no signature%", "%unsigned token%", "%algorithm % not allowed"),
    ),
    (
        "malformed",
        (
            "malformed%",
            "%: malformed%",
            "both x-api-key and authorization sent",
            "authorization is not a bearer token",
            "%token too large%",
        ),
    ),
    ("not_accepted", ("% are not accepted here",)),
)
OTHER = "other"
AUTH_REASONS: tuple[str, ...] = (*(r for r, _ in _AUTH_PATTERNS), OTHER)

_WAF_RULE_RE = re.compile(r"(?:^rules: |, )([^@,\s]+)@")
_GUARDRAIL_TYPES_RE = re.compile(r"(?:^| )types=([^ ]*)$")


def _like_re(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern),
        re.DOTALL,
    )


_AUTH_RES = tuple((r, tuple(_like_re(p) for p in ps)) for r, ps in _AUTH_PATTERNS)


def auth_reason(detail: str | None) -> str:
    """The bounded reason of one `denied:authenticate` detail (`other` when unrecognised)."""
    text = (detail or "").lower()
    for reason, regexes in _AUTH_RES:
        if any(rx.fullmatch(text) for rx in regexes):
            return reason
    return OTHER


def auth_reason_sql() -> ColumnElement[str]:
    """`auth_reason(detail)` as a SQL expression (portable: CASE over LIKE)."""
    low = func.lower(AuditRecord.detail)  # NULL matches nothing: `other`
    whens = [(or_(*(low.like(p) for p in ps)), literal(r)) for r, ps in _AUTH_PATTERNS]
    return case(*whens, else_=literal(OTHER))


def waf_rules(detail: str | None) -> list[str]:
    """The rule ids a `denied:waf` detail names, in order, each once."""
    found = _WAF_RULE_RE.findall(detail or "")
    return list(dict.fromkeys(found))


def waf_rule_sql(rule_id: str) -> ColumnElement[bool]:
    """True for records whose WAF detail names `rule_id`."""
    esc = _escape_like(rule_id)
    return or_(
        AuditRecord.detail.like(f"rules: {esc}@%", escape="\\"),
        AuditRecord.detail.like(f"%, {esc}@%", escape="\\"),
    )


def guardrail_types(detail: str | None) -> list[str]:
    """The finding types a guardrail detail lists (`types=A,B`)."""
    m = _GUARDRAIL_TYPES_RE.search(detail or "")
    if m is None:
        return []
    return [t for t in m.group(1).split(",") if t]


def guardrail_type_sql(finding_type: str) -> ColumnElement[bool]:
    """True for guardrail records whose detail lists `finding_type`."""
    esc = _escape_like(finding_type)
    return or_(
        *(
            AuditRecord.detail.like(p, escape="\\")
            for p in (f"%types={esc}", f"%types={esc},%", f"%types=%,{esc}", f"%types=%,{esc},%")
        )
    )


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
