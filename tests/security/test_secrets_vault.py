"""`secret://vault/PATH#KEY` against a local Vault KV v2 stand-in served by uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.config import SecretsSettings, VaultSettings
from bastion.security.secrets import Secret, SecretError, resolve, write_secret_file
from bastion.testing.fake_vault import FakeVault
from bastion.testing.live_server import serve_in_thread
from bastion.testing.ports import free_port
from tests.security.jwt_helpers import FakeClock

TOKEN = "hvs.test-token-0123456789"
API_KEY = "search-api-key-0123456789"


@pytest.fixture
def vault() -> FakeVault:
    fake = FakeVault(TOKEN)
    fake.put("bastion/search", {"api_key": API_KEY, "user": "bastion"})
    return fake


@pytest.fixture
def vault_url(vault: FakeVault) -> Iterator[str]:
    with serve_in_thread(vault.app) as live:
        yield live.url


@pytest.fixture
def settings(vault_url: str, monkeypatch: pytest.MonkeyPatch) -> SecretsSettings:
    monkeypatch.setenv("BASTION_T_VAULT_TOKEN", TOKEN)
    return SecretsSettings(
        vault=VaultSettings(url=vault_url, token="secret://env/BASTION_T_VAULT_TOKEN")
    )


def test_reads_a_key(settings: SecretsSettings, tmp_path: Path) -> None:
    assert resolve("secret://vault/bastion/search#api_key", tmp_path, settings).get() == API_KEY


def test_token_from_a_file(settings: SecretsSettings, tmp_path: Path) -> None:
    write_secret_file(tmp_path / "vault.token", TOKEN + "\n")
    from_file = settings.model_copy(
        update={"vault": settings.vault.model_copy(update={"token": "secret://file/vault.token"})}
    )
    assert resolve("secret://vault/bastion/search#api_key", tmp_path, from_file).get() == API_KEY


def test_missing_path(settings: SecretsSettings, tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="no secret at secret/data/bastion/none in Vault"):
        resolve("secret://vault/bastion/none#api_key", tmp_path, settings)


def test_missing_key(settings: SecretsSettings, tmp_path: Path) -> None:
    with pytest.raises(
        SecretError, match=r"has no key 'token'; its keys: \['api_key', 'user'\]"
    ) as info:
        resolve("secret://vault/bastion/search#token", tmp_path, settings)
    assert API_KEY not in str(info.value)


def test_wrong_mount(settings: SecretsSettings, tmp_path: Path) -> None:
    other = settings.model_copy(update={"vault": settings.vault.model_copy(update={"mount": "kv"})})
    with pytest.raises(SecretError, match=r"check the path and secrets\.vault\.mount"):
        resolve("secret://vault/bastion/search#api_key", tmp_path, other)


def test_bad_token_is_refused_without_showing_it(
    settings: SecretsSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_T_VAULT_TOKEN", "hvs.wrong-token-000000")
    with pytest.raises(SecretError, match="Vault refused the token") as info:
        resolve("secret://vault/bastion/search#api_key", tmp_path, settings)
    text = str(info.value)
    assert "secret://env/BASTION_T_VAULT_TOKEN" in text  # names where the token comes from
    assert "hvs.wrong-token" not in text and TOKEN not in text and API_KEY not in text


def test_unset_token_variable(
    settings: SecretsSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BASTION_T_VAULT_TOKEN")
    with pytest.raises(SecretError, match="BASTION_T_VAULT_TOKEN is not set"):
        resolve("secret://vault/bastion/search#api_key", tmp_path, settings)


def test_rotation_is_picked_up_after_the_ttl(
    vault: FakeVault, settings: SecretsSettings, tmp_path: Path
) -> None:
    clock = FakeClock(0.0)
    ttl = settings.model_copy(update={"ttl_seconds": 60.0})
    handle = Secret("secret://vault/bastion/search#api_key", tmp_path, ttl, clock=clock)
    reads = vault.requests
    vault.put("bastion/search", {"api_key": "rotated-api-key-000000"})
    assert handle.get().get() == API_KEY
    assert vault.requests == reads  # served from the cache
    clock.advance(60.0)
    assert handle.get().get() == "rotated-api-key-000000"
    assert handle.version == 2


def test_vault_down_after_start_serves_the_last_value_within_grace(
    vault: FakeVault, settings: SecretsSettings, tmp_path: Path
) -> None:
    clock = FakeClock(0.0)
    ttl = settings.model_copy(update={"ttl_seconds": 60.0, "grace_seconds": 120.0})
    handle = Secret("secret://vault/bastion/search#api_key", tmp_path, ttl, clock=clock)
    vault.token = "hvs.revoked-000000000"  # every read now fails
    clock.advance(60.0)
    assert handle.get().get() == API_KEY
    clock.advance(121.0)
    with pytest.raises(SecretError, match="past the grace period"):
        handle.get()


def test_unreachable_at_start_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("BASTION_T_VAULT_TOKEN", TOKEN)
    down = SecretsSettings(
        vault=VaultSettings(
            url=f"http://127.0.0.1:{port}", token="secret://env/BASTION_T_VAULT_TOKEN"
        )
    )
    with pytest.raises(SecretError, match=f"cannot reach Vault at http://127.0.0.1:{port}"):
        Secret("secret://vault/bastion/search#api_key", tmp_path, down)


def test_no_vault_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    with pytest.raises(SecretError, match=r"set secrets\.vault\.url"):
        resolve("secret://vault/bastion/search#api_key", tmp_path, SecretsSettings())


def test_a_redirect_never_carries_the_token_elsewhere(
    settings: SecretsSettings, tmp_path: Path
) -> None:
    """A Vault address that answers with a redirect: the token is not sent on."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import RedirectResponse, Response
    from starlette.routing import Route

    seen: list[str] = []

    async def elsewhere(request: Request) -> Response:
        seen.append(request.headers.get("x-vault-token", ""))
        return Response("{}", media_type="application/json")

    async def redirect(request: Request) -> Response:
        return RedirectResponse(f"{other.url}/v1/secret/data/bastion/search", status_code=307)

    with (
        serve_in_thread(Starlette(routes=[Route("/{p:path}", elsewhere)])) as other,
        serve_in_thread(Starlette(routes=[Route("/{p:path}", redirect)])) as redirecting,
    ):
        moved = settings.model_copy(
            update={"vault": settings.vault.model_copy(update={"url": redirecting.url})}
        )
        with pytest.raises(SecretError, match="redirect"):
            resolve("secret://vault/bastion/search#api_key", tmp_path, moved)
    assert seen == []


def test_requests_go_through_the_egress_perimeter(
    settings: SecretsSettings, vault_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hvac sends through the egress client: the Vault name rebound to the metadata address is
    refused before the token leaves, and the refusal is logged."""
    import structlog

    import bastion.egress.transport as egress_transport

    port = vault_url.rsplit(":", 1)[1]
    named = settings.model_copy(
        update={"vault": settings.vault.model_copy(update={"url": f"http://vault.internal:{port}"})}
    )
    monkeypatch.setattr(egress_transport, "system_resolver", lambda host, port: ["127.0.0.1"])
    assert resolve("secret://vault/bastion/search#api_key", tmp_path, named).get() == API_KEY
    monkeypatch.setattr(egress_transport, "system_resolver", lambda h, p: ["169.254.169.254"])
    with structlog.testing.capture_logs() as logs, pytest.raises(SecretError, match="reach"):
        resolve("secret://vault/bastion/search#api_key", tmp_path, named)
    denied = [e for e in logs if e["event"] == "egress.denied"]
    assert denied and {e["principal"] for e in denied} == {"secrets:vault"}
    assert TOKEN not in str(logs)
