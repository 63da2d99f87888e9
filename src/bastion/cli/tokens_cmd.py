"""`bastion tokens revoke`: list a bearer token's id (`jti`) as revoked for every replica."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Annotated

import orjson
import typer

from bastion.cli.common import ConfigOption, console, fail, settings_from, usage_error
from bastion.cli.keys_cmd import parse_duration
from bastion.config import Settings
from bastion.security import NoSharedStore, RevocationStoreError, revoke_shared, valid_jti

app = typer.Typer(no_args_is_help=True)


def _claims_of(token: str) -> tuple[str, float]:
    """(jti, exp) read from a token's payload. The signature is not checked: listing an id as
    revoked can only refuse tokens, never admit one."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error, orjson.JSONDecodeError):
        usage_error("the token is not a JWT (header.payload.signature): pass it whole, or its jti")
    if not isinstance(claims, dict):
        usage_error("the token's payload is not a JSON object")
    jti, exp = claims.get("jti"), claims.get("exp")
    if not valid_jti(jti):
        usage_error("the token has no jti claim, so it cannot be revoked by id")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        usage_error("the token has no numeric exp claim")
    assert isinstance(jti, str)
    return jti, float(exp)


def _target(settings: Settings, given: str, ttl: str | None) -> tuple[str, float]:
    if given.count(".") == 2:
        if ttl is not None:
            usage_error("--ttl goes with a jti: a whole token carries its own exp")
        return _claims_of(given)
    if not valid_jti(given):
        usage_error("not a token id: pass the token's jti claim or the whole token")
    seconds = (
        parse_duration(ttl, "--ttl") if ttl is not None else settings.auth.token_service.ttl_seconds
    )
    return given, time.time() + seconds


@app.command()
def revoke(
    token: Annotated[str, typer.Argument(help="The token's jti claim, or the whole token.")],
    config: ConfigOption = None,
    ttl: Annotated[
        str | None,
        typer.Option(
            "--ttl",
            help="With a jti: how long the token may still live (e.g. 1h; default "
            "auth.token_service.ttl_seconds, the built-in tokens' lifetime).",
        ),
    ] = None,
) -> None:
    """Refuse a bearer token from now on, on every replica sharing the Redis."""
    settings = settings_from(config)
    jti, expires_at = _target(settings, token, ttl)
    if expires_at <= time.time():
        console.print(f"token {jti} has expired already: nothing to revoke", highlight=False)
        return
    try:
        asyncio.run(revoke_shared(settings, jti, expires_at))
    except NoSharedStore as exc:
        fail(f"{exc}, which this command cannot reach")
    except RevocationStoreError as exc:
        fail(f"cannot reach the shared Redis ({exc}): check rate_limit.redis_url and retry")
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at))
    console.print(f"revoked token {jti} (listed until {until})", markup=False, highlight=False)
