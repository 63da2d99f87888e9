"""Config lookup order, env overrides, relative paths, and actionable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import ConfigError, find_config, load_settings, parse_rate


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
