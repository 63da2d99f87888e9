"""`bastion config check`: every secret reference resolved and reported, values never shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bastion.project import init_project
from tests.cli.test_cli import run

PEPPER_ENV = "BASTION_T_CHECK_PEPPER"


def project(tmp_path: Path) -> Path:
    return init_project(tmp_path / "proj").config


def edit(config: Path, **sections: dict[str, object]) -> None:
    data = yaml.safe_load(config.read_text())
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    config.write_text(yaml.safe_dump(data))


def secret_values(config: Path) -> list[str]:
    folder = config.parent / "secrets"
    return [p.read_text().strip() for p in folder.iterdir() if p.is_file()]


def test_fresh_project_is_all_ok(tmp_path: Path) -> None:
    config = project(tmp_path)
    result = run("config", "check", "--config", str(config))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert "auth.pepper  secret://file/secrets/api-key-pepper  OK" in lines
    assert "audit.hmac_key  secret://file/secrets/audit.key  OK" in lines
    assert any(x.startswith("auth.token_service.signing_keys  ") for x in lines)
    for value in secret_values(config):
        assert value not in result.output


def test_missing_and_unreadable_references_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PEPPER_ENV, raising=False)
    config = project(tmp_path)
    edit(
        config,
        auth={"pepper": f"secret://env/{PEPPER_ENV}"},
        audit={"hmac_key": "secret://file/secrets/nope.key"},
    )
    result = run("config", "check", "--config", str(config))
    assert result.exit_code == 1
    out = result.output
    assert f"auth.pepper  secret://env/{PEPPER_ENV}  secret://env/{PEPPER_ENV}: environment" in out
    assert "audit.hmac_key  secret://file/secrets/nope.key  secret://file/secrets/nope.key: " in (
        out
    )
    assert "auth.token_service.signing_keys  secret://file/secrets/token-signing.jwks.json  OK" in (
        out
    )


def test_literal_in_a_credential_field_is_reported_not_shown(tmp_path: Path) -> None:
    config = project(tmp_path)
    literal = "hunter2-literal-pepper-value"
    edit(config, auth={"pepper": literal})
    result = run("config", "check", "--config", str(config), "--json")
    assert result.exit_code == 1
    assert literal not in result.output
    rows = json.loads(result.output)
    (bad,) = [r for r in rows if not r["ok"]]
    assert bad == {
        "key": "auth.pepper",
        "reference": "(literal)",
        "ok": False,
        "problem": "holds a literal: use a secret:// reference",
    }


def test_json_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PEPPER_ENV, "pepper-from-env-0123456789")
    config = project(tmp_path)
    edit(config, auth={"pepper": f"secret://env/{PEPPER_ENV}"})
    result = run("config", "check", "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {
        "key": "auth.pepper",
        "reference": f"secret://env/{PEPPER_ENV}",
        "ok": True,
        "problem": None,
    } in rows
    assert "pepper-from-env-0123456789" not in result.output


def test_vault_reference_with_bad_token_and_unreachable_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bastion.testing.fake_vault import FakeVault
    from bastion.testing.live_server import serve_in_thread

    vault = FakeVault("hvs.good-token-000000")
    vault.put("bastion/llm", {"api_key": "model-key-0123456789"})
    monkeypatch.setenv("BASTION_T_CHECK_VAULT", "hvs.bad-token-0000000")
    config = project(tmp_path)
    with serve_in_thread(vault.app) as live:
        edit(
            config,
            secrets={"vault": {"url": live.url, "token": "secret://env/BASTION_T_CHECK_VAULT"}},
            agents={
                "relay": {
                    "url": "http://127.0.0.1:1",
                    "api_key": "secret://vault/bastion/llm#api_key",
                }
            },
        )
        result = run("config", "check", "--config", str(config))
    assert result.exit_code == 1
    assert "agents.relay.api_key  secret://vault/bastion/llm#api_key  " in result.output
    assert "Vault refused the token (secret://env/BASTION_T_CHECK_VAULT)" in result.output
    assert "secrets.vault.token  secret://env/BASTION_T_CHECK_VAULT  OK" in result.output
    assert "hvs.bad-token" not in result.output and "model-key" not in result.output


def test_invalid_configuration_fails(tmp_path: Path) -> None:
    config = project(tmp_path)
    edit(config, secrets={"vault": {"token": "hvs.literal-token"}})
    result = run("config", "check", "--config", str(config))
    assert result.exit_code == 1
    assert "secrets.vault.token" in result.output and "never the token itself" in result.output
    assert "hvs.literal-token" not in result.output


# -- file modes, policy files, environment overrides -----------------------------------------


def bastion(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process: its own stdout, stderr and exit status."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "COLUMNS": "200", **(env or {})},
        check=False,
    )


def test_a_database_readable_by_others_is_a_warning_not_an_error(tmp_path: Path) -> None:
    config = project(tmp_path)
    database = config.parent / "bastion.db"
    database.chmod(0o644)
    (config.parent / "secrets" / "audit.key").chmod(0o640)

    result = run("config", "check", "--config", str(config), "--json")

    assert result.exit_code == 0, result.output
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 2, result.stderr
    assert any(
        w.startswith(f"warning: {database} holds the database")
        and "(mode 0644)" in w
        and f"chmod 600 {database}" in w
        for w in warnings
    )
    assert any("audit.key holds a secret" in w and "(mode 0640)" in w for w in warnings)
    rows = json.loads(result.stdout)
    assert all(row["ok"] for row in rows)


def test_a_fresh_project_has_nothing_exposed(tmp_path: Path) -> None:
    result = run("config", "check", "--config", str(project(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr


def test_a_broken_policy_json_names_file_and_line(tmp_path: Path) -> None:
    config = project(tmp_path)
    policy = config.parent / "policy.json"
    policy.write_text('{\n  "allow": {\n    "admin": ["*"],\n  }\n}\n')

    result = run("config", "check", "--config", str(config))

    assert result.exit_code == 1
    assert f"{policy}:4: invalid JSON" in result.stdout


def test_a_bad_pattern_in_policy_json_names_its_line(tmp_path: Path) -> None:
    config = project(tmp_path)
    policy = config.parent / "policy.json"
    policy.write_text(
        '{\n  "allow": {\n    "admin": ["*"],\n    "bob": ["get_status",\n'
        '            "not a pattern"]\n  },\n  "deny": {}\n}\n'
    )

    result = run("config", "check", "--config", str(config), "--json")

    assert result.exit_code == 1
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    problem = rows["policy.file"]["problem"]
    assert problem.startswith(f"{policy}:5: allow.bob: bad pattern 'not a pattern'"), problem


def test_guardrail_policies_are_checked_with_file_and_line(tmp_path: Path) -> None:
    config = project(tmp_path)
    good = tmp_path / "good.yaml"
    good.write_text('version: "1"\nname: good\ncontent_filters:\n  HATE: HIGH\n')
    broken = tmp_path / "broken.yaml"
    broken.write_text('version: "1"\nname: broken\ncontent_filters:\n  HATE: VERY_HIGH\n')
    args = ["config", "check", "--config", str(config), "--guardrail-policy", str(good)]

    ok = run(*args)
    bad = run(*args, "--guardrail-policy", str(broken))

    assert ok.exit_code == 0, ok.output
    assert f"guardrails  {good}  OK" in ok.stdout
    assert bad.exit_code == 1
    assert f"{broken}:4: content_filters.HATE: 'VERY_HIGH' is not one of" in bad.stdout


def test_an_unknown_override_warns_and_changes_nothing(tmp_path: Path) -> None:
    config = str(project(tmp_path))
    plain = bastion("config", "check", "--config", config, "--json")

    warned = bastion(
        "config", "check", "--config", config, "--json", env={"BASTION_AUDIT__NOPE": "1"}
    )

    assert plain.returncode == 0, plain.stderr
    assert warned.returncode == plain.returncode
    assert warned.stdout == plain.stdout
    assert json.loads(warned.stdout)
    assert warned.stderr.strip() == (
        "warning: environment variable BASTION_AUDIT__NOPE names no setting (audit.nope); "
        "it is ignored"
    )


def test_a_bad_override_value_names_the_variable(tmp_path: Path) -> None:
    config = str(project(tmp_path))

    result = bastion(
        "config",
        "check",
        "--config",
        config,
        env={"BASTION_AUTH__API_KEY_CACHE_SECONDS": "soon"},
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: environment variable BASTION_AUTH__API_KEY_CACHE_SECONDS")
    assert "valid number" in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_an_object_store_others_may_open_is_a_warning_not_an_error(tmp_path: Path) -> None:
    config = project(tmp_path)
    objects = config.parent / "objects"
    objects.mkdir(mode=0o700)
    objects.chmod(0o755)

    result = run("config", "check", "--config", str(config), "--json")

    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        f"warning: {objects} holds the stored documents and other users may open it "
        f"(mode 0755): run `chmod 700 {objects}`"
    ]
    assert all(row["ok"] for row in json.loads(result.stdout))


def test_an_audit_checkpoint_folder_others_may_open_is_a_warning(tmp_path: Path) -> None:
    config = project(tmp_path)
    checkpoints = config.parent / "audit-checkpoints"
    checkpoints.mkdir(mode=0o700)
    checkpoints.chmod(0o750)

    result = run("config", "check", "--config", str(config))

    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        f"warning: {checkpoints} holds the audit checkpoints and other users may open it "
        f"(mode 0750): run `chmod 700 {checkpoints}`"
    ]


def test_a_redis_url_selects_redis_and_an_ignored_one_is_warned_about(tmp_path: Path) -> None:
    from bastion.config import RateLimitSettings

    # A redis_url alone selects the shared store: replicas then count together.
    assert RateLimitSettings(redis_url="redis://127.0.0.1:6379/0").backend == "redis"
    assert RateLimitSettings().backend == "memory"
    # Memory chosen explicitly beside a redis_url: kept, and `config check` says so.
    config = project(tmp_path)
    edit(config, rate_limit={"backend": "memory", "redis_url": "redis://127.0.0.1:6379/0"})
    result = run("config", "check", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "rate_limit.redis_url is set but rate_limit.backend is 'memory'" in result.output
    edit(config, rate_limit={"backend": "redis"})
    result = run("config", "check", "--config", str(config))
    assert "rate_limit.redis_url is set" not in result.output


def test_grants_the_pipeline_needs_that_an_older_policy_lacks_are_warned_about(
    tmp_path: Path,
) -> None:
    config = project(tmp_path)
    policy_file = config.parent / "policy.json"
    policy = json.loads(policy_file.read_text())
    # A project initialised before the archivist owned the archive's writes.
    policy["allow"]["worker"] = ["orchestrator.process_document"]
    policy["allow"]["gateway"].remove("archivist.watch_events")
    policy_file.write_text(json.dumps(policy))

    result = run("config", "check", "--config", str(config))

    assert result.exit_code == 0, result.output  # a warning: the operator may mean it
    warnings = result.stderr.strip().splitlines()
    [worker] = [w for w in warnings if "grant worker " in w]
    assert "archivist.set_status" in worker and "archivist.stale_documents" in worker
    assert "orchestrator.process_document" not in worker
    assert "bastion init --force" in worker
    [gateway] = [w for w in warnings if "grant gateway " in w]
    assert "archivist.watch_events" in gateway and "archivist.record_upload" not in gateway
