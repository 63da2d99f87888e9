"""JwtVerifier: accepted tokens and the attacks it must refuse, with real keys and a JWKS server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from bastion.config import ConfigError, IssuerSettings, JWTSettings
from bastion.security.jwt_verify import IssuerUnavailable, JwtVerifier, LocalTrust, TokenError
from tests.security.jwt_helpers import (
    FakeClock,
    JwksServer,
    KeyPair,
    b64,
    b64json,
    ec_key,
    ed_key,
    rsa_key,
    running_jwks_server,
    unsigned,
)

CORP_ISS = "https://idp.corp.example"
CORP_AUD = "bastion-api"
COGNITO_ISS = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST"
COGNITO_CLIENT = "app-client-1"
DUPLICATE_ALG = b'{"alg":"RS256","alg":"none","kid":"rsa-1"}'
ALICE_KEY = "aaaaaaaaaaaa"


async def no_refusal(key_id: str, principal: str) -> str | None:
    return None


@pytest.fixture(scope="module")
def _server() -> Iterator[JwksServer]:
    with running_jwks_server() as server:
        yield server


@pytest.fixture
def server(_server: JwksServer) -> JwksServer:
    _server.reset()
    return _server


@pytest.fixture(scope="module")
def rsa() -> KeyPair:
    return rsa_key("rsa-1")


@pytest.fixture(scope="module")
def ec() -> KeyPair:
    return ec_key("ec-1")


@pytest.fixture(scope="module")
def ed() -> KeyPair:
    return ed_key("ed-1")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


def settings(server: JwksServer, **kw: Any) -> JWTSettings:
    return JWTSettings(
        issuers=[
            IssuerSettings(
                name="corp", issuer=CORP_ISS, jwks_url=server.jwks_url("corp"), audience=CORP_AUD
            ),
            IssuerSettings(
                name="cognito",
                issuer=COGNITO_ISS,
                jwks_url=server.jwks_url("cognito"),
                client_ids=[COGNITO_CLIENT],
                token_use="access",
            ),
        ],
        **kw,
    )


@pytest.fixture
def verifier(
    server: JwksServer, clock: FakeClock, rsa: KeyPair, ec: KeyPair, ed: KeyPair
) -> JwtVerifier:
    server.publish("corp", rsa, ec, ed)
    server.publish("cognito", rsa)
    return JwtVerifier(settings(server), clock=clock)


def corp_claims(clock: FakeClock, **over: Any) -> dict[str, Any]:
    now = int(clock())
    claims = {
        "iss": CORP_ISS,
        "aud": CORP_AUD,
        "sub": "user-1",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "jti-1",
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def cognito_claims(clock: FakeClock, **over: Any) -> dict[str, Any]:
    now = int(clock())
    claims = {
        "iss": COGNITO_ISS,
        "sub": "c0ffee-sub",
        "client_id": COGNITO_CLIENT,
        "token_use": "access",
        "scope": "bastion/agents",
        "iat": now,
        "exp": now + 3600,
        "jti": "c-jti",
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


async def rejected(verifier: JwtVerifier, token: str, match: str) -> TokenError:
    with pytest.raises(TokenError, match=match) as info:
        await verifier.verify(token)
    assert token not in info.value.reason
    return info.value


# --- accepted ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["rsa", "ec", "ed"])
async def test_accepts_rs256_es256_eddsa_from_configured_issuer(
    which: str, request: pytest.FixtureRequest, verifier: JwtVerifier, clock: FakeClock
) -> None:
    key: KeyPair = request.getfixturevalue(which)
    claims = corp_claims(clock)
    ident = await verifier.verify(key.token(claims))
    assert ident.principal == "corp:user-1"
    assert ident.auth_method == "jwt"
    assert ident.credential_id == "jti-1"
    assert ident.expires_at == claims["exp"]
    assert ident.claims is not None and ident.claims["sub"] == "user-1"


async def test_credential_id_falls_back_to_sub(
    verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock
) -> None:
    ident = await verifier.verify(rsa.token(corp_claims(clock, jti=None)))
    assert ident.credential_id == "user-1"


async def test_audience_list_in_token(verifier: JwtVerifier, ed: KeyPair, clock: FakeClock) -> None:
    ident = await verifier.verify(ed.token(corp_claims(clock, aud=["other", CORP_AUD])))
    assert ident.principal == "corp:user-1"


async def test_cognito_access_token_names_the_client(
    verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock
) -> None:
    ident = await verifier.verify(rsa.token(cognito_claims(clock)))
    assert ident.principal == f"cognito:{COGNITO_CLIENT}"
    assert ident.credential_id == "c-jti"


async def test_external_sub_admin_cannot_become_admin(
    verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock
) -> None:
    ident = await verifier.verify(rsa.token(corp_claims(clock, sub="admin")))
    assert ident.principal == "corp:admin"
    assert ident.principal != "admin"


async def test_external_token_claiming_local_issuer_name_is_still_namespaced(
    server: JwksServer, rsa: KeyPair, clock: FakeClock
) -> None:
    server.publish("corp", rsa)
    local = LocalTrust(
        issuer="bastion", audience="bastion", keys=lambda: {"keys": []}, key_refusal=no_refusal
    )
    verifier = JwtVerifier(settings(server), local=local, clock=clock)
    # Signed by corp's key but claiming iss=bastion: the local key set does not hold rsa-1.
    token = rsa.token(corp_claims(clock, iss="bastion", aud="bastion", sub="admin"))
    await rejected(verifier, token, "unknown kid")


async def test_leeway_applies_to_exp(verifier: JwtVerifier, ed: KeyPair, clock: FakeClock) -> None:
    now = int(clock())
    ident = await verifier.verify(
        ed.token(corp_claims(clock, iat=now - 900, nbf=None, exp=now - 10))
    )
    assert ident.principal == "corp:user-1"


async def test_file_jwks_issuer(tmp_path: Path, ed: KeyPair, clock: FakeClock) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [ed.public_jwk]}))
    cfg = JWTSettings(
        issuers=[IssuerSettings(name="files", issuer="iss-f", jwks_url=path.as_uri(), audience="a")]
    )
    verifier = JwtVerifier(cfg, clock=clock)
    claims = corp_claims(clock, iss="iss-f", aud="a")
    assert (await verifier.verify(ed.token(claims))).principal == "files:user-1"


# --- refused: algorithms and signatures ----------------------------------------------------


async def test_alg_none_is_refused_without_fetching(
    verifier: JwtVerifier, server: JwksServer, clock: FakeClock
) -> None:
    for alg in ("none", "None", "NONE"):
        header = {"alg": alg, "typ": "JWT", "kid": "rsa-1"}
        await rejected(verifier, unsigned(header, corp_claims(clock)), "no signature")
        await rejected(verifier, unsigned(header, corp_claims(clock), b"x"), "alg none")
    assert sum(server.fetches.values()) == 0


async def test_hs256_with_rsa_public_key_as_secret_is_refused(
    verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock
) -> None:
    pem = rsa.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    signing_input = f"{b64json(header)}.{b64json(corp_claims(clock))}"
    sig = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    await rejected(verifier, f"{signing_input}.{b64(sig)}", "HS256 not allowed")


@pytest.mark.parametrize("alg", ["HS256", "HS512", "RS384", "PS256", "ES384", "ES256K"])
async def test_algorithms_outside_allow_list_are_refused(
    alg: str, verifier: JwtVerifier, clock: FakeClock
) -> None:
    token = unsigned({"alg": alg, "kid": "rsa-1"}, corp_claims(clock), b"sig")
    await rejected(verifier, token, "not allowed")


async def test_algorithm_must_match_the_key_type(
    verifier: JwtVerifier, ec: KeyPair, clock: FakeClock
) -> None:
    # ES256 signature, but naming the RSA key: the RSA key may only verify RS256.
    token = ec.sign_raw({"alg": "ES256", "kid": "rsa-1"}, corp_claims(clock))
    await rejected(verifier, token, "does not match key rsa-1")


async def test_stripped_signature_is_refused(
    verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock
) -> None:
    token = rsa.token(corp_claims(clock))
    await rejected(verifier, token.rsplit(".", 1)[0] + ".", "no signature")


async def test_signature_from_another_key_is_refused(
    verifier: JwtVerifier, clock: FakeClock
) -> None:
    impostor = ed_key("ed-1")  # same kid, different key
    await rejected(verifier, impostor.token(corp_claims(clock)), "bad signature")


async def test_tampered_payload_is_refused_even_after_the_original_was_cached(
    verifier: JwtVerifier, ed: KeyPair, clock: FakeClock
) -> None:
    token = ed.token(corp_claims(clock))
    await verifier.verify(token)
    head, _, sig = token.split(".")
    forged = f"{head}.{b64json(corp_claims(clock, sub='admin'))}.{sig}"
    await rejected(verifier, forged, "bad signature")


# --- refused: claims -----------------------------------------------------------------------


async def test_expired(verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock) -> None:
    now = int(clock())
    token = rsa.token(corp_claims(clock, iat=now - 900, nbf=now - 900, exp=now - 31))
    await rejected(verifier, token, "expired")


async def test_exp_is_required(verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock) -> None:
    await rejected(verifier, rsa.token(corp_claims(clock, exp=None)), "MissingRequiredClaimError")


@pytest.mark.parametrize("bad", ["soon", True, 1e400])
async def test_exp_must_be_a_number(
    bad: Any, verifier: JwtVerifier, ed: KeyPair, clock: FakeClock
) -> None:
    claims = corp_claims(clock)
    claims["exp"] = bad
    with pytest.raises(TokenError):
        await verifier.verify(ed.token(claims))


async def test_nbf_in_the_future(verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock) -> None:
    now = int(clock())
    await rejected(verifier, rsa.token(corp_claims(clock, nbf=now + 31)), "nbf")
    # Within the leeway it is fine.
    await verifier.verify(rsa.token(corp_claims(clock, nbf=now + 29)))


async def test_iat_in_the_future(verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock) -> None:
    now = int(clock())
    await rejected(verifier, rsa.token(corp_claims(clock, iat=now + 120, nbf=None)), "iat")


async def test_wrong_issuer_is_refused_without_fetching(
    verifier: JwtVerifier, server: JwksServer, rsa: KeyPair, clock: FakeClock
) -> None:
    await rejected(verifier, rsa.token(corp_claims(clock, iss="https://evil.example")), "untrusted")
    await rejected(verifier, rsa.token(corp_claims(clock, iss=None)), "no issuer")
    assert sum(server.fetches.values()) == 0


async def test_wrong_audience(verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock) -> None:
    await rejected(verifier, rsa.token(corp_claims(clock, aud="other-api")), "InvalidAudience")
    await rejected(verifier, rsa.token(corp_claims(clock, aud=None)), "MissingRequiredClaim")


async def test_wrong_client_id_cognito_style(
    verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock
) -> None:
    await rejected(verifier, rsa.token(cognito_claims(clock, client_id="other")), "client_id")
    await rejected(verifier, rsa.token(cognito_claims(clock, client_id=None)), "client_id")


async def test_cognito_id_token_is_refused_when_access_required(
    verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock
) -> None:
    claims = cognito_claims(clock, token_use="id")
    await rejected(verifier, rsa.token(claims), "token_use")
    await rejected(verifier, rsa.token(cognito_claims(clock, token_use=None)), "token_use")


async def test_external_token_needs_sub_or_client_id(
    verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock
) -> None:
    await rejected(verifier, rsa.token(corp_claims(clock, sub=None)), "no valid sub")
    await rejected(verifier, rsa.token(corp_claims(clock, sub="a\nb")), "no valid sub")


# --- refused: headers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kid",
    ["../../etc/passwd", "..", "a..b", "/etc/passwd", "keys/1", "a b", "", "k" * 129, 5, None],
)
async def test_kid_must_be_a_plain_identifier(
    kid: Any, verifier: JwtVerifier, server: JwksServer, rsa: KeyPair, clock: FakeClock
) -> None:
    header: dict[str, Any] = {"alg": "RS256", "typ": "JWT", "kid": kid}
    if kid is None:
        del header["kid"]
    await rejected(verifier, rsa.sign_raw(header, corp_claims(clock)), "invalid kid")
    assert sum(server.fetches.values()) == 0


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("jku", "https://evil.example/jwks.json"),
        ("x5u", "https://evil.example/cert.pem"),
        ("jwk", None),
        ("x5c", ["MIIB..."]),
    ],
)
async def test_key_location_headers_are_refused(
    member: str, value: Any, verifier: JwtVerifier, server: JwksServer, clock: FakeClock
) -> None:
    attacker = rsa_key("rsa-1")
    if value is None:
        value = attacker.public_jwk
    token = attacker.token(corp_claims(clock), **{member: value})
    await rejected(verifier, token, f"header {member} not accepted")
    assert sum(server.fetches.values()) == 0


async def test_key_location_header_refused_even_with_a_valid_signature(
    verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock
) -> None:
    # Properly signed by the issuer's own key, and pointing at a harmless location: still refused.
    token = rsa.token(corp_claims(clock), jku="http://127.0.0.1:1/jwks.json")
    await rejected(verifier, token, "header jku not accepted")


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["urn:example:ext"], []])
async def test_any_crit_header_is_refused(
    crit: list[str], verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock
) -> None:
    token = rsa.token(corp_claims(clock), crit=crit, **{"urn:example:ext": True})
    await rejected(verifier, token, "critical")


async def test_unexpected_typ_is_refused(
    verifier: JwtVerifier, rsa: KeyPair, clock: FakeClock
) -> None:
    await rejected(verifier, rsa.token(corp_claims(clock), typ="logout+jwt"), "type")
    await verifier.verify(rsa.token(corp_claims(clock), typ="at+jwt"))


async def test_oversize_token_is_refused_before_parsing(
    verifier: JwtVerifier,
    server: JwksServer,
    rsa: KeyPair,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = rsa.token(corp_claims(clock, padding="x" * 9000))
    assert len(token) > 8192

    def boom(*_: Any, **__: Any) -> Any:
        raise AssertionError("parsed an oversize token")

    monkeypatch.setattr(jwt, "decode", boom)
    monkeypatch.setattr("bastion.security.jwt_verify._segment", boom)
    await rejected(verifier, token, "too large")
    assert sum(server.fetches.values()) == 0


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a b.c.d",
        "!!!.###.$$$",
        f"{b64(b'not json')}.{b64json({})}.c2ln",
        f"{b64json([1, 2])}.{b64json({})}.c2ln",
        f"{b64json({'alg': 'RS256', 'kid': 'rsa-1'})}.{b64(b'[]')}.c2ln",
        b64(DUPLICATE_ALG) + "." + b64json({}) + ".c2ln",
        f"{b64json({'kid': 'rsa-1'})}.{b64json({})}.c2ln",
    ],
)
async def test_malformed_tokens(token: str, verifier: JwtVerifier) -> None:
    with pytest.raises(TokenError, match="malformed"):
        await verifier.verify(token)


# --- JWKS refresh on unknown kid -----------------------------------------------------------


async def test_unknown_kid_refreshes_exactly_once_with_cooldown(
    verifier: JwtVerifier, server: JwksServer, rsa: KeyPair, clock: FakeClock
) -> None:
    await verifier.verify(rsa.token(corp_claims(clock)))
    assert server.fetches["corp"] == 1
    clock.advance(31)  # past the cooldown of the initial fetch

    stranger = ed_key("unknown-1")
    await rejected(verifier, stranger.token(corp_claims(clock)), "unknown kid")
    assert server.fetches["corp"] == 2  # exactly one refresh

    other = ed_key("unknown-2")
    await rejected(verifier, other.token(corp_claims(clock)), "unknown kid")
    assert server.fetches["corp"] == 2  # inside the cooldown: no fetch

    clock.advance(31)
    await rejected(verifier, other.token(corp_claims(clock)), "unknown kid")
    assert server.fetches["corp"] == 3


async def test_new_key_is_picked_up_by_the_refresh(
    verifier: JwtVerifier, server: JwksServer, rsa: KeyPair, clock: FakeClock
) -> None:
    await verifier.verify(rsa.token(corp_claims(clock)))
    rotated = ed_key("rotated-in")
    server.publish("corp", rsa, rotated)
    clock.advance(31)
    ident = await verifier.verify(rotated.token(corp_claims(clock)))
    assert ident.principal == "corp:user-1"
    assert server.fetches["corp"] == 2


async def test_concurrent_refreshes_are_coalesced(
    verifier: JwtVerifier, server: JwksServer, rsa: KeyPair, clock: FakeClock
) -> None:
    await verifier.verify(rsa.token(corp_claims(clock)))
    clock.advance(31)
    server.delay = 0.2
    strangers = [ed_key(f"spray-{i}").token(corp_claims(clock)) for i in range(20)]
    results = await asyncio.gather(*(verifier.verify(t) for t in strangers), return_exceptions=True)
    assert all(isinstance(r, TokenError) for r in results)
    assert server.fetches["corp"] == 2


async def test_issuer_unreachable_is_reported_as_unavailable(
    server: JwksServer, rsa: KeyPair, clock: FakeClock
) -> None:
    server.status = 503
    verifier = JwtVerifier(settings(server), clock=clock)
    with pytest.raises(IssuerUnavailable, match="issuer corp: keys unavailable"):
        await verifier.verify(rsa.token(corp_claims(clock)))


# --- verified-token cache ------------------------------------------------------------------


async def test_cache_skips_signature_check(
    verifier: JwtVerifier, ed: KeyPair, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = jwt.decode

    def counting(*a: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*a, **kw)

    monkeypatch.setattr(jwt, "decode", counting)
    token = ed.token(corp_claims(clock))
    first = await verifier.verify(token)
    for _ in range(5):
        assert await verifier.verify(token) is first
    assert calls == 1


async def test_cache_rechecks_exp(server: JwksServer, ed: KeyPair, clock: FakeClock) -> None:
    server.publish("corp", ed)
    verifier = JwtVerifier(settings(server, leeway_seconds=0), clock=clock)
    now = int(clock())
    token = ed.token(corp_claims(clock, exp=now + 60))
    await verifier.verify(token)
    clock.advance(59)
    await verifier.verify(token)
    clock.advance(1)
    await rejected(verifier, token, "expired")


async def test_cached_token_dropped_when_its_key_is_revoked(
    server: JwksServer, rsa: KeyPair, ed: KeyPair, clock: FakeClock
) -> None:
    server.publish("corp", rsa, ed)
    verifier = JwtVerifier(settings(server), clock=clock)
    cached = rsa.token(corp_claims(clock, exp=int(clock()) + 7200))
    await verifier.verify(cached)
    server.publish("corp", ed)  # the issuer withdraws rsa-1
    clock.advance(601)  # JWKS cache stale: the next uncached token triggers a refresh
    await verifier.verify(ed.token(corp_claims(clock)))
    await rejected(verifier, cached, "unknown kid")


async def test_cache_is_bounded(server: JwksServer, ed: KeyPair, clock: FakeClock) -> None:
    server.publish("corp", ed)
    verifier = JwtVerifier(settings(server), clock=clock, cache_size=3)
    tokens = [ed.token(corp_claims(clock, jti=f"j{i}")) for i in range(10)]
    for t in tokens:
        await verifier.verify(t)
    assert len(verifier._cache) <= 3
    # Evicted tokens still verify (the long way).
    assert (await verifier.verify(tokens[0])).credential_id == "j0"


async def test_failures_are_not_cached(server: JwksServer, rsa: KeyPair, clock: FakeClock) -> None:
    server.publish("corp", rsa)
    verifier = JwtVerifier(settings(server), clock=clock)
    token = rsa.token(corp_claims(clock, nbf=int(clock()) + 60))
    await rejected(verifier, token, "nbf")
    assert verifier._cache == {}
    clock.advance(60)
    assert (await verifier.verify(token)).principal == "corp:user-1"


# --- local trust ---------------------------------------------------------------------------


class KeyTable:
    """Stands in for the API-key store's `refusal`: the live keys, each with its principal."""

    def __init__(self, **live: str) -> None:
        self.live = dict(live)
        self.asked: list[tuple[str, str]] = []

    async def refusal(self, key_id: str, principal: str) -> str | None:
        self.asked.append((key_id, principal))
        owner = self.live.get(key_id)
        if owner is None:
            return f"revoked api key id {key_id}"
        return None if owner == principal else f"api key id {key_id} belongs to another principal"


