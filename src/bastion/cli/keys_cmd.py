"""`bastion keys create|list|revoke|rotate`."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import typer

from bastion.cli.common import (
    ConfigOption,
    JsonOption,
    fail,
    print_rows,
    resolve_prefix,
    settings_from,
    usage_error,
    warn,
)
from bastion.config import Settings
from bastion.security import ApiKeyError, ApiKeyStore, PolicyError, build_api_key_store, load_policy

app = typer.Typer(no_args_is_help=True)

_DURATION_RE = re.compile(r"^(\d+)([smhd])$")
_LISTED_BY = "bastion keys list"


def parse_duration(value: str, option: str) -> float:
    """`90s`, `15m`, `12h`, `30d` -> seconds; anything else is a usage error naming `option`."""
    m = _DURATION_RE.match(value.strip())
    if not m:
        usage_error(f"{option} {value!r}: write a number and a unit s, m, h or d (e.g. 30d)")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _store(config: str | None) -> ApiKeyStore:
    return build_api_key_store(settings_from(config))


def _warn_if_not_in_policy(settings: Settings, principal: str) -> None:
    """A key for a principal the policy never names can call nothing: say so (on stderr)."""
    path = settings.path(settings.policy.file)
    try:
        mentioned = load_policy(path).mentions(principal)
    except PolicyError as exc:
        warn(f"cannot check the policy for {principal!r}: {exc}")
        return
    if not mentioned:
        warn(
            f"principal {principal!r} appears nowhere in {path}: the key authenticates, but "
            "every call is denied until the policy grants it something"
        )


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
    lifetime = None if expires_in is None else parse_duration(expires_in, "--expires-in")
    if lifetime is not None and lifetime <= 0:
        usage_error(f"--expires-in {expires_in!r}: a key must live longer than 0 s (e.g. 30d)")
    settings = settings_from(config)
    try:
        key = build_api_key_store(settings).create(
            principal,
            expires_at=None if lifetime is None else time.time() + lifetime,
            label=label,
        )
    except ApiKeyError as exc:
        fail(str(exc))
    typer.echo(key)
    _warn_if_not_in_policy(settings, principal)


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


def _existing_key(store: ApiKeyStore, given: str) -> dict[str, Any]:
    """The listed key whose id is `given` or starts with it (exit 2 if none or several)."""
    keys = {k["key_id"]: k for k in store.list()}
    return keys[resolve_prefix(given, keys, "key id", _LISTED_BY)]


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, or a unique prefix of it.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key. Running agents stop accepting it within auth.api_key_cache_seconds."""
    store = _store(config)
    key = _existing_key(store, key_id)
    key_id = key["key_id"]
    if key["revoked_at"] is not None:
        usage_error(f"key {key_id} is already revoked: nothing to do (see `bastion keys list`)")
    try:
        store.revoke(key_id)
    except ApiKeyError as exc:
        fail(str(exc))
    typer.echo(f"revoked {key_id}")


@app.command()
def rotate(
    key_id: Annotated[str, typer.Argument(help="The key's id, or a unique prefix of it.")],
    config: ConfigOption = None,
    grace: Annotated[
        str, typer.Option("--grace", help="How long the old key keeps working, e.g. 1h.")
    ] = "1h",
) -> None:
    """Issue a new key for the same principal; the old one expires after the grace period."""
    grace_seconds = parse_duration(grace, "--grace")
    store = _store(config)
    old = _existing_key(store, key_id)
    if old["revoked_at"] is not None:
        usage_error(
            f"key {old['key_id']} is revoked and cannot be rotated: create a new one with "
            f"`bastion keys create {old['principal']}`"
        )
    try:
        key = store.rotate(old["key_id"], grace_seconds=grace_seconds)
    except ApiKeyError as exc:
        fail(str(exc))
    typer.echo(key)
