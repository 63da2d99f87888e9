"""The WAF engine: rule groups in priority order, each group's action, and the verdict.

    0 path_allowlist   the app's own paths only                  404
    1 rate             requests per client IP                     429 (Retry-After)
    2 size             URI, query, headers, body per route        413
    2 managed          attack detectors (`managed_matches`)       403
    3 bot              scanners, bad bots, no User-Agent           403

Each group runs in its configured mode (`waf.groups`): BLOCK refuses the request on a match,
COUNT only counts and logs the match and lets the request go on (for trying rules on live
traffic), OFF skips the group. Evaluation stops at the first group that blocks. Every match
counted or blocked increments `bastion_waf_matches_total{agent, rule_id, action}`. A detector
that raises is logged and counts as a match, `<group>.inspection_failed`: in BLOCK mode the
request is refused (fail closed).

The engine decides; it does not do I/O. `bastion.edge.middleware` feeds it live requests and
`bastion.edge.offline` recorded ones. The detectors are injectable (`Detectors`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import structlog

from bastion.config import WafSettings
from bastion.edge import allowlist, ratebased
from bastion.edge.rules import RuleMatch
from bastion.observability.metrics import WAF_MATCHES
from bastion.security import RateDecision

if TYPE_CHECKING:
    from bastion.edge.request import InspectedRequest

log = structlog.get_logger("bastion.waf")

Headers = Sequence[tuple[str, str]]


class Action(StrEnum):
    ALLOW = "ALLOW"
    BLOCK = "BLOCK"
    COUNT = "COUNT"


PATH_ALLOWLIST = "path_allowlist"
RATE = "rate"
SIZE = "size"
MANAGED = "managed"
BOT = "bot"
GROUPS = (PATH_ALLOWLIST, RATE, SIZE, MANAGED, BOT)
INSPECTION_FAILED = "inspection_failed"
BLOCK_STATUS = {PATH_ALLOWLIST: 404, RATE: 429, SIZE: 413, MANAGED: 403, BOT: 403}


@dataclass(frozen=True, slots=True)
class Detectors:
    """The detection functions the engine calls (the real ones unless a test injects others)."""

    parse: Callable[[str, str, Headers, bytes], InspectedRequest]
    managed: Callable[[InspectedRequest], list[RuleMatch]]
    bot: Callable[[InspectedRequest], list[RuleMatch]]


def default_detectors() -> Detectors:
    from bastion.edge.bots import bot_matches
    from bastion.edge.managed import managed_matches
    from bastion.edge.request import parse_request

    return Detectors(parse=parse_request, managed=managed_matches, bot=bot_matches)


@dataclass(frozen=True, slots=True)
class Finding:
    """One match and the action taken on it."""

    match: RuleMatch
    action: Action


@dataclass(slots=True)
class Verdict:
    """What the engine decided about one request so far."""

    findings: list[Finding] = field(default_factory=list)
    blocked_by: str | None = None
    # Extra facts for the answer: the limit broken (413), seconds to wait (429).
    limit: int = 0
    retry_after: int = 0

    @property
    def action(self) -> Action:
        if self.blocked_by is not None:
            return Action.BLOCK
        return Action.COUNT if self.findings else Action.ALLOW

    @property
    def status(self) -> int:
        return BLOCK_STATUS[self.blocked_by] if self.blocked_by else 200

    @property
    def rule_ids(self) -> list[str]:
        """The blocking rules, or the counted ones when nothing blocked."""
        action = self.action
        return list(dict.fromkeys(f.match.rule_id for f in self.findings if f.action == action))

    def counted(self) -> list[Finding]:
        return [f for f in self.findings if f.action == Action.COUNT]


class WafEngine:
    """Applies each rule group's mode to its matches; one engine per protected service."""

    def __init__(
        self, settings: WafSettings, *, agent: str, detectors: Detectors | None = None
    ) -> None:
        self.settings = settings
        self.agent = agent
        self.detectors = detectors or default_detectors()
        self._modes = settings.groups.model_dump()

    def enabled(self, group: str) -> bool:
        return bool(self._modes[group] != "OFF")

    def judge(self, verdict: Verdict, group: str, matches: Sequence[RuleMatch]) -> bool:
        """Record `group`'s matches under its mode; True when the request is now blocked."""
        mode = self._modes[group]
        if not matches or mode == "OFF":
            return False
        action = Action.BLOCK if mode == "BLOCK" else Action.COUNT
        for match in matches:
            verdict.findings.append(Finding(match, action))
            WAF_MATCHES.labels(self.agent, match.rule_id, action.value).inc()
        if action is Action.BLOCK:
            verdict.blocked_by = group
            return True
        return False

    # -- the groups, in priority order ------------------------------------------------------

    def path(self, verdict: Verdict, allowed: bool) -> bool:
        if allowed:
            return False
        return self.judge(verdict, PATH_ALLOWLIST, [_match(allowlist.RULE_ID, PATH_ALLOWLIST)])

    def rate(self, verdict: Verdict, decision: RateDecision) -> bool:
        if decision.allowed:
            return False
        verdict.retry_after = decision.retry_after
        return self.judge(verdict, RATE, [_match(ratebased.RULE_ID, RATE, "client_ip")])

    def size(self, verdict: Verdict, violations: Sequence[tuple[str, int]]) -> bool:
        if not violations:
            return False
        verdict.limit = violations[0][1]
        matches = [
            _match(rule_id, SIZE, rule_id.removeprefix("size.")) for rule_id, _ in violations
        ]
        return self.judge(verdict, SIZE, matches)

    def content(self, verdict: Verdict, req: InspectedRequest) -> bool:
        """Groups 2 (managed) and 3 (bot) on the parsed request."""
        for group, detect in ((MANAGED, self.detectors.managed), (BOT, self.detectors.bot)):
            if self.enabled(group) and self.judge(verdict, group, _run(group, detect, req)):
                return True
        return False

    def needs_content(self) -> bool:
        return self.enabled(MANAGED) or self.enabled(BOT)


def _run(
    group: str, detect: Callable[[InspectedRequest], list[RuleMatch]], req: InspectedRequest
) -> list[RuleMatch]:
    """The detector's matches; a detector that fails is a match (fail closed in BLOCK mode)."""
    try:
        return detect(req)
    except Exception:
        log.exception("waf.detector_failed", group=group)
        return [_match(f"{group}.{INSPECTION_FAILED}", group, "request")]


def _match(rule_id: str, group: str, target: str = "uri") -> RuleMatch:
    return RuleMatch(rule_id=rule_id, group=group, target=target)
