"""`bastion alarms`: the gateway's alarm rules outside the gateway.

`bastion alarms export --out DIR` writes the rules (`--rules FILE`, else `alarms.rules_file` of
the configuration when there is one, else the shipped rules) as `DIR/prometheus-rules.yaml` (a
Prometheus alerting rule group) and `DIR/grafana-dashboard.json` (a panel per rule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bastion.alarms import RulesError, export_files, load_rules
from bastion.cli.common import ConfigOption, console, fail, settings_from

app = typer.Typer(no_args_is_help=True, help="Export the alarm rules for Prometheus and Grafana.")


@app.command("export")
def export(
    out: Annotated[
        Path, typer.Option("--out", help="The folder to write the two files into.")
    ] = Path("deploy/observability"),
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules", help="A rules YAML file (default: alarms.rules_file, or the shipped rules)."
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write the alarm rules as a Prometheus rule group and a Grafana dashboard."""
    if rules is None:
        settings = settings_from(config, required=False)
        if settings.alarms.rules_file:
            rules = settings.path(settings.alarms.rules_file)
    try:
        loaded = load_rules(rules)
    except RulesError as exc:
        fail(str(exc))
    try:
        written = export_files(loaded, out)
    except OSError as exc:
        fail(f"cannot write to {out}: {exc.strerror or exc}")
    for path in written:
        console.print(f"wrote {path} ({len(loaded)} rules)")
