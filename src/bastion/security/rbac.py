"""Authorization: the RBAC policy, checked before any handler or storage access.

Policy file shape (JSON):

    {"allow": {"lambda-s3-processor": ["process_document"], "admin": ["*"],
               "monitoring": ["get_status"]},
     "deny":  {"contractor": ["archivist.*"]},
     "roles": {"alice": ["monitoring"]}}

A subject is a principal or a role name. A pattern is `method` (on any agent), `agent.method`,
a prefix ending in `*` (`tasks*`, `archivist.*`), or `*`. A pattern containing a dot is matched
against `agent.method`, one without against the method name. Deny wins; anything not allowed
is denied. Edits to the file are picked up without a restart: a request always sees either the
old or the new policy, whole, and a broken edit keeps the old policy and logs why.

A broken file is reported as `FILE:LINE: problem`: the JSON decoder's line for a syntax error,
else the line of the offending key or pattern, found by looking for it in the text.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from bastion.config import Settings
from bastion.core.context import CallContext
from bastion.security.stages import CallStage, forbidden

_PATTERN_RE = re.compile(r"^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_/-]+)?\*?|[A-Za-z0-9_-]+\.\*)$")
_DECISION_CACHE_MAX = 50_000

log = structlog.get_logger("bastion.rbac")


class PolicyError(Exception):
    """The policy file is invalid; the message names the file and the problem.

    `where` is the path in the document to what is wrong (e.g. `("allow", "bob", "x y")`),
    which `load_policy` turns into the line number."""

    def __init__(self, message: str, where: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True, slots=True)
class _Rule:
    exact_method: frozenset[str]
    exact_qualified: frozenset[str]
    prefix_method: tuple[str, ...]
    prefix_qualified: tuple[str, ...]
    everything: bool

    def matches(self, method: str, qualified: str) -> bool:
        if self.everything or method in self.exact_method or qualified in self.exact_qualified:
            return True
        return any(method.startswith(p) for p in self.prefix_method) or any(
            qualified.startswith(p) for p in self.prefix_qualified
        )


def _compile(patterns: Iterable[str]) -> _Rule:
    em: set[str] = set()
    eq: set[str] = set()
    pm: list[str] = []
    pq: list[str] = []
    everything = False
    for pat in patterns:
        if pat == "*":
            everything = True
        elif pat.endswith("*"):
            (pq if "." in pat else pm).append(pat[:-1])
        else:
            (eq if "." in pat else em).add(pat)
    return _Rule(frozenset(em), frozenset(eq), tuple(pm), tuple(pq), everything)


class Policy:
    """A compiled, immutable policy."""

    def __init__(self, doc: dict[str, Any], source: str = "<policy>") -> None:
        self.source = source
        unknown = set(doc) - {"allow", "deny", "roles", "version", "description"}
        if unknown:
            raise PolicyError(
                f"{source}: unknown top-level keys {sorted(unknown)}", (sorted(unknown)[0],)
            )
        self._allow = {s: _compile(p) for s, p in _grants(doc.get("allow", {}), "allow", source)}
        self._deny = {s: _compile(p) for s, p in _grants(doc.get("deny", {}), "deny", source)}
        roles = doc.get("roles", {})
        if not isinstance(roles, dict) or not all(
            isinstance(v, list) and all(isinstance(r, str) for r in v) for v in roles.values()
        ):
            raise PolicyError(
                f"{source}: 'roles' must map principals to lists of role names", ("roles",)
            )
        self._roles: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in roles.items()}

    def mentions(self, principal: str) -> bool:
        """Whether any allow or deny rule, or the roles, name `principal`."""
        return principal in self._allow or principal in self._deny or principal in self._roles

    def subjects(self, principal: str) -> tuple[str, ...]:
        return (principal, *self._roles.get(principal, ()))

    def decide(self, principal: str, agent: str, method: str) -> tuple[bool, str]:
        """`(allowed, reason)`: deny wins, then allow, else deny by default."""
        qualified = f"{agent}.{method}"
        subjects = self.subjects(principal)
        for s in subjects:
            rule = self._deny.get(s)
            if rule is not None and rule.matches(method, qualified):
                return False, f"denied by policy rule for {s!r}"
        for s in subjects:
            rule = self._allow.get(s)
            if rule is not None and rule.matches(method, qualified):
                return True, f"allowed for {s!r}"
        return False, "no rule allows it (deny by default)"


def _grants(section: Any, name: str, source: str) -> list[tuple[str, list[str]]]:
    if not isinstance(section, dict):
        raise PolicyError(f"{source}: '{name}' must be an object of subject -> [patterns]", (name,))
    out: list[tuple[str, list[str]]] = []
    for subject, patterns in section.items():
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise PolicyError(
                f"{source}: {name}.{subject} must be a list of strings", (name, subject)
            )
        for p in patterns:
            if not _PATTERN_RE.match(p):
                raise PolicyError(
                    f"{source}: {name}.{subject}: bad pattern {p!r} "
                    "(use method, agent.method, prefix*, or *)",
                    (name, subject, p),
                )
        out.append((subject, patterns))
    return out


def _line_of(text: str, where: tuple[str, ...]) -> int | None:
    """The line of the last of `where`, each looked for (as a JSON string) after the one before."""
    pos = 0
    for part in where:
        found = text.find(json.dumps(part), pos)
        if found < 0:
            found = text.find(json.dumps(part, ensure_ascii=False), pos)
        if found < 0:
            return None
        pos = found
    return text.count("\n", 0, pos) + 1 if where else None


def load_policy(path: Path) -> Policy:
    """Load and check the policy file; a problem raises PolicyError `FILE:LINE: problem`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise PolicyError(f"{path}: cannot read policy file: {why}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise PolicyError(f"{path}:1: the policy must be a JSON object")
    try:
        return Policy(doc, str(path))
    except PolicyError as exc:
        line = _line_of(text, exc.where)
        if line is None:
            raise
        problem = str(exc).removeprefix(f"{path}: ")
        raise PolicyError(f"{path}:{line}: {problem}", exc.where) from None


class PolicyStore:
    """Holds the current policy and reloads it when the file changes.

    The file is stat()ed at most once per `check_seconds`, on the request path; that is cheap
    and needs no background task. A reload that fails keeps the previous policy.
    """

    def __init__(
        self,
        path: Path,
        *,
        check_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._check_seconds = check_seconds
        self._clock = clock
        self._policy = load_policy(path)  # a broken policy at start-up is fatal
        self._stamp = self._file_stamp()
        self._next_check = clock() + check_seconds
        self._decisions: dict[tuple[str, str, str], tuple[bool, str]] = {}

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def maybe_reload(self) -> None:
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + self._check_seconds
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            policy = load_policy(self.path)
        except PolicyError as exc:
            log.error("policy reload failed; keeping the previous policy", problem=str(exc))
            return
        self._policy = policy
        self._decisions = {}
        log.info("policy reloaded", file=str(self.path))

    @property
    def policy(self) -> Policy:
        return self._policy

    def decide(self, principal: str, agent: str, method: str) -> tuple[bool, str]:
        self.maybe_reload()
        key = (principal, agent, method)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._policy.decide(principal, agent, method)
            if len(self._decisions) >= _DECISION_CACHE_MAX:
                self._decisions = {}
            self._decisions[key] = decision
        return decision


def make_authorize_stage(store: PolicyStore) -> CallStage:
    """The RBAC call stage: HTTP 403 (-32041) unless the policy allows the call."""

    async def authorize(ctx: CallContext) -> None:
        allowed, reason = store.decide(ctx.principal, ctx.agent, ctx.method)
        if not allowed:
            raise forbidden(reason)

    return authorize


def policy_store(settings: Settings) -> PolicyStore:
    """The policy file the settings name, reloaded as `policy.reload_check_seconds` says."""
    return PolicyStore(
        settings.path(settings.policy.file), check_seconds=settings.policy.reload_check_seconds
    )