def local_verifier(key: KeyPair, table: KeyTable, clock: FakeClock) -> JwtVerifier:
    local = LocalTrust(
        issuer="bastion",
        audience="bastion",
        keys=lambda: {"keys": [key.public_jwk]},
        key_refusal=table.refusal,
    )
    return JwtVerifier(JWTSettings(), local=local, clock=clock)


def local_claims(clock: FakeClock, **kw: Any) -> dict[str, Any]:
    return corp_claims(clock, iss="bastion", aud="bastion", sub="alice", key_id=ALICE_KEY, **kw)


async def test_local_trust_principal_is_the_sub(clock: FakeClock) -> None:
    key = ed_key("local-1")
    verifier = local_verifier(key, KeyTable(**{ALICE_KEY: "alice"}), clock)
    claims = local_claims(clock)
    ident = await verifier.verify(key.token(claims))
    assert ident.principal == "alice" and ident.api_key_id == ALICE_KEY
    await rejected(verifier, key.token({**claims, "aud": "other"}), "InvalidAudience")
    await rejected(verifier, key.token({**claims, "sub": "corp:alice"}), "valid sub")


@pytest.mark.parametrize("key_id", [None, "", "AAAAAAAAAAAA", "aaaa", 123, ["aaaaaaaaaaaa"]])
async def test_local_token_must_name_its_api_key(clock: FakeClock, key_id: object) -> None:
    key = ed_key("local-1")
    verifier = local_verifier(key, KeyTable(**{ALICE_KEY: "alice"}), clock)
    claims = {k: v for k, v in local_claims(clock).items() if k != "key_id"}
    if key_id is not None:
        claims["key_id"] = key_id
    await rejected(verifier, key.token(claims), "key_id")


