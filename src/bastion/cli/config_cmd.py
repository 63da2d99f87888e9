"""`bastion config check`: load the configuration and resolve every secret reference in it.

One line per reference: the config key, the reference and OK or the problem. Values are never
printed. The Vault token reference is checked when some reference reads from Vault. A literal
in a field that holds a credential is reported (its value is not shown). The RBAC policy and
the guardrail policy files given with `--guardrail-policy` are loaded, problems reported as
`FILE:LINE: problem`. Secret and data files other users may open are warned about on stderr, and
so are the grants of the shipped policy that the project's policy lacks for a service principal
(a project initialised before a grant was added: the pipeline then refuses that call).
Exit status 1 when the configuration does not load or anything is missing, unreadable or
invalid; warnings leave the exit status and the `--json` output alone.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bastion.cli.common import ConfigOption, JsonOption, console, settings_from, warn
from bastion.config import Settings
from bastion.config_files import exposed_file_warnings, policy_checks
from bastion.project import DEFAULT_POLICY, SERVICE_PRINCIPALS
from bastion.security import Check, PolicyError, check_references, load_policy

app = typer.Typer(no_args_is_help=True, help="Check the configuration.")


def missing_service_grants(settings: Settings) -> list[str]:
    """One line per service principal whose policy lacks grants the shipped policy gives it
    (nothing when the policy does not load: its check reports that)."""
    try:
        policy = load_policy(settings.path(settings.policy.file))
    except PolicyError:
        return []
    lines = []
    for principal in SERVICE_PRINCIPALS:
        wanted = DEFAULT_POLICY["allow"].get(principal, [])
        lacking = [
            grant for grant in wanted if not policy.decide(principal, *grant.split(".", 1))[0]
        ]
        if lacking:
            lines.append(
                f"policy.file does not grant {principal} {', '.join(lacking)}, which the "
                f"pipeline calls: add them to {settings.policy.file} (or run "
                "`bastion init --force` to write the shipped policy)"
            )
    return lines


@app.command("check")
def check(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    guardrail_policies: Annotated[
        list[Path] | None,
        typer.Option(
            "--guardrail-policy", help="A guardrail policy YAML file to validate (repeatable)."
        ),
    ] = None,
) -> None:
    """Validate the configuration and its policy files, resolve every secret reference (values
    never shown) and warn about secret or data files that other users may open."""
    settings = settings_from(config)
    checks = check_references(settings)
    for warning in exposed_file_warnings(settings, [c.reference for c in checks]):
        warn(warning)
    ignored = settings.rate_limit.ignored_redis_url()
    if ignored:
        warn(ignored)
    for missing in missing_service_grants(settings):
        warn(missing)
    checks += [
        Check(f.key, str(f.path), f.problem is None, f.problem)
        for f in policy_checks(settings, guardrail_policies or [])
    ]
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
