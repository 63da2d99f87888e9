"""Built-in token service: key files, issuing, rotation, and its HTTP endpoints on a real server."""

from __future__ import annotations

import base64
import json
import logging
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from bastion.config import IssuerSettings, JWTSettings, TokenServiceSettings
from bastion.core.context import Identity
from bastion.security.jwt_verify import JwtVerifier, TokenError
from bastion.security.secrets import write_secret_file
from bastion.security.token_service import (
    SigningKeyError,
    SigningKeys,
    TokenService,
    generate_signing_keyset,
    rotate_keyset_file,
)
from bastion.testing.live_server import LiveServer, serve_in_thread
from tests.security.jwt_helpers import FakeClock

GOOD_KEY = "bst_aaaaaaaaaaaa_" + "0" * 64
ALICE_KEY_ID = "aaaaaaaaaaaa"
SHORT_KEY = "bst_bbbbbbbbbbbb_" + "1" * 64
BROKEN_KEY = "bst_cccccccccccc_" + "2" * 64
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}
WEEK = 7 * 24 * 3600


class FakeApiKeys:
    """Stands in for the API-key store: a fixed table, counting lookups; `revoked` key ids."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[str] = []
        self.revoked: set[str] = set()

    async def __call__(self, key: str) -> Identity | None:
        self.calls.append(key)
        if key == GOOD_KEY:
            return Identity("alice", "api_key", credential_id=ALICE_KEY_ID, api_key_id=ALICE_KEY_ID)
        if key == SHORT_KEY:
            return Identity(
                "bob",
                "api_key",
                credential_id="bbbbbbbbbbbb",
                expires_at=self.clock() + 60,
                api_key_id="bbbbbbbbbbbb",
            )
        if key == BROKEN_KEY:
            raise RuntimeError("database is down")
        return None

    async def refusal(self, key_id: str, principal: str) -> str | None:
        return f"revoked api key id {key_id}" if key_id in self.revoked else None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def key_file(tmp_path: Path, clock: FakeClock) -> Path:
    path = tmp_path / "secrets" / "token-signing.jwks.json"
    write_secret_file(path, generate_signing_keyset(clock()))
    return path


@pytest.fixture
def ts_settings() -> TokenServiceSettings:
    return TokenServiceSettings()


@pytest.fixture
def signing(
    key_file: Path, tmp_path: Path, clock: FakeClock, ts_settings: TokenServiceSettings
) -> SigningKeys:
    return SigningKeys(ts_settings, tmp_path, clock=clock, reload_check_seconds=0)


@pytest.fixture
def api_keys(clock: FakeClock) -> FakeApiKeys:
    return FakeApiKeys(clock)


@pytest.fixture
def service(
    signing: SigningKeys, clock: FakeClock, ts_settings: TokenServiceSettings, api_keys: FakeApiKeys
) -> TokenService:
    return TokenService(ts_settings, signing, api_keys, clock=clock)


def local_verifier(
    service: TokenService, clock: FakeClock, api_keys: FakeApiKeys | None = None
) -> JwtVerifier:
    keys = api_keys or FakeApiKeys(clock)
    return JwtVerifier(JWTSettings(), local=service.local_trust(keys.refusal), clock=clock)


def private_values(path: Path) -> list[str]:
    return [k["d"] for k in json.loads(path.read_text())["keys"]]


# --- key set -------------------------------------------------------------------------------


def test_generated_keyset_holds_one_ed25519_key() -> None:
    data = json.loads(generate_signing_keyset(1000.0))
    (key,) = data["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert key["created"] == 1000
    assert key["d"] and key["x"]
    other = json.loads(generate_signing_keyset())["keys"][0]
    assert other["kid"] != key["kid"] and other["d"] != key["d"]


def test_key_file_is_written_owner_only(key_file: Path) -> None:
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_private_material_never_in_repr(signing: SigningKeys, key_file: Path) -> None:
    (d,) = private_values(key_file)
    assert d not in repr(signing)
    assert d not in repr(signing._state)
    assert d not in json.dumps(signing.public_jwks())


def test_public_jwks_has_no_private_members(signing: SigningKeys, key_file: Path) -> None:
    signing.rotate()
    keys = signing.public_jwks()["keys"]
    assert len(keys) == 2
    for jwk in keys:
        assert not PRIVATE_MEMBERS & set(jwk)
        assert set(jwk) == {"kty", "crv", "alg", "use", "kid", "x"}


def test_missing_key_file_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="cannot read"):
        SigningKeys(TokenServiceSettings(), tmp_path)


def test_disabled_service_loads_nothing(tmp_path: Path) -> None:
    settings = TokenServiceSettings(enabled=False)
    keys = SigningKeys(settings, tmp_path)
    assert keys.public_jwks() == {"keys": []}
    with pytest.raises(SigningKeyError):
        keys.sign({"sub": "x"})
    assert TokenService(settings, keys, FakeApiKeys(FakeClock())).routes() == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda k: {**k, "x": json.loads(generate_signing_keyset())["keys"][0]["x"]},
        lambda k: {**k, "d": "!!!"},
        lambda k: {**k, "kid": "../../etc/passwd"},
        lambda k: {**k, "crv": "X25519"},
        lambda k: {**k, "created": "yesterday"},
    ],
)
def test_bad_key_file_errors_never_show_the_private_key(
    mutate: Any, tmp_path: Path, key_file: Path
) -> None:
    data = json.loads(key_file.read_text())
    original_d = data["keys"][0]["d"]
    data["keys"][0] = mutate(data["keys"][0])
    key_file.write_text(json.dumps(data))
    with pytest.raises(SigningKeyError) as info:
        SigningKeys(TokenServiceSettings(), tmp_path)
    exc: BaseException | None = info.value
    while exc is not None:
        assert original_d not in str(exc) and original_d not in repr(exc)
        exc = exc.__cause__ or exc.__context__


def test_env_reference(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BASTION_TEST_SIGNING", generate_signing_keyset())
    settings = TokenServiceSettings(signing_keys="secret://env/BASTION_TEST_SIGNING")
    keys = SigningKeys(settings, tmp_path)
    assert len(keys.public_jwks()["keys"]) == 1
    with pytest.raises(SigningKeyError, match="only secret://file/"):
        keys.rotate()


# --- issuing and verifying -----------------------------------------------------------------


async def test_issue_then_verify_round_trip(service: TokenService, clock: FakeClock) -> None:
    token, expires_in = service.issue("alice", key_id=ALICE_KEY_ID)
    assert expires_in == 300
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["typ"] == "JWT"
    assert header["kid"] == service.keys.kids[-1]
    ident = await local_verifier(service, clock).verify(token)
    assert ident.principal == "alice"
    assert ident.auth_method == "jwt"
    claims = ident.claims or {}
    assert claims["iss"] == "bastion" and claims["aud"] == "bastion"
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"]
    assert ident.credential_id == claims["jti"]
    second, _ = service.issue("alice", key_id=ALICE_KEY_ID)
    assert jwt.decode(second, options={"verify_signature": False})["jti"] != claims["jti"]


async def test_token_expires_after_ttl(service: TokenService, clock: FakeClock) -> None:
    token, _ = service.issue("alice", key_id=ALICE_KEY_ID)
    verifier = local_verifier(service, clock)
    await verifier.verify(token)
    clock.advance(300 + 31)
    with pytest.raises(TokenError, match="expired"):
        await verifier.verify(token)


async def test_token_names_its_key_and_dies_with_it(
    service: TokenService, clock: FakeClock, api_keys: FakeApiKeys
) -> None:
    token, _ = service.issue("alice", key_id=ALICE_KEY_ID)
    assert jwt.decode(token, options={"verify_signature": False})["key_id"] == ALICE_KEY_ID
    verifier = local_verifier(service, clock, api_keys)
    assert (await verifier.verify(token)).api_key_id == ALICE_KEY_ID
    api_keys.revoked.add(ALICE_KEY_ID)
    with pytest.raises(TokenError, match="revoked api key"):
        await verifier.verify(token)


def test_not_after_caps_the_expiry(service: TokenService, clock: FakeClock) -> None:
    _, expires_in = service.issue("bob", key_id="bbbbbbbbbbbb", not_after=clock() + 42)
    assert expires_in == 42
    with pytest.raises(ValueError):
        service.issue("bob", key_id="bbbbbbbbbbbb", not_after=clock() - 1)


async def test_token_from_another_bastion_is_not_trusted(
    service: TokenService, clock: FakeClock, tmp_path: Path
) -> None:
    other_dir = tmp_path / "other"
    write_secret_file(other_dir / "secrets/token-signing.jwks.json", generate_signing_keyset())
    other = TokenService(
        TokenServiceSettings(),
        SigningKeys(TokenServiceSettings(), other_dir),
        FakeApiKeys(clock),
        clock=clock,
    )
    token, _ = other.issue("alice", key_id=ALICE_KEY_ID)
    with pytest.raises(TokenError, match="unknown kid"):
        await local_verifier(service, clock).verify(token)


# --- rotation ------------------------------------------------------------------------------


async def test_rotation_keeps_old_tokens_valid_and_signs_with_new_key(
    service: TokenService, clock: FakeClock
) -> None:
    verifier = local_verifier(service, clock)
    old_token, _ = service.issue("alice", key_id=ALICE_KEY_ID)
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    await verifier.verify(old_token)

    clock.advance(10)
    new_kid = service.keys.rotate()
    assert new_kid != old_kid
    new_token, _ = service.issue("alice", key_id=ALICE_KEY_ID)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid

    assert (await verifier.verify(new_token)).principal == "alice"
    verifier.clear_cache()
    assert (await verifier.verify(old_token)).principal == "alice"
    assert {k["kid"] for k in service.keys.public_jwks()["keys"]} == {old_kid, new_kid}


async def test_rotation_by_another_process_is_picked_up(
    service: TokenService, key_file: Path, clock: FakeClock
) -> None:
    verifier = local_verifier(service, clock)
    before = service.keys.kids
    new_kid = rotate_keyset_file(key_file, rotate_after_seconds=WEEK, ttl_seconds=300)
    token, _ = service.issue("alice", key_id=ALICE_KEY_ID)
    assert jwt.get_unverified_header(token)["kid"] == new_kid
    assert service.keys.kids == [*before, new_kid]
    assert (await verifier.verify(token)).principal == "alice"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_reload_is_rate_limited(key_file: Path, tmp_path: Path, clock: FakeClock) -> None:
    keys = SigningKeys(TokenServiceSettings(), tmp_path, clock=clock, reload_check_seconds=1.0)
    before = keys.kids
    rotate_keyset_file(key_file, rotate_after_seconds=WEEK, ttl_seconds=300)
    keys.public_jwks()
    assert keys.kids == before
    clock.advance(1.0)
    keys.public_jwks()
    assert len(keys.kids) == 2


def test_broken_key_file_keeps_current_keys(
    signing: SigningKeys, key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = signing.kids
    (d,) = private_values(key_file)
    data = json.loads(key_file.read_text())
    data["keys"][0]["x"] = "AAAA"
    key_file.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        assert signing.public_jwks()["keys"]
        token = signing.sign({"sub": "x"})
    assert jwt.get_unverified_header(token)["kid"] == before[-1]
    assert "keeping the current signing keys" in caplog.text
    assert d not in caplog.text


def test_rotation_drops_keys_past_the_horizon(key_file: Path, clock: FakeClock) -> None:
    t0 = clock()
    rotate_keyset_file(key_file, rotate_after_seconds=WEEK, ttl_seconds=300, now=t0 + WEEK)
    k3 = rotate_keyset_file(key_file, rotate_after_seconds=WEEK, ttl_seconds=300, now=t0 + 2 * WEEK)
    kids_before = [k["kid"] for k in json.loads(key_file.read_text())["keys"]]
    assert len(kids_before) == 3
    # At 2 weeks + 300 s + 1 after t0, the first key has passed 2 x rotate_after + ttl.
    k4 = rotate_keyset_file(
        key_file, rotate_after_seconds=WEEK, ttl_seconds=300, now=t0 + 2 * WEEK + 301
    )
    kids = [k["kid"] for k in json.loads(key_file.read_text())["keys"]]
    assert kids == [kids_before[1], k3, k4]


def test_late_rotation_keeps_the_key_in_use(key_file: Path, clock: FakeClock) -> None:
    (first,) = [k["kid"] for k in json.loads(key_file.read_text())["keys"]]
    new = rotate_keyset_file(
        key_file, rotate_after_seconds=WEEK, ttl_seconds=300, now=clock() + 10 * WEEK
    )
    kids = [k["kid"] for k in json.loads(key_file.read_text())["keys"]]
    assert kids == [first, new]


def test_needs_rotation(signing: SigningKeys, clock: FakeClock) -> None:
    assert not signing.needs_rotation()
    clock.advance(WEEK)
    assert signing.needs_rotation()
    signing.rotate()
    assert not signing.needs_rotation()


# --- HTTP endpoints ------------------------------------------------------------------------


@pytest.fixture
def live(service: TokenService) -> Iterator[LiveServer]:
    with serve_in_thread(Starlette(routes=service.routes())) as server:
        yield server


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def post_token(live: LiveServer, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.url) as client:
        return await client.post("/oauth/token", **kw)


async def test_token_endpoint_form_credentials(
    live: LiveServer, service: TokenService, clock: FakeClock
) -> None:
    resp = await post_token(
        live, data={"grant_type": "client_credentials", "client_secret": GOOD_KEY}
    )
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    ident = await local_verifier(service, clock).verify(body["access_token"])
    assert ident.principal == "alice"


async def test_token_endpoint_basic_auth(live: LiveServer) -> None:
    resp = await post_token(
        live,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic("alice", GOOD_KEY)},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["access_token"]


async def test_token_endpoint_x_api_key_header(live: LiveServer) -> None:
    resp = await post_token(live, headers={"X-API-Key": GOOD_KEY})
    assert resp.status_code == 200, resp.text
    resp = await post_token(
        live, data={"grant_type": "client_credentials"}, headers={"X-API-Key": GOOD_KEY}
    )
    assert resp.status_code == 200, resp.text


async def test_client_id_may_name_the_key_id(live: LiveServer) -> None:
    resp = await post_token(
        live,
        data={
            "grant_type": "client_credentials",
            "client_id": "aaaaaaaaaaaa",
            "client_secret": GOOD_KEY,
        },
    )
    assert resp.status_code == 200


async def test_token_lifetime_capped_by_key_expiry(live: LiveServer, clock: FakeClock) -> None:
    resp = await post_token(live, headers={"X-API-Key": SHORT_KEY})
    assert resp.status_code == 200
    assert resp.json()["expires_in"] == 60
    claims = jwt.decode(resp.json()["access_token"], options={"verify_signature": False})
    assert claims["exp"] <= clock() + 60
    assert claims["key_id"] == "bbbbbbbbbbbb"


async def test_no_token_for_an_identity_without_an_api_key(
    live: LiveServer, service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def keyless(key: str) -> Identity | None:
        return Identity("alice", "api_key")

    monkeypatch.setattr(service, "_authenticate", keyless)
    resp = await post_token(live, headers={"X-API-Key": GOOD_KEY})
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "kw",
    [
        {"data": {"grant_type": "client_credentials", "client_secret": "bst_wrong"}},
        {"data": {"grant_type": "client_credentials", "client_secret": ""}},
        {"data": {"grant_type": "client_credentials"}},
        {
            "headers": {"Authorization": basic("alice", "nope")},
            "data": {"grant_type": "client_credentials"},
        },
        {"headers": {"Authorization": "Bearer xyz"}, "data": {"grant_type": "client_credentials"}},
        {"headers": {"Authorization": "Basic !!!"}, "data": {"grant_type": "client_credentials"}},
        {"headers": {"X-API-Key": "bst_wrong"}},
        {
            "data": {
                "grant_type": "client_credentials",
                "client_id": "mallory",
                "client_secret": GOOD_KEY,
            }
        },
    ],
)
async def test_bad_client_gets_invalid_client(live: LiveServer, kw: dict[str, Any]) -> None:
    resp = await post_token(live, **kw)
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"
    assert resp.headers["www-authenticate"].startswith("Basic")
    assert resp.headers["cache-control"] == "no-store"
    assert "access_token" not in resp.text


async def test_unsupported_grant_type(live: LiveServer) -> None:
    resp = await post_token(live, data={"grant_type": "password", "client_secret": GOOD_KEY})
    assert resp.status_code == 400
    assert resp.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    "kw",
    [
        {"data": {"client_secret": GOOD_KEY}},
        {
            "content": b"grant_type=client_credentials&grant_type=password&client_secret=x",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        {"json": {"grant_type": "client_credentials", "client_secret": GOOD_KEY}},
        {
            "data": {"grant_type": "client_credentials", "client_secret": GOOD_KEY},
            "headers": {"X-API-Key": GOOD_KEY},
        },
        {
            "data": {"grant_type": "client_credentials", "client_secret": GOOD_KEY},
            "headers": {"Authorization": basic("alice", GOOD_KEY)},
        },
    ],
)
async def test_malformed_requests_get_invalid_request(live: LiveServer, kw: dict[str, Any]) -> None:
    resp = await post_token(live, **kw)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request"


async def test_oversize_body_is_refused_before_authentication(
    live: LiveServer, service: TokenService
) -> None:
    fake: FakeApiKeys = service._authenticate  # type: ignore[assignment]
    body = f"grant_type=client_credentials&client_secret={GOOD_KEY}&pad={'x' * 9000}"
    resp = await post_token(
        live, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert resp.status_code == 413
    assert resp.json()["error"] == "invalid_request"
    assert fake.calls == []


async def test_oversize_chunked_body_is_refused(live: LiveServer, service: TokenService) -> None:
    fake: FakeApiKeys = service._authenticate  # type: ignore[assignment]

    async def chunks() -> AsyncIterator[bytes]:
        yield f"grant_type=client_credentials&client_secret={GOOD_KEY}&pad=".encode()
        for _ in range(10):
            yield b"x" * 1024

    resp = await post_token(
        live, content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert resp.status_code == 413
    assert fake.calls == []


async def test_key_store_failure_is_503(live: LiveServer) -> None:
    resp = await post_token(live, headers={"X-API-Key": BROKEN_KEY})
    assert resp.status_code == 503
    assert resp.json()["error"] == "temporarily_unavailable"


async def test_get_on_token_endpoint_not_allowed(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.url) as client:
        assert (await client.get("/oauth/token")).status_code == 405


async def test_jwks_endpoint(live: LiveServer, service: TokenService) -> None:
    service.keys.rotate()
    async with httpx.AsyncClient(base_url=live.url) as client:
        resp = await client.get("/.well-known/jwks.json")
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "public, max-age=300"
    keys = resp.json()["keys"]
    assert len(keys) == 2
    assert all(not PRIVATE_MEMBERS & set(k) for k in keys)
    assert '"d"' not in resp.text


async def test_peer_verifies_our_tokens_through_the_published_jwks(live: LiveServer) -> None:
    """Another service trusting this token service as an external issuer, over HTTP."""
    token = (await post_token(live, headers={"X-API-Key": GOOD_KEY})).json()["access_token"]
    peer = JwtVerifier(
        JWTSettings(
            issuers=[
                IssuerSettings(
                    name="hq",
                    issuer="bastion",
                    jwks_url=f"{live.url}/.well-known/jwks.json",
                    audience="bastion",
                )
            ]
        )
    )
    ident = await peer.verify(token)
    assert ident.principal == "hq:alice"
