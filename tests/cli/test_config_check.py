"""`bastion config check`: every secret reference resolved and reported, values never shown."""

from __future__ import annotations

import json
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
