"""The alarm engine end to end: real `/metrics` servers scraped with the gateway's key, every
rule kind evaluated from their text, pending -> firing -> resolved with `for:` on an injected
clock, notifications posted to a real receiver and audited, and targets that cannot be scraped
leaving their rules' states alone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from bastion.alarms import AlarmService, ScrapeTarget, Status
from bastion.alarms.notify import Notifier
from bastion.alarms.rules import parse_rules
from bastion.alarms.scrape import Scraper
from bastion.core.audit_entry import AuditEntry
from bastion.egress import EgressPolicy
from bastion.security import SecretValue
from bastion.testing.live_server import LiveServer
from bastion.testing.ports import closed_port_url
from tests.alarms.servers import (
    KEY,
    MetricsSource,
    Receiver,
    exposition,
    metrics_server,
    webhook_receiver,
)

RULES = parse_rules(
    """
rules:
  - {name: Failures, kind: rate, metric: bastion_auth_failures_total, window: 1m,
     threshold: 1, summary: failures per second}
  - {name: ServerErrors, kind: ratio, metric: bastion_http_responses_total,
     labels: {status_class: 5xx}, denominator: {metric: bastion_http_responses_total},
     window: 1m, threshold: 0.1, for: 30s, severity: critical, summary: share of 5xx}
  - {name: DeadLetters, kind: delta, metric: bastion_queue_dead_letters, window: 1m,
     threshold: 0, summary: dead letters grow}
  - {name: Breaker, kind: gauge, metric: bastion_circuit_state, op: ">=", threshold: 2,
     summary: a breaker is open}
