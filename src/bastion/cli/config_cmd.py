"""`bastion config check`: load the configuration and resolve every secret reference in it.

One line per reference: the config key, the reference and OK or the problem. Values are never
printed. The Vault token reference is checked when some reference reads from Vault. A literal
in a field that holds a credential is reported (its value is not shown).
Exit status 1 when the configuration does not load or anything is missing or unreadable.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import typer
from rich.markup import escape

from bastion.cli.common import ConfigOption, JsonOption, console, settings_from
from bastion.security.secrets.preflight import check_references

app = typer.Typer(no_args_is_help=True, help="Check the configuration.")


@app.command("check")
def check(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Validate the configuration and resolve every secret reference (values never shown)."""
    settings = settings_from(config)
    checks = check_references(settings)
    if as_json:
        sys.stdout.write(json.dumps([asdict(c) for c in checks], indent=2) + "\n")
    elif not checks:
        console.print("configuration OK; it holds no secret references", highlight=False)
    else:
        for c in checks:
            status = "OK" if c.ok else f"[red]{escape(c.problem or 'problem')}[/]"
            console.print(
                f"{escape(c.key)}  {escape(c.reference)}  {status}",
                highlight=False,
                soft_wrap=True,
            )
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
