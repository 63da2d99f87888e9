"""The built-in token service: signing keys, issuing JWTs, publishing the JWKS, HTTP routes.

Signing keys are a private JWK set of Ed25519 keys held behind a secret reference
(`auth.token_service.signing_keys`). Tokens are signed with the newest key; the JWKS lists
the public half of every key in the file, so tokens signed just before a rotation still
verify. Rotation appends a key and drops keys older than 2 x `rotate_after_seconds` + the
token lifetime (the key that was newest before the rotation is always kept). A key file is
re-read when it changes, so a rotation done by the CLI is picked up without a restart; a key
set in another store (env, AWS, Vault) is fetched again after `secrets.ttl_seconds`, and a
changed set is used at once (the JWKS serves its public keys). Private key members are
registered with the log redactor.

Routes: `POST /oauth/token` (RFC 6749 client credentials, the API key being the client
secret) and `GET /.well-known/jwks.json`.

A token never outlives the API key it was exchanged for: its `exp` is at most the key's expiry,
and it names the key (claim `key_id`), which every verifier checks is still live on each use
(see `bastion.security.jwt_verify`), so revoking the key ends its tokens too.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.config import SecretsSettings, TokenServiceSettings
from bastion.core.context import Identity
from bastion.observability.redact import remember
from bastion.security.jwks import valid_kid
from bastion.security.jwt_verify import KEY_ID_CLAIM, KeyRefusal, LocalTrust
from bastion.security.secrets import (
    Secret,
    SecretError,
    parse_reference,
    resolve,
    write_secret_file,
)

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/token"  # noqa: S105 (a URL path, not a secret)
JWKS_PATH = "/.well-known/jwks.json"
MAX_TOKEN_REQUEST_BYTES = 8 * 1024
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")

AuthenticateApiKey = Callable[[str], Awaitable[Identity | None]]


class SigningKeyError(Exception):
    """The signing key set cannot be loaded, used or rotated. Never holds key material."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    if not _B64URL_RE.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _new_private_jwk(now: float) -> dict[str, Any]:
    key = Ed25519PrivateKey.generate()
    d = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    x = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
        "kid": secrets.token_urlsafe(12),
        "created": int(now),
        "x": _b64e(x),
        "d": _b64e(d),
    }


def _dump_keyset(keys: list[dict[str, Any]]) -> str:
    return json.dumps({"keys": keys}, indent=2) + "\n"


def generate_signing_keyset(now: float | None = None) -> str:
    """A new private JWK set (JSON) holding one Ed25519 key, for `write_secret_file`."""
    return _dump_keyset([_new_private_jwk(time.time() if now is None else now)])


class _SigningKey:
    __slots__ = ("created", "kid", "private", "public_jwk")

    def __init__(
        self, kid: str, created: float, private: Ed25519PrivateKey, public_jwk: dict[str, Any]
    ) -> None:
        self.kid = kid
        self.created = created
        self.private = private
        self.public_jwk = public_jwk

    def __repr__(self) -> str:
        return f"_SigningKey(kid={self.kid!r}, created={self.created!r})"


def _parse_private_key(raw: object, index: int) -> _SigningKey:
    where = f"signing key #{index}"
    if not isinstance(raw, dict):
        raise SigningKeyError(f"{where} is not a JSON object")
    kid = raw.get("kid")
    if not valid_kid(kid):
        raise SigningKeyError(f"{where}: kid must be 1-128 characters of [A-Za-z0-9._-]")
    assert isinstance(kid, str)
    where = f"signing key {kid!r}"
    if raw.get("kty") != "OKP" or raw.get("crv") != "Ed25519":
        raise SigningKeyError(f"{where}: only Ed25519 (kty OKP, crv Ed25519) keys are supported")
    if raw.get("alg", "EdDSA") != "EdDSA":
        raise SigningKeyError(f"{where}: alg must be EdDSA")
    created = raw.get("created")
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise SigningKeyError(f"{where}: created must be a Unix timestamp")
    d, x = raw.get("d"), raw.get("x")
    if not isinstance(d, str) or not isinstance(x, str):
        raise SigningKeyError(f"{where}: private (d) and public (x) members are required")
    try:
        d_bytes, x_bytes = _b64d(d), _b64d(x)
        private = Ed25519PrivateKey.from_private_bytes(d_bytes)
    except (ValueError, binascii.Error):
        raise SigningKeyError(f"{where}: d or x is not a valid Ed25519 key") from None
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if not hmac.compare_digest(public, x_bytes):
        raise SigningKeyError(f"{where}: x does not match the private key")
    public_jwk = {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x}
    return _SigningKey(kid, float(created), private, public_jwk)


