"""`bastion keys create|list|revoke|rotate`."""

from __future__ import annotations

import re
import time
from typing import Annotated

import typer

from bastion.cli.common import ConfigOption, JsonOption, fail, print_rows, settings_from
from bastion.security.apikeys import ApiKeyError, ApiKeyStore
from bastion.security.stack import build_api_key_store

app = typer.Typer(no_args_is_help=True)

_DURATION_RE = re.compile(r"^(\d+)([smhd])$")


def parse_duration(value: str) -> float:
    """`90s`, `15m`, `12h`, `30d` -> seconds."""
    m = _DURATION_RE.match(value.strip())
    if not m:
        raise typer.BadParameter(f"{value!r}: write a number and a unit s, m, h or d (e.g. 30d)")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _store(config: str | None) -> ApiKeyStore:
    return build_api_key_store(settings_from(config))


@app.command()
def create(
    principal: Annotated[str, typer.Argument(help="Principal the key acts as.")],
    config: ConfigOption = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Lifetime, e.g. 30d.")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="A note for humans.")] = None,
) -> None:
    """Create a key and print it once. Only its hash is stored."""
    expires = time.time() + parse_duration(expires_in) if expires_in else None
    try:
        key = _store(config).create(principal, expires_at=expires, label=label)
    except ApiKeyError as exc:
        fail(str(exc))
    typer.echo(key)


def _when(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else None


@app.command("list")
def list_keys(
    config: ConfigOption = None,
    principal: Annotated[str | None, typer.Option("--principal")] = None,
    as_json: JsonOption = False,
) -> None:
    """List keys (ids and status only; secrets are never shown)."""
    rows = _store(config).list(principal)
    if not as_json:
        rows = [
            {**r, **{k: _when(r[k]) for k in ("created_at", "expires_at", "revoked_at")}}
            for r in rows
        ]
    print_rows(
        rows,
        ["key_id", "principal", "status", "created_at", "expires_at", "revoked_at", "label"],
        as_json=as_json,
        title="API keys",
    )


@app.command()
def revoke(key_id: str, config: ConfigOption = None) -> None:
    """Revoke a key. Running agents stop accepting it within auth.api_key_cache_seconds."""
    try:
        _store(config).revoke(key_id)
    except ApiKeyError as exc:
        fail(str(exc))
    typer.echo(f"revoked {key_id}")


@app.command()
def rotate(
    key_id: str,
    config: ConfigOption = None,
    grace: Annotated[
        str, typer.Option("--grace", help="How long the old key keeps working, e.g. 1h.")
    ] = "1h",
) -> None:
    """Issue a new key for the same principal; the old one expires after the grace period."""
    try:
        key = _store(config).rotate(key_id, grace_seconds=parse_duration(grace))
    except ApiKeyError as exc:
        fail(str(exc))
    typer.echo(key)
