"""Secret references: parsing, the env and file providers, literals refused, errors that name
the reference and never a value, and the TTL handle (rotation, grace, fail closed)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bastion.config import SecretsSettings, Settings, VaultSettings
from bastion.security.secrets import (
    Secret,
    SecretError,
    parse_reference,
    resolve,
    resolve_secret_str,
    write_secret_file,
)
from tests.security.jwt_helpers import FakeClock

VALUE = "s3cr3t-value-0123456789"


def short_ttl(ttl: float = 10.0, grace: float = 60.0) -> SecretsSettings:
    return SecretsSettings(ttl_seconds=ttl, grace_seconds=grace)


def test_env_and_file_references(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BASTION_T_SECRET", VALUE)
    assert resolve("secret://env/BASTION_T_SECRET", tmp_path).get() == VALUE
    write_secret_file(tmp_path / "secrets" / "x.key", VALUE + "\n")
    assert resolve("secret://file/secrets/x.key", tmp_path).get() == VALUE
    absolute = tmp_path / "secrets" / "x.key"
    assert resolve(f"secret://file/{absolute}", Path("/nonexistent")).get() == VALUE


@pytest.mark.parametrize(
    ("ref", "provider", "locator", "key"),
    [
        ("secret://env/NAME", "env", "NAME", None),
        ("secret://file/a#b.txt", "file", "a#b.txt", None),
        (
            "secret://aws/arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbC#password",
            "aws",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbC",
            "password",
        ),
        ("secret://aws/plain-name", "aws", "plain-name", None),
        ("secret://vault/app/search#api_key", "vault", "app/search", "api_key"),
    ],
)
def test_references_parse(ref: str, provider: str, locator: str, key: str | None) -> None:
    parsed = parse_reference(ref)
    assert (parsed.provider, parsed.locator, parsed.key) == (provider, locator, key)
    assert str(parsed) == ref


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (VALUE, "literal where a secret reference is expected"),
        ("secret://gcp/x", "unknown secret provider 'gcp'"),
        ("secret://env/", "names no env secret"),
        ("secret://vault/app#", "empty key"),
        ("secret://env/BASTION_T_UNSET_VAR", "BASTION_T_UNSET_VAR is not set"),
        ("secret://file/missing.key", "cannot read"),
        ("secret://vault/app/db", "needs the key to read"),
    ],
)
def test_bad_references_are_refused_with_an_actionable_message(
    ref: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(SecretError, match=message) as info:
        resolve(ref, tmp_path, SecretsSettings(vault=VaultSettings(url="http://127.0.0.1:9")))
    assert VALUE not in str(info.value)
    if ref.startswith("secret://"):
        assert ref in str(info.value)


def test_literal_message_says_what_to_write(tmp_path: Path) -> None:
    with pytest.raises(SecretError) as info:
        resolve(VALUE, tmp_path)
    text = str(info.value)
    assert "secret://env/NAME" in text and "secret://vault/PATH#KEY" in text
    assert VALUE not in text


def test_unreadable_file_error_names_the_reference_not_the_value(tmp_path: Path) -> None:
    (tmp_path / "x.key").mkdir()  # unreadable as a file, whoever runs the test
    with pytest.raises(SecretError, match=r"secret://file/x\.key: cannot read") as info:
        resolve("secret://file/x.key", tmp_path)
    assert "create it (mode 0600) or fix the path" in str(info.value)


def test_vault_token_must_be_a_reference() -> None:
    with pytest.raises(ValueError, match="never the token itself"):
        VaultSettings(token="hvs.literal-token-value")
    with pytest.raises(ValueError, match="never the token itself"):
        VaultSettings(token="secret://vault/other#token")
    assert VaultSettings(token="secret://file/vault.token").token == "secret://file/vault.token"


def test_repr_of_values_handles_and_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BASTION_T_SECRET", VALUE)
    value = resolve("secret://env/BASTION_T_SECRET", tmp_path)
    handle = Secret("secret://env/BASTION_T_SECRET", tmp_path)
    settings = Settings(auth={"pepper": "secret://env/BASTION_T_SECRET"})
    for shown in (repr(value), str(value), repr(handle), str(handle), repr(settings)):
        assert VALUE not in shown
    assert "secret://env/BASTION_T_SECRET" in repr(handle)
    assert resolve_secret_str("secret://env/BASTION_T_SECRET", tmp_path).get_secret_value() == (
        VALUE
    )
    assert VALUE not in repr(resolve_secret_str("secret://env/BASTION_T_SECRET", tmp_path))


def test_handle_fails_closed_at_start(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match=r"secret://file/none\.key"):
        Secret("secret://file/none.key", tmp_path)


def test_rotated_file_is_picked_up_after_the_ttl(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    write_secret_file(tmp_path / "k", "first-value-000")
    handle = Secret("secret://file/k", tmp_path, short_ttl(), clock=clock)
    write_secret_file(tmp_path / "k", "second-value-00")
    clock.advance(9.0)
    assert handle.get().get() == "first-value-000"  # still within the TTL
    clock.advance(1.0)
    assert handle.get().get() == "second-value-00"
    assert handle.version == 2


def test_rotated_env_is_picked_up_after_the_ttl(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock = FakeClock(0.0)
    monkeypatch.setenv("BASTION_T_ROT", "first-value-000")
    handle = Secret("secret://env/BASTION_T_ROT", tmp_path, short_ttl(), clock=clock)
    monkeypatch.setenv("BASTION_T_ROT", "second-value-00")
    assert not handle.stale
    clock.advance(10.0)
    assert handle.stale
    assert handle.get().get() == "second-value-00"


def test_failed_refresh_serves_the_last_value_within_grace_then_fails_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(0.0)
    write_secret_file(tmp_path / "k", VALUE)
    handle = Secret("secret://file/k", tmp_path, short_ttl(ttl=10, grace=60), clock=clock)
    (tmp_path / "k").unlink()
    clock.advance(10.0)
    with caplog.at_level(logging.WARNING):
        assert handle.get().get() == VALUE
    assert "serving the last good value" in caplog.text
    assert "secret://file/k" in caplog.text and VALUE not in caplog.text
    clock.advance(55.0)  # 65 s since the last good fetch: inside ttl + grace
    assert handle.get().get() == VALUE
    clock.advance(10.0)  # 75 s: past ttl + grace
    with pytest.raises(SecretError, match="past the grace period") as info:
        handle.get()
    assert VALUE not in str(info.value)
    write_secret_file(tmp_path / "k", "restored-value-0")
    assert handle.get().get() == "restored-value-0"


def test_failed_refresh_is_retried_not_on_every_call(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    write_secret_file(tmp_path / "k", VALUE)
    handle = Secret("secret://file/k", tmp_path, short_ttl(ttl=300, grace=3600), clock=clock)
    (tmp_path / "k").unlink()
    clock.advance(300.0)
    handle.get()
    assert not handle.stale  # the next try waits RETRY_SECONDS
    write_secret_file(tmp_path / "k", "new-value-00000")
    clock.advance(30.0)
    assert handle.get().get() == "new-value-00000"
