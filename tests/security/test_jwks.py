"""JWKS parsing, URL rules and the fetch cache, against a real local HTTP server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from bastion.config import ConfigError
from bastion.security.jwks import JwksCache, JwksError, parse_jwks, valid_kid, validate_jwks_url
from tests.security.jwt_helpers import (
    FakeClock,
    JwksServer,
    ec_key,
    ed_key,
    rsa_key,
    running_jwks_server,
)


@pytest.fixture(scope="module")
def _server() -> Iterator[JwksServer]:
    with running_jwks_server() as server:
        yield server


@pytest.fixture
def server(_server: JwksServer) -> JwksServer:
    _server.reset()
    return _server


# --- parsing -------------------------------------------------------------------------------


def test_parse_maps_kid_to_key_and_algorithm() -> None:
    r, e, d = rsa_key("r"), ec_key("e"), ed_key("d")
    keys = parse_jwks({"keys": [r.public_jwk, e.public_jwk, d.public_jwk]})
    assert {k: v.alg for k, v in keys.items()} == {"r": "RS256", "e": "ES256", "d": "EdDSA"}
    assert repr(keys["r"]) == "VerificationKey(kid='r', alg='RS256')"


def test_parse_infers_algorithm_when_alg_is_absent() -> None:
    jwk = ed_key("d").public_jwk
    del jwk["alg"]
    assert parse_jwks({"keys": [jwk]})["d"].alg == "EdDSA"


def test_parse_skips_unusable_keys() -> None:
    good = rsa_key("good").public_jwk
    wrong_alg = {**rsa_key("wrong-alg").public_jwk, "alg": "ES256"}  # RSA key claiming ES256
    hs_alg = {**rsa_key("hs").public_jwk, "alg": "HS256"}
    enc = {**rsa_key("enc").public_jwk, "use": "enc"}
    no_kid = {k: v for k, v in rsa_key().public_jwk.items() if k != "kid"}
    bad_kid = {**rsa_key().public_jwk, "kid": "../../etc/passwd"}
    oct_key = {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"}
    p384 = {
        **ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key(), as_dict=True),
        "kid": "p384",
    }
    small = {
        **RSAAlgorithm.to_jwk(
            rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(),  # noqa: S505
            as_dict=True,
        ),
        "kid": "small",
    }
    keys = parse_jwks(
        {"keys": [good, wrong_alg, hs_alg, enc, no_kid, bad_kid, oct_key, p384, small, "x"]}
    )
    assert list(keys) == ["good"]


def test_parse_drops_a_kid_published_twice() -> None:
    a, b, c = ed_key("same"), ed_key("same"), ed_key("other")
    assert list(parse_jwks({"keys": [a.public_jwk, b.public_jwk, c.public_jwk]})) == ["other"]


def test_parse_never_yields_a_private_key() -> None:
    k = ed_key("leaky")
    private_jwk = {**OKPAlgorithm.to_jwk(k.private, as_dict=True), "kid": "leaky"}
    assert "d" in private_jwk
    parsed = parse_jwks({"keys": [private_jwk]})["leaky"]
    assert not hasattr(parsed.jwk.key, "sign")
    assert '"d"' not in parsed.fingerprint


@pytest.mark.parametrize("doc", [None, [], {}, {"keys": "x"}, {"keys": []}, {"keys": [{}]}])
def test_parse_rejects_documents_without_usable_keys(doc: object) -> None:
    with pytest.raises(JwksError):
        parse_jwks(doc)


@pytest.mark.parametrize(
    ("kid", "ok"),
    [
        ("abc-DEF_1.2", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("", False),
        ("../../etc/passwd", False),
        ("a..b", False),
        ("a/b", False),
        ("a b", False),
        ("ключ", False),
        (7, False),
        (None, False),
    ],
)
def test_valid_kid(kid: object, ok: bool) -> None:
    assert valid_kid(kid) is ok


# --- URL rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://idp.example.com/.well-known/jwks.json",
        "http://127.0.0.1:8080/jwks.json",
        "http://127.9.9.9/jwks.json",
        "http://localhost/jwks.json",
        "http://[::1]:9000/jwks.json",
        "file:///etc/bastion/jwks.json",
    ],
)
def test_accepted_jwks_urls(url: str) -> None:
    assert validate_jwks_url(url) == url


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("http://idp.example.com/jwks.json", "non-loopback"),
        ("http://10.0.0.1/jwks.json", "non-loopback"),
        ("http://localhost.evil.com/jwks.json", "non-loopback"),
        ("ftp://idp.example.com/jwks.json", "unsupported scheme"),
        ("idp.example.com/jwks.json", "unsupported scheme"),
        ("file://relative/jwks.json", "absolute path"),
        ("file:relative.json", "absolute path"),
        ("https:///jwks.json", "no host"),
        ("https://user:pw@idp.example.com/jwks.json", "credentials"),
    ],
)
def test_rejected_jwks_urls(url: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=hint):
        validate_jwks_url(url)


def test_cache_rejects_bad_url_at_construction() -> None:
    with pytest.raises(ConfigError, match="issuer corp: jwks_url"):
        JwksCache("http://idp.example.com/jwks.json", name="corp")


# --- fetching and caching ------------------------------------------------------------------


def _cache(server: JwksServer, clock: FakeClock, **kw: float) -> JwksCache:
    return JwksCache(
        server.jwks_url("corp"),
        name="corp",
        clock=clock,
        cache_seconds=kw.get("cache_seconds", 600),
        cooldown_seconds=kw.get("cooldown_seconds", 30),
        timeout_seconds=kw.get("timeout_seconds", 5),
    )


async def test_fetches_once_and_serves_from_cache(server: JwksServer) -> None:
    k = rsa_key("k1")
    server.publish("corp", k)
    clock = FakeClock()
    cache = _cache(server, clock)
    assert (await cache.get("k1")) is not None
    assert (await cache.get("k1")) is not None
    assert server.fetches["corp"] == 1
    clock.advance(599)
    await cache.get("k1")
    assert server.fetches["corp"] == 1
    clock.advance(2)  # past cache_seconds: refreshed
    await cache.get("k1")
    assert server.fetches["corp"] == 2


async def test_failed_refresh_keeps_cached_set(server: JwksServer) -> None:
    k = ed_key("k1")
    server.publish("corp", k)
    clock = FakeClock()
    cache = _cache(server, clock)
    assert await cache.get("k1") is not None
    server.status = 503
    clock.advance(601)
    key = await cache.get("k1")
    assert key is not None and key.kid == "k1"
    assert server.fetches["corp"] == 2
    # Still stale, but the failed attempt is not retried within the cooldown.
    await cache.get("k1")
    assert server.fetches["corp"] == 2


async def test_unreachable_without_cache_raises_clear_error(server: JwksServer) -> None:
    server.status = 500
    clock = FakeClock()
    cache = _cache(server, clock)
    with pytest.raises(JwksError, match="answered HTTP 500"):
        await cache.get("k1")
    # Within the cooldown the failure is remembered, not retried.
    with pytest.raises(JwksError, match="HTTP 500"):
        await cache.get("k1")
    assert server.fetches["corp"] == 1
    server.status = 200
    server.publish("corp", ed_key("k1"))
    clock.advance(31)
    assert await cache.get("k1") is not None
    assert server.fetches["corp"] == 2


async def test_bad_json_is_a_clear_error(server: JwksServer) -> None:
    server.raw_body = b"{not json"
    with pytest.raises(JwksError, match="did not return valid JSON"):
        await _cache(server, FakeClock()).get("k1")


async def test_set_without_usable_keys_is_an_error(server: JwksServer) -> None:
    server.raw_body = json.dumps({"keys": [{"kty": "oct", "k": "AA", "kid": "h"}]}).encode()
    with pytest.raises(JwksError, match="no usable key"):
        await _cache(server, FakeClock()).get("h")


async def test_connection_refused_is_a_clear_error() -> None:
    cache = JwksCache("http://127.0.0.1:1/jwks.json", name="corp")
    with pytest.raises(JwksError, match=r"fetching http://127\.0\.0\.1:1/jwks\.json failed"):
        await cache.get("k1")


async def test_oversize_response_is_refused(server: JwksServer) -> None:
    server.raw_body = b" " * (1024 * 1024 + 10)
    with pytest.raises(JwksError, match="more than"):
        await _cache(server, FakeClock()).get("k1")


async def test_slow_issuer_times_out(server: JwksServer) -> None:
    server.publish("corp", ed_key("k1"))
    server.delay = 1.0
    cache = _cache(server, FakeClock(), timeout_seconds=0.2)
    with pytest.raises(JwksError, match="timed out"):
        await cache.get("k1")


async def test_unknown_kid_refreshes_once_then_cools_down(server: JwksServer) -> None:
    server.publish("corp", ed_key("k1"))
    clock = FakeClock()
    cache = _cache(server, clock)
    await cache.get("k1")
    clock.advance(31)
    assert await cache.get("nope-1") is None
    assert server.fetches["corp"] == 2
    assert await cache.get("nope-2") is None
    assert server.fetches["corp"] == 2


async def test_concurrent_refreshes_share_one_fetch(server: JwksServer) -> None:
    server.publish("corp", ed_key("k1"))
    cache = _cache(server, FakeClock(), cooldown_seconds=0)
    await cache.get("k1")
    server.delay = 0.2
    results = await asyncio.gather(*(cache.get(f"nope-{i}") for i in range(20)))
    assert results == [None] * 20
    assert server.fetches["corp"] == 2


async def test_refresh_that_drops_a_key_counts_as_revocation(server: JwksServer) -> None:
    a, b = ed_key("a"), ed_key("b")
    server.publish("corp", a, b)
    clock = FakeClock()
    cache = _cache(server, clock)
    await cache.get("a")
    assert cache.revocations == 0
    server.publish("corp", a, b, ed_key("c"))  # adding a key is not a revocation
    clock.advance(601)
    await cache.get("a")
    assert cache.revocations == 0
    server.publish("corp", b)
    clock.advance(601)
    assert await cache.get("a") is None
    assert cache.revocations == 1


async def test_file_source(tmp_path: Path) -> None:
    k = ec_key("f1")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [k.public_jwk]}))
    cache = JwksCache(path.as_uri(), name="files")
    key = await cache.get("f1")
    assert key is not None and key.alg == "ES256"


async def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    cache = JwksCache((tmp_path / "absent.json").as_uri(), name="files")
    with pytest.raises(JwksError, match="cannot read"):
        await cache.get("f1")
