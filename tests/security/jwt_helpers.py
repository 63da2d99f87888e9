"""Helpers for the JWT tests: signing keys, hand-made tokens, a local JWKS server, a clock."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, get_default_algorithms
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.testing.live_server import serve_in_thread


class FakeClock:
    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


@dataclass
class KeyPair:
    kid: str
    alg: str
    private: Any

    @property
    def public_jwk(self) -> dict[str, Any]:
        pub = self.private.public_key()
        if self.alg == "RS256":
            jwk = RSAAlgorithm.to_jwk(pub, as_dict=True)
        elif self.alg == "ES256":
            jwk = ECAlgorithm.to_jwk(pub, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(pub, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign_raw(
        self, header: dict[str, Any], payload: dict[str, Any], *, alg: str | None = None
    ) -> str:
        """A token with exactly this header, signed with this key (any header tricks allowed)."""
        signing_input = f"{b64json(header)}.{b64json(payload)}".encode()
        algo = get_default_algorithms()[alg or self.alg]
        sig = algo.sign(signing_input, algo.prepare_key(self.private))
        return f"{signing_input.decode()}.{b64(sig)}"

    def token(self, payload: dict[str, Any], **extra_header: Any) -> str:
        header = {"alg": self.alg, "typ": "JWT", "kid": self.kid, **extra_header}
        return self.sign_raw(header, payload)


def rsa_key(kid: str = "rsa-1", bits: int = 2048) -> KeyPair:
    return KeyPair(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=bits))


def ec_key(kid: str = "ec-1") -> KeyPair:
    return KeyPair(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def ed_key(kid: str = "ed-1") -> KeyPair:
    return KeyPair(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64json(header)}.{b64json(payload)}.{b64(signature)}"


@dataclass
class JwksServer:
    """Serves `/<name>/jwks.json` from `sets[name]`, counting every fetch."""

    sets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fetches: Counter[str] = field(default_factory=Counter)
    status: int = 200
    raw_body: bytes | None = None
    delay: float = 0.0
    url: str = ""

    def reset(self) -> None:
        self.sets.clear()
        self.fetches.clear()
        self.status = 200
        self.raw_body = None
        self.delay = 0.0

    def jwks_url(self, name: str) -> str:
        return f"{self.url}/{name}/jwks.json"

    def publish(self, name: str, *keys: KeyPair) -> None:
        self.sets[name] = [k.public_jwk for k in keys]

    async def _handle(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.fetches[name] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raw_body is not None:
            return Response(self.raw_body, status_code=self.status, media_type="application/json")
        if self.status != 200:
            return JSONResponse({"error": "unavailable"}, status_code=self.status)
        return JSONResponse({"keys": self.sets.get(name, [])})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{name}/jwks.json", self._handle)])


@contextmanager
def running_jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    with serve_in_thread(server.app()) as live:
        server.url = live.url
        yield server
