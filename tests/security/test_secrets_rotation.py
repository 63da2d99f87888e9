"""Rotation without a restart, on a live agent: the API-key pepper gains a version and the
token-service signing keys change, while the server keeps running."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from bastion.config import Settings
from bastion.security.apikeys import PepperRing
from bastion.security.secrets import SecretValue, write_secret_file
from bastion.security.stack import build_api_key_store
from bastion.security.token_service import generate_signing_keyset, rotate_keyset_file
from tests.runtime.conftest import AgentEnv, make_env

SIGNING_ENV = "BASTION_T_SIGNING_KEYS"


def eventually(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not seen in {timeout:.0f}s: {what}")
        time.sleep(0.05)


def short_ttl(settings: Settings) -> None:
    settings.secrets.ttl_seconds = 0.2


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentEnv]:
    yield from make_env(tmp_path, short_ttl)


def token_kid(env: AgentEnv, key: str) -> str:
    r = httpx.post(
        env.url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"X-API-Key": key},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    kid: str = jwt.get_unverified_header(r.json()["access_token"])["kid"]
    return kid


def jwks_kids(env: AgentEnv) -> set[str]:
    r = httpx.get(env.url + "/.well-known/jwks.json", timeout=10)
    return {k["kid"] for k in r.json()["keys"]}


def echo_status(env: AgentEnv, key: str) -> int:
    return env.rpc("echo", {"message": "x"}, key=key).status_code


def test_new_pepper_version_is_usable_without_restart(agent: AgentEnv) -> None:
    pepper_file = agent.settings.path("secrets/api-key-pepper")
    old_pepper = pepper_file.read_text().strip()
    assert echo_status(agent, agent.admin_key) == 200
    # The operator puts a keyring with a new current version into the same secret.
    ring = {"current": 2, "peppers": {"1": old_pepper, "2": "f" * 64}}
    write_secret_file(pepper_file, json.dumps(ring))
    # `bastion keys create` (another process) hashes new keys with version 2 ...
    new_key = build_api_key_store(agent.settings).create("admin", label="after rotation")
    # ... and the running agent accepts them, while keys of version 1 keep working.
    assert echo_status(agent, new_key) == 200
    assert echo_status(agent, agent.admin_key) == 200
    # Keys the agent itself creates after the TTL use the new version.
    assert agent.app.stack is not None
    store = agent.app.stack.api_keys
    eventually(lambda: store._new_hash("bst_x")[2] == 2, "the agent hashing with version 2")


def test_pepper_value_changed_under_the_same_version_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.security.jwt_helpers import FakeClock

    clock = FakeClock(0.0)
    source = _Mutable("pepper-one-00000")
    ring = PepperRing(source, 1, clock=clock)  # type: ignore[arg-type]
    source.value = "pepper-two-00000"
    ring._rebuild()
    assert ring.get(1) == b"pepper-one-00000"
    assert "changed its value; keeping the old one" in caplog.text
    assert "pepper-two" not in caplog.text and "pepper-one" not in caplog.text


class _Mutable:
    """A pepper source whose value the test changes (stands in for a rotated `Secret`)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def get(self) -> str:
        return self.value

    def get_bytes(self) -> bytes:
        return self.value.encode()


def test_bad_keyring_at_start_fails_closed() -> None:
    from bastion.security.secrets import SecretError

    with pytest.raises(SecretError, match="pepper keyring"):
        PepperRing(SecretValue('{"current": 3, "peppers": {"1": "x"}}'), 1)


def test_rotated_signing_key_file_is_used_by_the_live_agent(agent: AgentEnv) -> None:
    before = token_kid(agent, agent.admin_key)
    assert before in jwks_kids(agent)
    new_kid = rotate_keyset_file(
        agent.settings.path("secrets/token-signing.jwks.json"),
        rotate_after_seconds=3600,
        ttl_seconds=300,
    )
    eventually(lambda: token_kid(agent, agent.admin_key) == new_kid, "tokens signed by new key")
    assert {before, new_kid} <= jwks_kids(agent)


def test_signing_keys_from_env_rotate_after_the_ttl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = generate_signing_keyset()
    monkeypatch.setenv(SIGNING_ENV, first)

    def from_env(settings: Settings) -> None:
        short_ttl(settings)
        settings.auth.token_service.signing_keys = f"secret://env/{SIGNING_ENV}"

    for env in make_env(tmp_path, from_env):
        old_kid = json.loads(first)["keys"][0]["kid"]
        assert token_kid(env, env.admin_key) == old_kid
        second = json.loads(generate_signing_keyset())
        both = {"keys": [*json.loads(first)["keys"], *second["keys"]]}
        monkeypatch.setenv(SIGNING_ENV, json.dumps(both))
        new_kid = second["keys"][0]["kid"]
        eventually(lambda: token_kid(env, env.admin_key) == new_kid, "tokens signed by new key")  # noqa: B023
        assert jwks_kids(env) == {old_kid, new_kid}


def test_signing_keys_store_outage_grace_then_fail_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from bastion.config import SecretsSettings, TokenServiceSettings
    from bastion.security.token_service import SigningKeyError, SigningKeys
    from tests.security.jwt_helpers import FakeClock

    clock = FakeClock()
    keyset = generate_signing_keyset(clock())
    private = json.loads(keyset)["keys"][0]["d"]
    monkeypatch.setenv(SIGNING_ENV, keyset)
    keys = SigningKeys(
        TokenServiceSettings(signing_keys=f"secret://env/{SIGNING_ENV}"),
        tmp_path,
        clock=clock,
        reload_check_seconds=0,
        secrets_settings=SecretsSettings(ttl_seconds=60, grace_seconds=120),
    )
    monkeypatch.delenv(SIGNING_ENV)
    clock.advance(60)
    keys.reload_if_changed()  # the refresh signing would start in the background
    assert keys.sign({"sub": "x"})  # within the grace: the last good keys
    clock.advance(121)
    keys.reload_if_changed()
    with pytest.raises(SigningKeyError, match="no signing key"):
        keys.sign({"sub": "x"})
    assert "unavailable, not signing" in caplog.text and private not in caplog.text
    monkeypatch.setenv(SIGNING_ENV, keyset)  # the store is back: signing resumes
    keys.reload_if_changed()
    assert keys.sign({"sub": "x"})
    assert keys.public_jwks()["keys"]
