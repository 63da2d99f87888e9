"""Config lookup order, env overrides, relative paths, and actionable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import (
    ConfigError,
    EnvOverrideError,
    find_config,
    load_settings,
    parse_rate,
    unknown_env_overrides,
)


def _cfg(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = _cfg(tmp_path / "a" / "bastion.yaml", "server: {port: 1111}\n")
    env = _cfg(tmp_path / "b" / "bastion.yaml", "server: {port: 2222}\n")
    local = _cfg(tmp_path / "c" / "bastion.yaml", "server: {port: 3333}\n")
    monkeypatch.chdir(local.parent)
    monkeypatch.delenv("BASTION_CONFIG", raising=False)
    assert load_settings().server.port == 3333
    monkeypatch.setenv("BASTION_CONFIG", str(env))
    assert load_settings().server.port == 2222
    assert load_settings(explicit).server.port == 1111
    assert find_config(explicit) == explicit


def test_missing_config_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BASTION_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="bastion init"):
        load_settings()
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_env_overrides_beat_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(tmp_path / "bastion.yaml", "rate_limit: {default: 5/minute}\nserver: {port: 9}\n")
    monkeypatch.setenv("BASTION_RATE_LIMIT__DEFAULT", "7/second")
    monkeypatch.setenv("BASTION_SERVER__PORT", "9999")
    s = load_settings(cfg)
    assert s.rate_limit.default == "7/second" and s.server.port == 9999


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path / "proj" / "bastion.yaml", "database: {url: 'sqlite:///data/x.db'}\n")
    s = load_settings(cfg)
    assert s.database_url() == f"sqlite:///{tmp_path / 'proj' / 'data' / 'x.db'}"
    assert s.path("policy.json") == tmp_path / "proj" / "policy.json"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("server: [1, 2]\n", "server"),
        ("nosuchsection: {}\n", "nosuchsection"),
        ("rate_limit: {default: lots}\n", "N/second"),
        ("server: {port: : :}\n", "not valid YAML"),
    ],
)
def test_invalid_config_names_file_and_problem(tmp_path: Path, text: str, problem: str) -> None:
    cfg = _cfg(tmp_path / "bastion.yaml", text)
    with pytest.raises(ConfigError, match=problem) as info:
        load_settings(cfg)
    assert str(cfg) in str(info.value)


def test_parse_rate() -> None:
    assert parse_rate("300/minute") == (300, 60)
    assert parse_rate("5/second") == (5, 1)
    assert parse_rate("10/hour") == (10, 3600)
    for bad in ("0/minute", "5/day", "five/minute"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_only_overrides_that_name_no_setting_are_unknown() -> None:
    environ = {
        "BASTION_AUDIT__NOPE": "1",
        "BASTION_NOPE__PORT": "1",
        "BASTION_SERVER__PORT__X": "1",
        "BASTION_SERVER__": "1",
        "BASTION_SERVER__PORT": "9000",
        "BASTION_SERVER__TLS__CERTFILE": "cert.pem",
        "BASTION_AGENTS__ECHO__URL": "http://127.0.0.1:1",
        "BASTION_AGENTS__ECHO__EGRESS__ALLOWED_HOSTS": '["a.example"]',
        "BASTION_AUTH__PREVIOUS_PEPPERS__2": "secret://env/OLD",
        "BASTION_RATE_LIMIT__PRINCIPALS__BOB": "5/minute",
        "bastion_audit__batch_size": "3",
        "BASTION_CONFIG": "x.yaml",  # not an override: never checked
        "BASTION_T_ANYTHING": "1",
        "OTHER__THING": "1",
    }
    assert unknown_env_overrides(environ) == [
        "BASTION_AUDIT__NOPE",
        "BASTION_NOPE__PORT",
        "BASTION_SERVER__",
        "BASTION_SERVER__PORT__X",
    ]


def test_unknown_override_is_ignored_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _cfg(tmp_path / "bastion.yaml", "audit: {batch_size: 7}\n")
    monkeypatch.setenv("BASTION_AUDIT__NOPE", "1")
    monkeypatch.setenv("BASTION_AUDIT__BUFFER_SIZE", "99")
    settings = load_settings(config)
    assert (settings.audit.batch_size, settings.audit.buffer_size) == (7, 99)
    err = capsys.readouterr().err
    assert err == (
        "warning: environment variable BASTION_AUDIT__NOPE names no setting (audit.nope); "
        "it is ignored\n"
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("BASTION_AUTH__API_KEY_CACHE_SECONDS", "soon", "valid number"),
        ("BASTION_SERVER__PORT", "eighty", "valid integer"),
        ("BASTION_RATE_LIMIT__DEFAULT", "lots", "bad rate"),
        ("BASTION_AUTH__JWT", "not json", "written as JSON"),
    ],
)
def test_bad_override_names_the_variable_not_the_yaml_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    config = _cfg(tmp_path / "bastion.yaml", "server: {port: 8080}\n")
    monkeypatch.setenv(name, value)
    with pytest.raises(EnvOverrideError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert message.startswith(f"environment variable {name}")
    assert expected in message and "fix or unset it" in message
    assert str(config) not in message
