"""Mounts every command group on the root app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from bastion.cli import (
        alarms_cmd,
        audit_cmd,
        config_cmd,
        demo_cmd,
        dlq_cmd,
        extract_cmd,
        guard_cmd,
        init_cmd,
        keys_cmd,
        research_cmd,
        serve_cmd,
        status_cmd,
        submit_cmd,
        tokens_cmd,
        up_cmd,
        waf_cmd,
    )

    app.command("init")(init_cmd.init)
    app.command("serve")(serve_cmd.serve)
    app.command("up")(up_cmd.up)
    app.command("submit")(submit_cmd.submit)
    app.command("research")(research_cmd.research)
    app.command("status")(status_cmd.status)
    app.command("demo")(demo_cmd.demo)
    app.command("extract")(extract_cmd.extract)
    app.add_typer(keys_cmd.app, name="keys", help="Create, list, revoke and rotate API keys.")
    app.add_typer(tokens_cmd.app, name="tokens", help="Revoke bearer tokens.")
    app.add_typer(audit_cmd.app, name="audit", help="Verify and read the audit trail.")
    app.add_typer(dlq_cmd.app, name="dlq", help="Inspect and redrive the dead-letter queue.")
    app.add_typer(guard_cmd.app, name="guard", help="Scan text with the guardrails.")
    app.add_typer(waf_cmd.app, name="waf", help="Try the edge WAF's rules on recorded requests.")
    app.add_typer(config_cmd.app, name="config", help="Check the configuration.")
    app.add_typer(
        alarms_cmd.app, name="alarms", help="Export the alarm rules for Prometheus and Grafana."
    )
