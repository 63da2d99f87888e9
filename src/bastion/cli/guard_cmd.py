"""`bastion guard scan`: run the guardrails on a text (or a JSON-lines batch), print verdicts.

Exit status 0 whatever the verdicts; non-zero only for an error (an unreadable or malformed
policy or input file, a malformed batch line). `--policy` takes a file or a shipped policy's name;
a policy that anonymises with reversible tokens gets its key from `--token-key-ref` or
`guardrails.token_key` in the config.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bastion.cli.common import ConfigOption, fail, settings_from, usage_error
from bastion.guardrails.types import Direction, Source
from bastion.security import SecretError, resolve

if TYPE_CHECKING:
    from bastion.guardrails.policy import Policy

app = typer.Typer(no_args_is_help=True, help="Scan text with the guardrails.")

_STDIN = "-"


@app.command("scan")
def scan(
    text: Annotated[
        str | None,
        typer.Argument(help="The text to scan, or - to read it from standard input."),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="A guardrail policy YAML file, or a shipped policy's name: default, documents, "
            "strict (default: default).",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        Source, typer.Option("--source", help="Where the text comes from.")
    ] = Source.USER_INPUT,
    direction: Annotated[
        Direction, typer.Option("--direction", help="input: to a model; output: from one.")
    ] = Direction.INPUT,
    jsonl: Annotated[
        Path | None,
        typer.Option(
            "--jsonl",
            help='Scan each line {"text": ..., "source": ..., "direction": ...} of FILE '
            "(- for standard input); print one verdict per line, in order.",
        ),
    ] = None,
    token_key_ref: Annotated[
        str | None,
        typer.Option(
            "--token-key-ref",
            help="Secret reference (secret://env/NAME, secret://file/PATH...) to the key of "
            "reversible tokens, 32, 48 or 64 bytes as hex (default: guardrails.token_key).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Print the guardrail verdict as JSON: action, findings, sanitized text, policy version."""
    from bastion.guardrails.engine import Engine

    if text is not None and jsonl is not None:
        usage_error("give either TEXT or --jsonl, not both")
    if text is None and jsonl is None:
        usage_error("nothing to scan: give TEXT, - for standard input, or --jsonl FILE")
    chosen = _policy(policy)
    key = _token_key(chosen, token_key_ref, config) if chosen.anonymize_with == "token" else None
    engine = Engine(chosen, token_key=key)
    if jsonl is not None:
        _scan_lines(engine, jsonl)
        return
    assert text is not None  # checked above
    body: str | bytes = sys.stdin.buffer.read() if text == _STDIN else text
    _print(engine.scan(body, source, direction).to_dict())


def _policy(given: str | None) -> Policy:
    """The policy `--policy` names: a file if there is one at that path, else a shipped one."""
    from bastion.guardrails.policy import (
        PolicyError,
        load_policy,
        shipped_policy,
        shipped_policy_names,
    )

    try:
        if given is None:
            return shipped_policy("default")
        if not Path(given).exists() and given in shipped_policy_names():
            return shipped_policy(given)
        if not Path(given).exists():
            names = ", ".join(shipped_policy_names())
            usage_error(f"no such policy: {given!r} (give a policy file or one of: {names})")
        return load_policy(given)
    except PolicyError as error:
        fail(f"bad policy: {error}")


def _token_key(policy: Policy, ref: str | None, config: str | None) -> bytes:
    """The key of the policy's reversible tokens: `--token-key-ref`, else the config's."""
    from bastion.guardrails.anonymize import KEY_SIZES

    settings = settings_from(config, required=False)
    origin = "--token-key-ref" if ref else "guardrails.token_key"
    ref = ref or settings.guardrails.token_key
    if not ref:
        usage_error(
            f"policy {policy.name!r} anonymises with reversible tokens and needs their key: "
            "pass --token-key-ref secret://... or set guardrails.token_key in bastion.yaml"
        )
    try:
        text = resolve(ref, settings.base_dir, settings.secrets).get().strip()
    except SecretError as exc:
        usage_error(f"{origin}: {exc}")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) not in KEY_SIZES:
        usage_error(
            f"{origin}: the token key must be 32, 48 or 64 bytes written as hex "
            "(e.g. the output of `openssl rand -hex 64`)"
        )
    return key


def _scan_lines(engine: Any, path: Path) -> None:
    try:
        data = sys.stdin.buffer.read() if str(path) == _STDIN else path.read_bytes()
    except OSError as error:
        fail(f"unreadable: {path}: {error.strerror or error}")
    errors = 0
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = _batch_item(line)
        except ValueError as error:
            errors += 1
            typer.echo(f"{path}:{number}: {error}", err=True)
            _print({"error": f"line {number}: {error}"})
            continue
        _print(engine.scan(item[0], item[1], item[2]).to_dict())
    if errors:
        raise typer.Exit(1)


def _batch_item(line: str) -> tuple[str, Source, Direction]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg})") from None
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise ValueError('expected an object with a "text" string')
    try:
        source = Source(item.get("source", Source.USER_INPUT))
        direction = Direction(item.get("direction", Direction.INPUT))
    except ValueError as error:
        raise ValueError(str(error)) from None
    return item["text"], source, direction


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()
