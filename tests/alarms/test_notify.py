"""Webhook notifications: delivered to a real local receiver through the egress perimeter,
retried on 5xx and connection errors with backoff, refused by the egress policy, every attempt
audited and recorded, webhook URLs resolved from secret references and never shown in full."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.alarms.notify import Notifier, message, redact, resolve_webhooks
from bastion.alarms.state import Transition
from bastion.core.audit_entry import AuditEntry
from bastion.egress import EgressPolicy
from bastion.observability.redact import redact_text
from bastion.security import SecretError, SecretValue
from bastion.testing.ports import closed_port_url
from tests.alarms.servers import Receiver, webhook_receiver

SECRET_PATH = "/services/T0001/B0002/hush-hush-token"
FIRING = Transition(1000.0, "HighErrors", "critical", "firing", 0.25, "Too many errors")


def loopback() -> EgressPolicy:
    return EgressPolicy(allowed_hosts=("127.0.0.1",), allow_private=("127.0.0.1",))


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def notifier(
    url: str, policy: EgressPolicy, audit: list[AuditEntry], waits: Waits, retries: int = 3
) -> Notifier:
    return Notifier(
        [SecretValue(url)],
        policy,
        retries=retries,
        backoff_seconds=1.0,
        audit=audit.append,
        sleep=waits,
    )


def test_the_message_is_slack_compatible() -> None:
    body = message(FIRING)
    assert body["text"] == "[FIRING] HighErrors (critical): Too many errors (value 0.25)"
    [attachment] = body["attachments"]  # type: ignore[misc]
    assert attachment["color"] == "#d93025" and attachment["ts"] == 1000


async def test_a_notification_is_posted_and_audited() -> None:
    receiver, audit, waits = Receiver(), [], Waits()
    with webhook_receiver(receiver) as server:
        hooks = notifier(server.url + SECRET_PATH, loopback(), audit, waits)
        await hooks.notify(FIRING)
        await hooks.aclose()
    assert receiver.bodies == [message(FIRING)] and receiver.paths == [SECRET_PATH]
    [delivery] = hooks.deliveries(10)
    assert (delivery.outcome, delivery.status, delivery.attempt) == ("ok", 200, 1)
    assert delivery.webhook == server.url  # scheme://host:port, no path
    [entry] = audit
    assert (entry.method, entry.outcome, entry.principal, entry.status) == (
        "alarm_notify",
        "ok",
        "gateway",
        200,
    )
    assert entry.detail == f"HighErrors firing to {server.url}, attempt 1"


async def test_server_errors_are_retried_with_backoff_until_one_succeeds() -> None:
    receiver, audit, waits = Receiver(statuses=[500, 503, 429]), [], Waits()
    with webhook_receiver(receiver) as server:
        hooks = notifier(server.url + SECRET_PATH, loopback(), audit, waits)
        await hooks.notify(FIRING)
        await hooks.aclose()
    assert len(receiver.bodies) == 4
    assert waits.seconds == [1.0, 2.0, 4.0]
    outcomes = [(d.attempt, d.outcome, d.status) for d in reversed(hooks.deliveries(10))]
    assert outcomes == [(1, "error", 500), (2, "error", 503), (3, "error", 429), (4, "ok", 200)]
    assert [e.outcome for e in audit] == ["error", "error", "error", "ok"]
    assert audit[0].detail is not None and audit[0].detail.endswith("attempt 1: HTTP 500")


async def test_retries_end_and_a_client_error_is_not_retried() -> None:
    receiver, audit, waits = Receiver(statuses=[500, 500, 500, 404]), [], Waits()
    with webhook_receiver(receiver) as server:
        hooks = notifier(server.url + SECRET_PATH, loopback(), audit, waits, retries=2)
        await hooks.notify(FIRING)  # 500, 500, 500: given up after two retries
        await hooks.notify(FIRING)  # 404: not retried
        await hooks.aclose()
    assert [e.outcome for e in audit] == ["error"] * 4
    assert [d.status for d in reversed(hooks.deliveries(10))] == [500, 500, 500, 404]
    assert waits.seconds == [1.0, 2.0]


async def test_an_unreachable_webhook_is_retried_and_the_error_hides_the_url() -> None:
    audit: list[AuditEntry] = []
    waits = Waits()
    url = closed_port_url() + SECRET_PATH
    hooks = notifier(url, loopback(), audit, waits, retries=1)
    await hooks.notify(FIRING)
    await hooks.aclose()
    assert [(d.outcome, d.status, d.error) for d in hooks.deliveries(10)] == [
        ("error", None, "ConnectError")
    ] * 2
    assert all(SECRET_PATH not in str(e.detail) for e in audit)


async def test_the_egress_policy_refuses_a_webhook_it_does_not_allow() -> None:
    receiver, audit, waits = Receiver(), [], Waits()
    with webhook_receiver(receiver) as server:
        refusing = (  # not on the allow-list; a loopback address not allowed
            EgressPolicy(allow_private=("127.0.0.1",)),
            EgressPolicy(allowed_hosts=("127.0.0.1",)),
        )
        for policy in refusing:
            hooks = notifier(server.url + SECRET_PATH, policy, audit, waits)
            await hooks.notify(FIRING)
            await hooks.aclose()
            [delivery] = hooks.deliveries(10)
            assert delivery.outcome == "denied:egress" and delivery.status is None
            assert delivery.error is not None and "alarms.egress" in delivery.error
    assert receiver.bodies == [] and waits.seconds == []  # refused, never retried
    assert [e.outcome for e in audit] == ["denied:egress"] * 2
    assert rules_broken(audit) == ["not_allowed", "address"]
    assert all(SECRET_PATH not in str(e.detail) for e in audit)


def rules_broken(audit: list[AuditEntry]) -> list[str]:
    return [str(e.detail).rsplit("(", 1)[1].split(")")[0] for e in audit]


def test_webhooks_resolve_from_secret_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALARM_HOOK", "https://hooks.example.com" + SECRET_PATH)
    (tmp_path / "hook").write_text("https://other.example.com/hook/abc\n")
    hooks = resolve_webhooks(
        ["secret://env/ALARM_HOOK", "secret://file/hook", "https://plain.example.com/x"], tmp_path
    )
    assert [h.get() for h in hooks] == [
        "https://hooks.example.com" + SECRET_PATH,
        "https://other.example.com/hook/abc",
        "https://plain.example.com/x",
    ]
    assert SECRET_PATH not in repr(hooks)
    # The egress transport's log line writes the URL with its port: the path is still redacted.
    logged = redact_text(f"egress.denied url=https://hooks.example.com:443{SECRET_PATH}")
    assert SECRET_PATH not in logged and "hooks.example.com:443" in logged
    with pytest.raises(SecretError, match="ALARM_NOPE"):
        resolve_webhooks(["secret://env/ALARM_NOPE"], tmp_path)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T/B/x?token=1", "https://hooks.slack.com"),
        ("http://user:pw@10.0.0.1:8080/hook", "http://10.0.0.1:8080"),
        ("not a url", "<webhook>"),
    ],
)
def test_redaction_keeps_scheme_and_host(url: str, shown: str) -> None:
    assert redact(url) == shown


async def test_a_redirect_the_policy_does_not_allow_is_refused_by_the_transport() -> None:
    receiver, audit, waits = Receiver(statuses=[302]), [], Waits()
    with webhook_receiver(receiver) as server:
        hooks = notifier(server.url + SECRET_PATH, loopback(), audit, waits)
        await hooks.notify(FIRING)
        await hooks.aclose()
    [delivery] = hooks.deliveries(10)
    assert (delivery.outcome, delivery.error) == (
        "denied:egress",
        "the egress policy refuses it (not_allowed)",
    )
    assert len(receiver.bodies) == 1 and waits.seconds == []
    # The transport audits its refusal (naming where the redirect led), then the notifier.
    assert [e.outcome for e in audit][-1] == "denied:egress"
    assert any("elsewhere.example" in str(e.detail) for e in audit)
    assert all(SECRET_PATH not in str(e.detail) for e in audit)
