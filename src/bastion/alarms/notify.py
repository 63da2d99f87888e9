"""Notifications: a firing or resolved alarm posted to every webhook as Slack-compatible JSON.

Webhook URLs are credentials (a Slack or Teams hook URL lets anyone post): `alarms.webhooks`
holds URLs or `secret://` references, resolved into `SecretValue`s and registered with the log
redactor; anywhere else a webhook is shown as its scheme and host only (`redact`).

Each post goes through an egress client built from `alarms.egress` (the allow-list; the default
allows nothing). The URL is checked against that policy before the request is made, so that a
refusal is recorded with the redacted URL (the egress transport would log the whole path). A
connection error, HTTP 429 or 5xx is retried `retries` times with exponential backoff
(`backoff_seconds`, doubled each time, at most 60 s); a refusal or another status is not.
Every attempt is audited (`alarm_notify`, outcome `ok`, `error` or `denied:egress`, the
webhook redacted) and kept in the bounded list of deliveries the console shows.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bastion.alarms.state import Transition
from bastion.core.audit_entry import AuditEntry, AuditSink
from bastion.egress import EgressDenied, EgressPolicy, Resolver, check_url, egress_client
from bastion.observability.redact import remember
from bastion.security import SecretValue, is_reference, resolve

__all__ = ["Delivery", "Notifier", "message", "redact", "resolve_webhooks"]

AUDIT_METHOD = "alarm_notify"
MAX_BACKOFF_SECONDS = 60.0
_COLORS = {"firing": "#d93025", "resolved": "#2eb886"}

Sleep = Callable[[float], Awaitable[None]]


def redact(url: str) -> str:
    """A webhook URL as it may be shown: scheme and host (and port), nothing after."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}" if parts.scheme and host else "<webhook>"


def resolve_webhooks(entries: Sequence[str], base_dir: Path) -> list[SecretValue]:
    """`alarms.webhooks` as secret values: references resolved, plain URLs wrapped; each URL,
    and its part after the host, registered with the log redactor. Raises `SecretError` naming
    a reference that fails."""
    values = []
    for entry in entries:
        value = resolve(entry, base_dir) if is_reference(entry) else SecretValue(entry)
        remember(value.get())
        # What follows the host too: a log line may show the URL written another way (the
        # egress transport's, with the port spelled out).
        remember(value.get().removeprefix(redact(value.get())))
        values.append(value)
    return values


def message(transition: Transition) -> dict[str, object]:
    """The Slack-compatible body of a notification: `text`, plus one coloured attachment."""
    value = "no value" if transition.value is None else f"{transition.value:.6g}"
    title = f"[{transition.event.upper()}] {transition.rule} ({transition.severity})"
    return {
        "text": f"{title}: {transition.summary} (value {value})",
        "attachments": [
            {
                "color": _COLORS.get(transition.event, "#808080"),
                "title": title,
                "text": transition.summary,
                "fields": [
                    {"title": "value", "value": value, "short": True},
                    {"title": "severity", "value": transition.severity, "short": True},
                ],
                "ts": int(transition.at),
            }
        ],
    }


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to post one notification to one webhook."""

    at: float
    rule: str
    event: str
    webhook: str  # redacted: scheme://host
    attempt: int
    outcome: str  # ok | error | denied:egress
    status: int | None
    error: str | None


class Notifier:
    """Posts notifications to the webhooks, with retries; records and audits every attempt."""

    def __init__(
        self,
        webhooks: Sequence[SecretValue],
        policy: EgressPolicy,
        *,
        retries: int = 3,
        backoff_seconds: float = 1.0,
        audit: AuditSink | None = None,
        principal: str = "gateway",
        history_size: int = 500,
        timeout_seconds: float = 10.0,
        resolver: Resolver | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._webhooks = list(webhooks)
        self._policy = policy
        self._retries = retries
        self._backoff = backoff_seconds
        self._audit = audit
        self._principal = principal
        self._sleep = sleep
        self._deliveries: deque[Delivery] = deque(maxlen=history_size)
        self._http = egress_client(
            policy,
            principal=principal,
            audit=audit,
            resolver=resolver,
            timeout=timeout_seconds,
            trust_env=False,
        )

    def deliveries(self, limit: int) -> list[Delivery]:
        """The latest `limit` attempts, newest first."""
        return list(reversed(self._deliveries))[: max(limit, 0)]

    async def notify(self, transition: Transition) -> None:
        """Post `transition` to every webhook (concurrently); never raises for a webhook."""
        body = message(transition)
        await asyncio.gather(*(self._deliver(hook, transition, body) for hook in self._webhooks))

    async def _deliver(
        self, hook: SecretValue, transition: Transition, body: dict[str, object]
    ) -> None:
        for attempt in range(1, self._retries + 2):
            outcome, status, error = await self._post(hook, body)
            await self._record(hook, transition, attempt, outcome, status, error)
            if outcome != "error" or not _retryable(status) or attempt > self._retries:
                return
            await self._sleep(min(self._backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))

    async def _post(
        self, hook: SecretValue, body: dict[str, object]
    ) -> tuple[str, int | None, str | None]:
        try:
            check_url(self._policy, hook.get())
        except EgressDenied as exc:
            return (
                "denied:egress",
                None,
                f"the egress policy refuses it ({exc.rule}): add its host to alarms.egress",
            )
        try:
            answer = await self._http.post(hook.get(), json=body)
        except EgressDenied as exc:  # an address or a redirect the policy refuses
            return "denied:egress", None, f"the egress policy refuses it ({exc.rule})"
        except httpx.HTTPError as exc:  # messages may hold the URL: the type says enough
            return "error", None, type(exc).__name__
        if answer.is_success:
            return "ok", answer.status_code, None
        return "error", answer.status_code, f"HTTP {answer.status_code}"

    async def _record(
        self,
        hook: SecretValue,
        transition: Transition,
        attempt: int,
        outcome: str,
        status: int | None,
        error: str | None,
    ) -> None:
        shown = redact(hook.get())
        self._deliveries.append(
            Delivery(
                time.time(),
                transition.rule,
                transition.event,
                shown,
                attempt,
                outcome,
                status,
                error,
            )
        )
        if self._audit is None:
            return
        detail = f"{transition.rule} {transition.event} to {shown}, attempt {attempt}"
        entry = AuditEntry.for_event(
            principal=self._principal,
            agent=self._principal,
            method=AUDIT_METHOD,
            outcome=outcome,
            started=time.perf_counter(),
            detail=detail if error is None else f"{detail}: {error}",
        )
        entry.status = status or 0
        written = self._audit(entry)
        if inspect.isawaitable(written):
            await written

    async def aclose(self) -> None:
        await self._http.aclose()


def _retryable(status: int | None) -> bool:
    """A connection error (no status), 429 or a server error."""
    return status is None or status == 429 or status >= 500
