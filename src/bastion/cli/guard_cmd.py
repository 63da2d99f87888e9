"""`bastion guard scan`: run the guardrails on a text (or a JSON-lines batch), print verdicts.

Exit status 0 whatever the verdicts; non-zero only for an error (an unreadable or malformed
policy or input file, a malformed batch line).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.cli.common import fail
from bastion.guardrails.types import Direction, Source

app = typer.Typer(no_args_is_help=True, help="Scan text with the guardrails.")

_STDIN = "-"


@app.command("scan")
def scan(
    text: Annotated[
        str | None,
        typer.Argument(help="The text to scan, or - to read it from standard input."),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="A guardrail policy YAML file (default: the built-in)."),
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
) -> None:
    """Print the guardrail verdict as JSON: action, findings, sanitized text, policy version."""
    from bastion.guardrails.engine import Engine
    from bastion.guardrails.policy import PolicyError, default_policy, load_policy

    try:
        chosen = load_policy(policy) if policy is not None else default_policy()
    except PolicyError as error:
        fail(f"bad policy: {error}")
    except OSError as error:
        fail(f"unreadable policy: {policy}: {error.strerror or error}")
    engine = Engine(chosen)
    if jsonl is not None:
        if text is not None:
            fail("give either TEXT or --jsonl, not both")
        _scan_lines(engine, jsonl)
        return
    if text is None:
        fail("nothing to scan: give TEXT, - for standard input, or --jsonl FILE")
    body: str | bytes = sys.stdin.buffer.read() if text == _STDIN else text
    _print(engine.scan(body, source, direction).to_dict())


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
