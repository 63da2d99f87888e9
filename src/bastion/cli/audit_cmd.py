"""`bastion audit`: verify the audit trail's hash chains and read recent records."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated, Any

import orjson
import typer
from sqlalchemy.exc import SQLAlchemyError

from bastion.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    db_error,
    fail,
    open_engine,
    print_rows,
    resolve_prefix,
    settings_from,
    usage_error,
)
from bastion.config import Settings
from bastion.security import (
    SecretError,
    VerifyReport,
    chain_names,
    correlation_ids,
    resolve,
    verify_chain,
)
from bastion.security import tail as audit_tail

app = typer.Typer(no_args_is_help=True, help="Verify and read the audit trail.")

TAIL_COLUMNS = (
    "time",
    "chain",
    "seq",
    "principal",
    "auth_method",
    "agent",
    "method",
    "outcome",
    "status",
    "latency_ms",
    "client",
    "correlation_id",
)


def _key(settings: Settings) -> bytes:
    try:
        key = resolve(settings.audit.hmac_key, settings.base_dir).get_bytes()
    except SecretError as exc:
        fail(f"audit.hmac_key: {exc}")
    if not key:
        fail("audit.hmac_key: the key is empty")
    return key


def _print_report(report: VerifyReport) -> None:
    if not report.chains:
        console.print("no audit records or checkpoints found", highlight=False)
        return
    rows = [
        {
            "chain": c.chain,
            "records": c.records_checked,
            "head seq": c.head_seq,
            "checkpoints": c.checkpoints_checked,
            "last checkpoint": c.last_checkpoint_seq,
            "status": "ok" if c.ok else "TAMPERED",
            "first bad seq": c.first_bad_seq,
        }
        for c in report.chains
    ]
    print_rows(rows, list(rows[0]), as_json=False, title="audit chains")
    for c in report.chains:
        for warning in c.warnings:
            console.print(f"chain {c.chain}: warning: {warning}", markup=False, highlight=False)
        if c.ok:
            continue
        console.print(
            f"chain {c.chain}: {c.problems_total} problem(s), first bad seq {c.first_bad_seq}",
            markup=False,
            highlight=False,
        )
        for p in c.problems:
            where = "" if p.seq is None else f" seq {p.seq}"
            console.print(f"  - {p.kind}{where}: {p.message}", markup=False, highlight=False)
        hidden = c.problems_total - len(c.problems)
        if hidden > 0:
            console.print(f"  ... and {hidden} more", markup=False, highlight=False)
    if report.ok:
        names = ", ".join(c.chain for c in report.chains)
        count = len(report.chains)
        console.print(
            f"audit trail intact: {count} chain{'s' if count != 1 else ''} verified ({names})",
            markup=False,
            highlight=False,
        )
    else:
        bad = ", ".join(c.chain for c in report.chains if not c.ok)
        console.print(f"audit trail NOT intact: {bad}", markup=False, highlight=False)


def _known_chain(chain: str, names: list[str]) -> None:
    if chain not in names:
        known = ", ".join(names) if names else "none yet"
        usage_error(f"no such chain: {chain!r} (chains with records or checkpoints: {known})")


@app.command()
def verify(
    config: ConfigOption = None,
    chain: Annotated[
        str | None,
        typer.Option("--chain", help="Verify only this chain (default: every chain found)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check every hash chain and checkpoint; exit 1 when the trail was tampered with."""
    settings = settings_from(config)
    key = _key(settings)
    engine = open_engine(settings)
    checkpoint_dir = settings.path(settings.audit.checkpoint_dir)
    try:
        if chain is not None:
            _known_chain(chain, chain_names(engine, checkpoint_dir))
        report = verify_chain(engine, key, checkpoint_dir, chain)
    except SQLAlchemyError as exc:
        fail(f"cannot read the audit trail: {db_error(exc)}")
    except OSError as exc:
        fail(f"cannot read the checkpoints in {checkpoint_dir}: {exc.strerror}")
    if as_json:
        sys.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def tail(
    config: ConfigOption = None,
    correlation: Annotated[
        str | None,
        typer.Option(
            "--correlation",
            help="Only this correlation ID (or a unique prefix of it), oldest first.",
        ),
    ] = None,
    principal: Annotated[
        str | None, typer.Option("--principal", help="Only records of this principal.")
    ] = None,
    chain: Annotated[str | None, typer.Option("--chain", help="Only this chain.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10000, help="How many records.")
    ] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show recent audit records, newest first (oldest first with --correlation)."""
    settings = settings_from(config)
    engine = open_engine(settings)
    try:
        if correlation is not None:
            correlation = resolve_prefix(
                correlation,
                correlation_ids(engine, correlation),
                "correlation id",
                "bastion audit tail",
            )
        rows: list[dict[str, Any]] = audit_tail(
            engine, limit=limit, correlation_id=correlation, principal=principal, chain=chain
        )
    except SQLAlchemyError as exc:
        fail(f"cannot read the audit trail: {db_error(exc)}")
    for row in rows:
        row["time"] = dt.datetime.fromtimestamp(float(row["ts"]), dt.UTC).isoformat(
            timespec="milliseconds"
        )
    print_rows(rows, TAIL_COLUMNS, as_json=as_json, title="audit records")
