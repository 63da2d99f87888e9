"""`AlarmService`: scrape, evaluate, track and notify, every `alarms.interval_seconds`.

The gateway builds one in its lifespan (`AlarmService.from_settings`), `start()`s it and
`close()`s it; the console reads `rules()`, `states()`, `targets()`, `history(limit)` and
`notifications(limit)`, or all of them as JSON-ready dicts with `snapshot(limit)`.
`evaluate_once(now)` runs one round (tests drive it with their own clock); notifications of a
round are posted in the background (`flush()` waits for them), so a slow webhook never delays
evaluation. A round that fails is logged and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from bastion.alarms.evaluate import SampleHistory, evaluate
from bastion.alarms.metrics import ALARM_FIRING
from bastion.alarms.notify import Delivery, Notifier, resolve_webhooks
from bastion.alarms.rules import AlarmRule, load_rules
from bastion.alarms.scrape import Scraper, ScrapeTarget, TargetStatus, targets_from
from bastion.alarms.state import AlarmState, Status, Tracker, Transition
from bastion.alarms.views import snapshot
from bastion.config import Settings
from bastion.core.audit_entry import AuditSink
from bastion.runtime import service_tls
from bastion.security import SecretValue

__all__ = ["AlarmService"]

log = structlog.get_logger("bastion.alarms")


class AlarmService:
    """The alarm engine of one gateway."""

    def __init__(
        self,
        rules: Sequence[AlarmRule],
        scraper: Scraper,
        notifier: Notifier,
        *,
        interval_seconds: float = 15.0,
        history_size: int = 500,
        clock: Callable[[], float] = time.time,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self._rules = list(rules)
        self._scraper = scraper
        self._notifier = notifier
        self._interval = interval_seconds
        self._clock = clock
        longest = max((rule.window or 0 for rule in self._rules), default=0)
        self._samples = SampleHistory(longest + 2 * interval_seconds)
        self._tracker = Tracker(self._rules, history_size=history_size)
        self._targets: dict[ScrapeTarget, TargetStatus] = {}
        self._wanted = frozenset(s.metric for rule in self._rules for s in rule.selectors())
        self._sending: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._round = asyncio.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        api_key: SecretValue,
        audit: AuditSink | None = None,
        principal: str = "gateway",
        targets: Sequence[ScrapeTarget] | None = None,
    ) -> AlarmService:
        """The service `settings.alarms` describes, scraping `targets` (default: the gateway
        and every configured agent) with `api_key`. Raises `RulesError` for a bad rules file
        and `SecretError` for a webhook reference that does not resolve."""
        alarms = settings.alarms
        rules = load_rules(settings.path(alarms.rules_file) if alarms.rules_file else None)
        webhooks = resolve_webhooks(alarms.webhooks, settings.base_dir)
        scraper = Scraper(
            targets_from(settings, principal) if targets is None else targets,
            api_key,
            principal=principal,
            audit=audit,
            timeout_seconds=settings.client.timeout_seconds,
            verify=service_tls(settings),
        )
        notifier = Notifier(
            webhooks,
            alarms.egress,
            retries=alarms.webhook_retries,
            backoff_seconds=alarms.webhook_backoff_seconds,
            audit=audit,
            principal=principal,
            history_size=alarms.history_size,
        )
        return cls(
            rules,
            scraper,
            notifier,
            interval_seconds=alarms.interval_seconds,
            history_size=alarms.history_size,
            enabled=alarms.enabled,
        )

    # -- what the console reads -----------------------------------------------------------

    def rules(self) -> list[AlarmRule]:
        return list(self._rules)

    def states(self) -> list[AlarmState]:
        return self._tracker.states()

    def targets(self) -> list[TargetStatus]:
        return list(self._targets.values())

    def history(self, limit: int = 100) -> list[Transition]:
        """The latest state changes, newest first."""
        return self._tracker.history(limit)

    def notifications(self, limit: int = 100) -> list[Delivery]:
        """The latest webhook delivery attempts, newest first."""
        return self._notifier.deliveries(limit)

    def snapshot(self, limit: int = 100) -> dict[str, Any]:
        """Rules, states, targets, and the latest `limit` changes and deliveries, as JSON-ready
        dicts (`bastion.alarms.views`)."""
        return snapshot(
            enabled=self.enabled,
            interval_seconds=self._interval,
            rules=self._rules,
            states=self.states(),
            targets=self.targets(),
            history=self.history(limit),
            notifications=self.notifications(limit),
        )

    # -- running --------------------------------------------------------------------------

    async def start(self, delay_seconds: float | None = None) -> None:
        """Evaluate every interval until `close()` (nothing when `alarms.enabled` is off),
        the first time after `delay_seconds` (default: one interval, so that a gateway that
        starts it in its lifespan is serving before it scrapes itself)."""
        if self.enabled and self._loop_task is None:
            delay = self._interval if delay_seconds is None else delay_seconds
            self._loop_task = asyncio.create_task(self._run(delay), name="alarms")

    async def _run(self, delay: float) -> None:
        await asyncio.sleep(delay)
        while True:
            try:
                await self.evaluate_once()
            except Exception:  # the loop outlives any one round
                log.exception("alarms.round_failed")
            await asyncio.sleep(self._interval)

    async def evaluate_once(self, now: float | None = None) -> list[Transition]:
        """Scrape every target, evaluate every rule at `now` (default: the clock) and post the
        notifications of the changes (in the background); the changes."""
        async with self._round:
            results = await self._scraper.scrape(self._wanted)
            at = self._clock() if now is None else now
            for result in results:
                self._note(
                    TargetStatus(
                        result.target.name, result.target.url, result.ok, result.error, at
                    ),
                    result.target,
                )
            self._samples.record(at, results)
            changes = []
            for rule in self._rules:
                changes += self._tracker.observe(rule, evaluate(rule, self._samples, at), at)
            for state in self._tracker.states():
                ALARM_FIRING.labels(state.rule, state.severity).set(state.status is Status.FIRING)
        for change in changes:
            if change.notified:
                log.warning(
                    "alarms.changed", alarm=change.rule, change=change.event, value=change.value
                )
                self._send(change)
        return changes

    def _note(self, status: TargetStatus, target: ScrapeTarget) -> None:
        """Keep a target's latest scrape; log when it goes down or comes back."""
        before = self._targets.get(target)
        self._targets[target] = status
        if not status.up and (before is None or before.up):
            log.warning(
                "alarms.target_down", target=status.name, url=status.url, error=status.error
            )
        elif status.up and before is not None and not before.up:
            log.info("alarms.target_up", target=status.name, url=status.url)

    def _send(self, change: Transition) -> None:
        task = asyncio.create_task(self._notifier.notify(change))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def flush(self) -> None:
        """Wait until every notification started so far has been delivered or given up."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def close(self, grace_seconds: float = 5.0) -> None:
        """Stop the loop, let the notifications under way finish (for `grace_seconds` at
        most), close the clients."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self._sending:  # a webhook still retrying is given up on after `grace_seconds`
            _, late = await asyncio.wait(self._sending, timeout=grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._scraper.aclose()
        await self._notifier.aclose()