def _parse_keyset(text: str) -> tuple[list[dict[str, Any]], list[_SigningKey]]:
    """The raw JWKs and the parsed keys, oldest first (file order breaks ties)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise SigningKeyError("the signing key set is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise SigningKeyError('the signing key set must be an object with a non-empty "keys" list')
    raws: list[dict[str, Any]] = data["keys"]
    keys = [_parse_private_key(raw, i) for i, raw in enumerate(raws)]
    if len({k.kid for k in keys}) != len(keys):
        raise SigningKeyError("the signing key set holds the same kid twice")
    return raws, sorted(keys, key=lambda k: k.created)


def _atomic_write_secret(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write_secret_file(tmp, text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def rotate_keyset_file(
    path: Path, *, rotate_after_seconds: int, ttl_seconds: int, now: float | None = None
) -> str:
    """Add a new signing key to the key set file and drop expired ones; returns the new kid.

    Kept: keys created within 2 x `rotate_after_seconds` + `ttl_seconds`, and the key that was
    newest, so every token signed before the rotation still verifies.
    """
    now = time.time() if now is None else now
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SigningKeyError(f"cannot read {path}: {exc.strerror}") from None
    raws, keys = _parse_keyset(text)
    horizon = now - (2 * rotate_after_seconds + ttl_seconds)
    newest = keys[-1].kid
    kept = [r for r in raws if r["kid"] == newest or float(r["created"]) >= horizon]
    new = _new_private_jwk(now)
    _atomic_write_secret(path, _dump_keyset([*kept, new]))
    kid: str = new["kid"]
    return kid


def _file_path(ref: str, base_dir: Path) -> Path | None:
    """The file behind a `secret://file/...` reference, to watch for changes."""
    try:
        parsed = parse_reference(ref)
    except SecretError:
        return None
    if parsed.provider != "file":
        return None
    path = Path(parsed.locator)
    return path if path.is_absolute() else base_dir / path


@dataclass(frozen=True, slots=True)
class _KeyState:
    keys: tuple[_SigningKey, ...]
    public: dict[str, Any]
    stamp: tuple[int, int, int] | None


class SigningKeys:
    """The token service's signing keys, loaded from their secret reference and kept current."""

    def __init__(
        self,
        settings: TokenServiceSettings,
        base_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        reload_check_seconds: float = 1.0,
        secrets_settings: SecretsSettings | None = None,
    ) -> None:
        self._ref = settings.signing_keys
        self._base_dir = base_dir
        self._secrets = secrets_settings
        self._enabled = settings.enabled
        # Keys held outside a file: a handle that fetches them again after the secrets TTL.
        self._handle: Secret | None = None
        self._refresh_lock = threading.Lock()
        self._refresher: threading.Thread | None = None
        self._rotate_after = settings.rotate_after_seconds
        self._ttl = settings.ttl_seconds
        self._clock = clock
        self._check_every = reload_check_seconds
        self._last_check = clock()
        self._path = _file_path(self._ref, base_dir)
        self._state = _KeyState((), {"keys": []}, None)
        if settings.enabled:
            self._state = self._load()

    def __repr__(self) -> str:
        return f"SigningKeys(ref={self._ref!r}, kids={self.kids!r})"

    @property
    def kids(self) -> list[str]:
        """Key ids, oldest first; the last one signs."""
        return [k.kid for k in self._state.keys]

    @property
    def path(self) -> Path | None:
        return self._path

    def _stat(self) -> tuple[int, int, int] | None:
        if self._path is None:
            return None
        try:
            st = self._path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _fetch(self) -> str:
        try:
            if self._path is not None:
                return resolve(self._ref, self._base_dir, self._secrets).get()
            if self._handle is None:
                self._handle = Secret(self._ref, self._base_dir, self._secrets, clock=self._clock)
            return self._handle.get().get()
        except SecretError as exc:
            raise SigningKeyError(f"token signing keys: {exc}") from None

    def _load(self) -> _KeyState:
        stamp = self._stat()
        try:
            raws, keys = _parse_keyset(self._fetch())
        except SigningKeyError as exc:
            raise SigningKeyError(f"token signing keys ({self._ref}): {exc}") from None
        for raw in raws:
            if isinstance(raw.get("d"), str):
                remember(raw["d"])
        return _KeyState(tuple(keys), {"keys": [k.public_jwk for k in keys]}, stamp)

    def _changed(self) -> bool:
        """Whether the key set changed since it was loaded (a file's stamp, a store's value)."""
        if self._path is not None:
            stamp = self._stat()
            return stamp is not None and stamp != self._state.stamp
        if self._handle is None or not self._handle.stale:
            return False
        try:
            changed = self._handle.refresh()
        except SecretError as exc:
            # Past the grace period: stop signing with keys that may have been withdrawn.
            log.error("token signing keys unavailable, not signing: %s", exc)
            self._state = _KeyState((), {"keys": []}, None)
            return False
        return changed or not self._state.keys

    def reload_if_changed(self) -> bool:
        """Load the key set again when it changed; a bad set is logged and the old keys kept."""
        self._last_check = self._clock()
        if not self._enabled or not self._changed():
            return False
        try:
            self._state = self._load()
        except SigningKeyError as exc:
            log.warning("keeping the current signing keys: %s", exc)
            return False
        log.info("token signing keys reloaded: %d keys", len(self._state.keys))
        return True

    def _maybe_reload(self) -> None:
        if self._clock() - self._last_check < self._check_every:
            return
        if self._handle is not None and self._handle.stale:
            # A key set in a store (env, AWS, Vault): fetched off the caller's thread, so a
            # slow store never holds up signing or verification; the current keys serve.
            self._last_check = self._clock()
            self._reload_in_background()
            return
        self.reload_if_changed()

    def _reload_in_background(self) -> None:
        with self._refresh_lock:
            if self._refresher is not None and self._refresher.is_alive():
                return
            self._refresher = threading.Thread(
                target=self.reload_if_changed, name="signing-keys-refresh", daemon=True
            )
            self._refresher.start()

    def public_jwks(self) -> dict[str, Any]:
        """The public JWK set (every key, no private members). Same object until keys change."""
        self._maybe_reload()
        return self._state.public

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS of `claims`, signed with the newest key (EdDSA, header kid + typ)."""
        self._maybe_reload()
        if not self._state.keys:
            raise SigningKeyError("the token service has no signing key")
        key = self._state.keys[-1]
        return jwt.encode(
            claims, key.private, algorithm="EdDSA", headers={"kid": key.kid, "typ": "JWT"}
        )

    def needs_rotation(self) -> bool:
        keys = self._state.keys
        return not keys or self._clock() - keys[-1].created >= self._rotate_after

    def rotate(self, path: Path | None = None) -> str:
        """Add a new key to the key file (default: the configured one); returns its kid."""
        target = path or self._path
        if target is None:
            raise SigningKeyError(
                f"{self._ref}: only secret://file/ signing keys can be rotated in place"
            )
        kid = rotate_keyset_file(
            target,
            rotate_after_seconds=self._rotate_after,
            ttl_seconds=self._ttl,
            now=self._clock(),
        )
        if self._path is not None and target.resolve() == self._path.resolve():
            self._state = self._load()
        return kid


def _oauth_error(error: str, status: int, description: str | None = None) -> JSONResponse:
    body = {"error": error}
    if description:
        body["error_description"] = description
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="bastion"'
    if status == 503:
        headers["Retry-After"] = "1"
    return JSONResponse(body, status_code=status, headers=headers)


def _invalid_client() -> JSONResponse:
    return _oauth_error("invalid_client", 401, "client authentication failed")


def _invalid_request(description: str) -> JSONResponse:
    return _oauth_error("invalid_request", 400, description)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is larger than `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                return None
        except ValueError:
            return None
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            return None
    return bytes(buf)


def _basic_credentials(value: str) -> tuple[str, str] | None:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before joining.
    return unquote_plus(client_id), unquote_plus(secret)


class TokenService:
    """Issues short-lived JWTs to callers holding an API key (OAuth 2 client credentials)."""

    def __init__(
        self,
        settings: TokenServiceSettings,
        keys: SigningKeys,
        authenticate_api_key: AuthenticateApiKey,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self._authenticate = authenticate_api_key
        self._clock = clock

    def __repr__(self) -> str:
        return f"TokenService(issuer={self.settings.issuer!r}, enabled={self.settings.enabled})"

    def issue(
        self, principal: str, *, key_id: str, not_after: float | None = None
    ) -> tuple[str, int]:
        """A signed token for `principal`, exchanged for API key `key_id`, and its lifetime in
        seconds.

        `not_after` (the key's expiry) caps the expiry, so a token never outlives the
        credential it came from; `key_id` lets verifiers refuse it once the key is revoked.
        """
        if not principal:
            raise ValueError("principal must not be empty")
        if not key_id:
            raise ValueError("key_id must not be empty")
        iat = int(self._clock())
        exp = iat + self.settings.ttl_seconds
        if not_after is not None:
            exp = min(exp, int(not_after))
        if exp <= iat:
            raise ValueError("the credential expires before a token could be used")
        claims = {
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "sub": principal,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "jti": secrets.token_urlsafe(16),
            KEY_ID_CLAIM: key_id,
        }
        return self.keys.sign(claims), exp - iat

    def local_trust(self, key_refusal: KeyRefusal) -> LocalTrust:
        """How a verifier in this process trusts our tokens: our public keys, and
        `key_refusal` (the API-key store's) to refuse a token whose key is no longer live."""
        return LocalTrust(
            issuer=self.settings.issuer,
            audience=self.settings.audience,
            keys=self.keys.public_jwks,
            key_refusal=key_refusal,
        )

    def routes(self) -> list[Route]:
        """The token and JWKS endpoints; none when the token service is disabled."""
        if not self.settings.enabled:
            return []
        return [
            Route(TOKEN_PATH, self.token_endpoint, methods=["POST"]),
            Route(JWKS_PATH, self.jwks_endpoint, methods=["GET"]),
        ]

    async def jwks_endpoint(self, request: Request) -> Response:
        return JSONResponse(
            self.keys.public_jwks(), headers={"Cache-Control": "public, max-age=300"}
        )

    async def token_endpoint(self, request: Request) -> Response:
        body = await _read_body(request, MAX_TOKEN_REQUEST_BYTES)
        if body is None:
            return _oauth_error("invalid_request", 413, "request body too large")
        form: dict[str, str] = {}
        if body:
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/x-www-form-urlencoded":
                return _invalid_request("use application/x-www-form-urlencoded")
            try:
                pairs = parse_qsl(
                    body.decode("utf-8"),
                    keep_blank_values=True,
                    strict_parsing=True,
                    max_num_fields=16,
                )
            except (UnicodeDecodeError, ValueError):
                return _invalid_request("malformed form body")
            for name, value in pairs:
                if name in form:
                    return _invalid_request(f"parameter {name} is repeated")
                form[name] = value

        header_key = request.headers.get("x-api-key")
        grant_type = form.get("grant_type")
        if grant_type is None and not (header_key is not None and not body):
            return _invalid_request("grant_type is required")
        if grant_type is not None and grant_type != "client_credentials":
            return _oauth_error("unsupported_grant_type", 400)

        methods: list[tuple[str | None, str]] = []
        authorization = request.headers.get("authorization")
        if authorization is not None:
            basic = _basic_credentials(authorization)
            if basic is None:
                return _invalid_client()
            if "client_id" in form and form["client_id"] != basic[0]:
                return _invalid_request("client_id differs from the Basic credentials")
            methods.append(basic)
        if "client_secret" in form:
            methods.append((form.get("client_id"), form["client_secret"]))
        if header_key is not None:
            methods.append((form.get("client_id"), header_key))
        if len(methods) > 1:
            return _invalid_request("use exactly one client authentication method")
        if not methods or not methods[0][1]:
            return _invalid_client()
        client_id, secret = methods[0]
        client_id = client_id or None

        try:
            identity = await self._authenticate(secret)
        except Exception as exc:
            # Only the type: the message or traceback of a store error could echo the key.
            log.error("API key check failed while issuing a token (%s)", type(exc).__name__)
            return _oauth_error("temporarily_unavailable", 503)
        if identity is None or identity.api_key_id is None:
            return _invalid_client()
        if client_id is not None and not (
            hmac.compare_digest(client_id.encode(), identity.principal.encode())
            or hmac.compare_digest(client_id.encode(), (identity.credential_id or "").encode())
        ):
            return _invalid_client()
        try:
            token, expires_in = self.issue(
                identity.principal, key_id=identity.api_key_id, not_after=identity.expires_at
            )
        except ValueError:
            return _invalid_client()
        except SigningKeyError as exc:
            log.error("cannot issue a token: %s", exc)
            return _oauth_error("temporarily_unavailable", 503)
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": expires_in},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )
