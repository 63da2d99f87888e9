"""The engine as the gateway builds it from the configuration: targets (the gateway and every
agent replica), rules file, webhooks from secret references; and the shipped policy grants the
gateway the scrape of every process, which `bastion config check` warns about when missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bastion.alarms import AlarmService, RulesError, ScrapeTarget, Status, targets_from
from bastion.alarms.scrape import Scraper
from bastion.config import Settings
from bastion.project import DEFAULT_POLICY, init_project
from bastion.security import SecretError, SecretValue, check_references, resolve
from bastion.security.rbac import Policy
from bastion.testing import serve_in_thread
from bastion.web.gateway import build_gateway, gateway_api_key
from tests.alarms.servers import KEY, MetricsSource, Receiver, metrics_server, webhook_receiver
from tests.cli.runner import run
from tests.runtime.conftest import make_env
from tests.web.conftest import make_project, serve_archivist

RULES = """
rules:
  - {name: Breaker, kind: gauge, metric: bastion_circuit_state, op: ">=", threshold: 2,
     severity: critical, summary: a breaker is open}
"""


def test_targets_are_the_gateway_and_every_agent_replica() -> None:
    settings = Settings(
        pipeline={"gateway_url": "https://gw.internal:8443/"},
        agents={
            "archivist": {"url": ["http://a1:8084", "http://a2:8084"]},
            "extractor": {"url": "http://x", "port": 8082},
        },
    )
    assert targets_from(settings) == [
        ScrapeTarget("gateway", "https://gw.internal:8443"),
        ScrapeTarget("archivist", "http://a1:8084"),
        ScrapeTarget("archivist", "http://a2:8084"),
        ScrapeTarget("extractor", "http://x:8082"),
    ]
    assert [t.instance for t in targets_from(settings)][:2] == ["gw.internal:8443", "a1:8084"]


async def test_the_service_from_settings_scrapes_evaluates_and_notifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    gateway = MetricsSource(text="")
    archivist = MetricsSource(text='bastion_circuit_state{name="tavily"} 2\n')
    receiver = Receiver()
    with (
        metrics_server(gateway) as gw,
        metrics_server(archivist) as arc,
        webhook_receiver(receiver) as hook,
    ):
        monkeypatch.setenv("T_ALARM_HOOK", hook.url + "/services/hidden")
        settings = Settings(
            base_dir=tmp_path,
            pipeline={"gateway_url": gw.url},
            agents={"archivist": {"url": arc.url}},
            alarms={
                "rules_file": "rules.yaml",
                "webhooks": ["secret://env/T_ALARM_HOOK"],
                "webhook_backoff_seconds": 0,
                "egress": {"allowed_hosts": ["127.0.0.1"], "allow_private": ["127.0.0.1"]},
            },
        )
        service = AlarmService.from_settings(settings, api_key=SecretValue(KEY))
        try:
            assert [r.name for r in service.rules()] == ["Breaker"]
            await service.evaluate_once(now=100.0)
            await service.flush()
        finally:
            await service.close()
    [state] = service.states()
    assert (state.status, state.value) == (Status.FIRING, 2.0)
    assert [t.name for t in service.targets()] == ["gateway", "archivist"]
    assert receiver.paths == ["/services/hidden"]
    [delivery] = service.notifications()
    assert delivery.webhook == hook.url and delivery.outcome == "ok"


def test_bad_rules_and_webhooks_fail_at_start(tmp_path: Path) -> None:
    settings = Settings(base_dir=tmp_path, alarms={"rules_file": "missing.yaml"})
    with pytest.raises(RulesError, match=r"alarms\.rules_file"):
        AlarmService.from_settings(settings, api_key=SecretValue(KEY))
    settings = Settings(base_dir=tmp_path, alarms={"webhooks": ["secret://env/T_ALARM_NOPE"]})
    with pytest.raises(SecretError, match="T_ALARM_NOPE"):
        AlarmService.from_settings(settings, api_key=SecretValue(KEY))
    # `bastion config check` (and `bastion up`'s preflight) resolve webhook references too.
    [check] = [c for c in check_references(settings) if c.key.startswith("alarms.")]
    assert (check.key, check.ok) == ("alarms.webhooks.0", False)


@pytest.mark.parametrize("hook", ["hooks.slack.com/x", "ftp://host/x", "file:///etc/passwd"])
def test_a_webhook_must_be_a_url_or_a_reference(hook: str) -> None:
    with pytest.raises(ValueError, match=r"webhooks\[0\] must be an http\(s\) URL or a secret"):
        Settings(alarms={"webhooks": [hook]})


def test_the_shipped_policy_lets_the_gateway_scrape_every_configured_process(
    tmp_path: Path,
) -> None:
    settings = Settings(**yaml.safe_load(init_project(tmp_path / "p").config.read_text()))
    policy = Policy(DEFAULT_POLICY)
    for target in targets_from(settings):
        assert policy.decide("gateway", target.name, "metrics")[0], target.name
    assert not policy.decide("gateway", "archivist", "archive")[0]
    assert not policy.decide("gateway", "nobody", "metrics")[0]


def test_config_check_warns_when_the_gateway_may_not_scrape(tmp_path: Path) -> None:
    config = init_project(tmp_path / "proj").config
    policy_file = config.parent / "policy.json"
    policy = json.loads(policy_file.read_text())
    policy["allow"]["gateway"].remove("archivist.metrics")  # a policy from before the alarms
    policy_file.write_text(json.dumps(policy))
    result = run("config", "check", "--config", str(config))
    assert result.exit_code == 0, result.output
    [gateway] = [w for w in result.stderr.splitlines() if "grant gateway " in w]
    assert "archivist.metrics" in gateway and "gateway.metrics" not in gateway


async def test_the_gateway_credential_scrapes_a_real_agent(tmp_path: Path) -> None:
    """The shipped project: the gateway's own key may read the echo agent's /metrics, the
    worker's may not (403)."""
    for env in make_env(tmp_path):
        keys = {
            name: resolve(ref, env.settings.base_dir)
            for name, ref in (
                ("gateway", env.settings.pipeline.gateway_api_key),
                ("worker", env.settings.pipeline.worker_api_key),
            )
            if ref is not None
        }
        target = ScrapeTarget("echo", env.url)
        results = {}
        for name, key in keys.items():
            scraper = Scraper([target], key, principal=name)
            try:
                [results[name]] = await scraper.scrape({"process_resident_memory_bytes"})
            finally:
                await scraper.aclose()
    assert results["gateway"].ok and [s.name for s in results["gateway"].samples] == [
        "process_resident_memory_bytes"
    ]
    assert results["worker"].error == "HTTPStatusError: HTTP 403"


async def test_a_real_gateway_and_archivist_are_scraped_with_the_gateway_key(
    tmp_path: Path, sqlite_url: str
) -> None:
    """As the gateway builds the engine: its own credential reads its own /metrics and the
    archivist's; the agents that are not running are down, with the reason."""
    project = make_project(tmp_path, sqlite_url)
    with serve_archivist(project), serve_in_thread(build_gateway(project.settings)) as gateway:
        project.settings.pipeline.gateway_url = gateway.url
        service = AlarmService.from_settings(
            project.settings, api_key=gateway_api_key(project.settings)
        )
        try:
            await service.evaluate_once()
        finally:
            await service.close()
    targets = {t.name: (t.up, t.error) for t in service.targets()}
    assert targets.pop("gateway") == (True, None)
    assert targets.pop("archivist") == (True, None)
    assert targets and all(str(error).startswith("ConnectError") for _, error in targets.values())
    memory = next(s for s in service.states() if s.rule == "ProcessMemoryHigh")
    assert memory.value is not None and memory.value > 0 and memory.status is Status.INACTIVE