async def test_local_token_fails_once_its_key_is_not_live_even_when_cached(
    clock: FakeClock,
) -> None:
    key = ed_key("local-1")
    table = KeyTable(**{ALICE_KEY: "alice"})
    verifier = local_verifier(key, table, clock)
    token = key.token(local_claims(clock))
    await verifier.verify(token)
    await verifier.verify(token)  # a cache hit: the key is asked about all the same
    assert table.asked == [(ALICE_KEY, "alice")] * 2
    del table.live[ALICE_KEY]
    await rejected(verifier, token, f"revoked api key id {ALICE_KEY}")
    assert token not in verifier._cache


async def test_local_token_for_another_principals_key_is_refused(clock: FakeClock) -> None:
    key = ed_key("local-1")
    verifier = local_verifier(key, KeyTable(**{ALICE_KEY: "bob"}), clock)
    await rejected(verifier, key.token(local_claims(clock)), "another principal")


async def test_external_tokens_have_no_local_key(
    server: JwksServer, rsa: KeyPair, clock: FakeClock
) -> None:
    server.publish("corp", rsa)
    table = KeyTable()
    local = LocalTrust(
        issuer="bastion", audience="bastion", keys=lambda: {"keys": []}, key_refusal=table.refusal
    )
    verifier = JwtVerifier(settings(server), local=local, clock=clock)
    ident = await verifier.verify(rsa.token(corp_claims(clock, key_id=ALICE_KEY)))
    assert ident.principal == "corp:user-1" and ident.api_key_id is None
    assert table.asked == []


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://idp.example.com/jwks.json", "ftp://x/jwks.json", "file://rel/jwks.json"]
)
def test_bad_jwks_url_is_a_config_error(url: str) -> None:
    cfg = JWTSettings(issuers=[IssuerSettings(name="corp", issuer="i", jwks_url=url, audience="a")])
    with pytest.raises(ConfigError, match="issuer corp: jwks_url"):
        JwtVerifier(cfg)


def test_issuer_without_audience_or_client_ids_is_a_config_error() -> None:
    cfg = JWTSettings(
        issuers=[IssuerSettings(name="corp", issuer="i", jwks_url="https://idp.example/j")]
    )
    with pytest.raises(ConfigError, match="audience or client_ids"):
        JwtVerifier(cfg)


def test_external_issuer_cannot_reuse_the_local_issuer() -> None:
    cfg = JWTSettings(
        issuers=[
            IssuerSettings(
                name="corp", issuer="bastion", jwks_url="https://idp.example/j", audience="a"
            )
        ]
    )
    local = LocalTrust(
        issuer="bastion", audience="bastion", keys=lambda: {"keys": []}, key_refusal=no_refusal
    )
    with pytest.raises(ConfigError, match="already trusted"):
        JwtVerifier(cfg, local=local)