""",
    "test rules",
)


ROUTE = (("agent", "gateway"), ("route", "documents"))


@dataclass
class Metrics:
    failures: float = 0.0
    ok: float = 0.0
    errors: float = 0.0
    dead: float = 0.0
    breaker: float = 0.0

    def text(self) -> str:
        return exposition(
            bastion_auth_failures=("counter", {(("agent", "gateway"),): self.failures}),
            bastion_http_responses=(
                "counter",
                {
                    (
                        ("agent", "gateway"),
                        ("route", "documents"),
                        ("status_class", "2xx"),
                    ): self.ok,
                    (
                        ("agent", "gateway"),
                        ("route", "documents"),
                        ("status_class", "5xx"),
                    ): self.errors,
                },
            ),
            bastion_queue_dead_letters=("gauge", {(("queue", "documents"),): self.dead}),
            bastion_circuit_state=("gauge", {(("name", "http://127.0.0.1:8084"),): self.breaker}),
        )


@dataclass
class Stack:
    service: AlarmService
    sources: list[MetricsSource]
    servers: list[LiveServer]
    receiver: Receiver
    audit: list[AuditEntry]

    def serve(self, *metrics: Metrics) -> None:
        for source, m in zip(self.sources, metrics, strict=True):
            source.text = m.text()


@pytest.fixture
def servers() -> Iterator[tuple[list[MetricsSource], list[LiveServer], Receiver, LiveServer]]:
    sources, receiver = [MetricsSource(), MetricsSource()], Receiver()
    with ExitStack() as stack:
        live = [stack.enter_context(metrics_server(s)) for s in sources]
        hook = stack.enter_context(webhook_receiver(receiver))
        yield sources, live, receiver, hook


@pytest.fixture
async def stack(
    servers: tuple[list[MetricsSource], list[LiveServer], Receiver, LiveServer],
) -> AsyncIterator[Stack]:
    sources, live, receiver, hook = servers
    audit: list[AuditEntry] = []
    targets = [ScrapeTarget("gateway", live[0].url), ScrapeTarget("archivist", live[1].url)]
    service = AlarmService(
        RULES,
        Scraper(targets, SecretValue(KEY), audit=audit.append),
        Notifier(
            [SecretValue(hook.url + "/hooks/secret-token")],
            EgressPolicy(allowed_hosts=("127.0.0.1",), allow_private=("127.0.0.1",)),
            audit=audit.append,
            backoff_seconds=0,
        ),
        interval_seconds=15,
        history_size=50,
    )
    yield Stack(service, sources, live, receiver, audit)
    await service.close()


def states(service: AlarmService) -> dict[str, tuple[Status, float | None, bool]]:
    return {s.rule: (s.status, s.value, s.nodata) for s in service.states()}


async def test_every_kind_is_evaluated_from_scraped_metrics(stack: Stack) -> None:
    # Two targets, scraped every 15 s: the values add up over both.
    gateway, archivist = Metrics(), Metrics()
    for step in range(5):  # t = 0, 15, ..., 60
        gateway.failures += 30  # 2/s
        archivist.failures += 15  # 1/s
        gateway.ok += 90
        gateway.errors += 10  # 10% of the gateway's responses
        archivist.ok += 100
        archivist.dead = step
        archivist.breaker = 2 if step == 4 else 0
        stack.serve(gateway, archivist)
        await stack.service.evaluate_once(now=step * 15.0)
    [failures, errors, dead, breaker] = [states(stack.service)[r.name] for r in RULES]
    assert failures[1] == pytest.approx(3.0) and failures[0] is Status.FIRING
    assert errors[1] == pytest.approx(10 / 200) and errors[0] is Status.INACTIVE
    # 4 letters over the 45 s between the first and last scrape in the minute, scaled to it.
    assert dead[1] == pytest.approx(3 * 60 / 45) and dead[0] is Status.FIRING
    assert breaker == (Status.FIRING, 2.0, False)
    assert [s.up for s in stack.service.targets()] == [True, True]
    assert {key for source in stack.sources for key in source.keys} == {KEY}
    assert (
        REGISTRY.get_sample_value(
            "bastion_alarm_firing", {"alarm": "Breaker", "severity": "warning"}
        )
        == 1.0
    )


async def test_pending_firing_resolved_with_for_and_notifications(stack: Stack) -> None:
    gateway, quiet = Metrics(), Metrics()
    events = []
    # 5xx share: 0 at first, then half the responses for a while, then none again.
    for step in range(12):
        gateway.ok += 50
        gateway.errors += 50 if 2 <= step <= 6 else 0
        stack.serve(gateway, quiet)
        events += [(step, c.event) for c in await stack.service.evaluate_once(now=step * 15.0)]
    # Breached from t=30: pending, firing 30 s later (for: 30s), resolved at t=135, the first
    # time the 1 m window (75, 135] holds no new errors (the last came between t=75 and 90).
    assert events == [(2, "pending"), (4, "firing"), (9, "resolved")]
    await stack.service.flush()
    history = stack.service.history(10)
    assert [t.event for t in history][:3] == ["resolved", "firing", "pending"]
    texts = [body["text"] for body in stack.receiver.bodies]
    assert texts[0].startswith("[FIRING] ServerErrors (critical): share of 5xx")
    assert texts[1].startswith("[RESOLVED] ServerErrors (critical)")
    deliveries = stack.service.notifications(10)
    assert [(d.rule, d.event, d.outcome) for d in deliveries] == [
        ("ServerErrors", "resolved", "ok"),
        ("ServerErrors", "firing", "ok"),
    ]
    assert all("secret-token" not in d.webhook for d in deliveries)
    view = json.loads(json.dumps(stack.service.snapshot(limit=2)))
    assert [r["name"] for r in view["rules"]] == [r.name for r in RULES]
    assert view["rules"][1]["expr"].endswith("> 0.1") and view["rules"][1]["for"] == "30s"
    assert view["states"][1]["status"] == "inactive" and view["states"][1]["value"] == 0.0
    assert [h["event"] for h in view["history"]] == ["resolved", "firing"]
    assert len(view["notifications"]) == 2 and "secret-token" not in json.dumps(view)
    notified = [e for e in stack.audit if e.method == "alarm_notify"]
    assert [e.outcome for e in notified] == ["ok", "ok"]
    assert all("secret-token" not in str(e.detail) for e in notified)


async def test_a_target_that_cannot_be_scraped_leaves_its_rules_alone(stack: Stack) -> None:
    gateway, archivist = Metrics(), Metrics(breaker=2)
    stack.serve(gateway, archivist)
    await stack.service.evaluate_once(now=0.0)
    assert states(stack.service)["Breaker"] == (Status.FIRING, 2.0, False)
    stack.sources[1].status = 500  # the archivist's /metrics breaks
    stack.sources[0].text = ""  # and the gateway has no breaker metric
    with capture_logs() as logs:
        await stack.service.evaluate_once(now=15.0)
        await stack.service.evaluate_once(now=30.0)  # still down: logged once
    assert [(e["event"], e["target"], e["error"]) for e in logs] == [
        ("alarms.target_down", "archivist", "HTTPStatusError: HTTP 500")
    ]
    assert states(stack.service)["Breaker"] == (Status.FIRING, 2.0, True)  # nodata, still firing
    down = {t.name: (t.up, t.error) for t in stack.service.targets()}
    assert down == {"gateway": (True, None), "archivist": (False, "HTTPStatusError: HTTP 500")}
    instance = stack.servers[1].url.removeprefix("http://")
    assert (
        REGISTRY.get_sample_value(
            "bastion_alarm_target_up", {"target": "archivist", "instance": instance}
        )
        == 0.0
    )
    await stack.service.flush()
    assert [d.event for d in stack.service.notifications(10)] == ["firing"]


async def test_wrong_key_garbage_and_dead_targets_are_errors_not_crashes(stack: Stack) -> None:
    source = MetricsSource(text="this is { not metrics")
    with metrics_server(source) as garbage:
        targets = [
            ScrapeTarget("garbage", garbage.url),
            ScrapeTarget("dead", closed_port_url()),
            ScrapeTarget("wrongkey", stack.servers[0].url),
        ]
        scraper = Scraper(targets[:2], SecretValue(KEY))
        wrong = Scraper(targets[2:], SecretValue("bk_not-the-key"))
        try:
            results = await scraper.scrape({"x"}) + await wrong.scrape({"x"})
        finally:
            await scraper.aclose()
            await wrong.aclose()
    errors = [r.error for r in results]
    assert errors[0] is not None and errors[0].startswith("bad metrics text")
    assert errors[1] == "ConnectError: All connection attempts failed"
    assert errors[2] == "HTTPStatusError: HTTP 401"
    assert all("bk_" not in str(e) for e in errors)


async def test_the_loop_runs_until_closed(stack: Stack) -> None:
    stack.serve(Metrics(breaker=2), Metrics())
    evaluated = asyncio.Event()

    def clock() -> float:  # read once per round, after the scrapes
        evaluated.set()
        return 1000.0

    service = stack.service
    service._clock = clock  # the round reads it; nothing else awaits before the loop sleeps
    await service.start(delay_seconds=0)
    await evaluated.wait()
    await service.close()
    assert states(service)["Breaker"][0] is Status.FIRING
    assert all(t.scraped_at == 1000.0 for t in service.targets())
