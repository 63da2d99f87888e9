"""The pipeline demo (`bastion demo`): the document pipeline end to end on embedded defaults.

In a fresh folder it initialises a project, starts every service as `bastion up` does (four
agents, the gateway and the worker, each its own process on loopback), uploads the bundled
samples through the gateway, and prints what became of each. Then it shows least privilege (an
agent calling outside its grant is refused), a rate-limited burst, one document's path through
the audit trail, and verifies the trail's HMAC chains after shutdown.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from bastion.agents.services import service_supervisor
from bastion.config import Settings, load_settings
from bastion.demos import research
from bastion.pipeline import credential, own_api_key, write_samples
from bastion.project import init_project
from bastion.research.samples import bundled_corpus
from bastion.runtime import AgentClient, RpcCallError, SupervisorEvent
from bastion.security import SecretValue, build_api_key_store, resolve, tail, verify_chain
from bastion.storage import shared_engine
from bastion.testing.pipeline_stack import assign_ports

BURST = 5
DUPLICATE = "invoice_de_duplicate.pdf"
# What each sample must end as: an outcome once archived, or the reason it is refused.
EXPECTED = {
    "invoice_en_line_items.pdf": "valid",
    "invoice_de.pdf": "valid",
    "invoice_fr.pdf": "valid",
    "invoice_en_wrong_total.pdf": "invalid",
    "contract_services.pdf": "valid",
    "report_quarterly.pdf": "valid",
    DUPLICATE: "invalid",
    "not_a_pdf.pdf": "rejected: not_pdf",
}


def _step(console: Console, n: int, title: str) -> None:
    console.print()
    console.rule(f"[bold cyan]{n}. {title}")


def _prepare(workdir: Path) -> Path:
    config = init_project(workdir).config
    assign_ports(config, logging={"level": "WARNING"})
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    doc["rate_limit"]["principals"]["monitoring"] = f"{BURST}/minute"
    doc["research"]["corpus"] = str(bundled_corpus())
    config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return config


class _Gateway:
    def __init__(self, settings: Settings) -> None:
        ref = settings.pipeline.submit_api_key
        assert ref is not None
        self.http = httpx.Client(
            base_url=settings.pipeline.gateway_url,
            headers={"X-API-Key": resolve(ref, settings.base_dir).get()},
            timeout=30,
        )

    def upload(self, path: Path) -> dict[str, Any]:
        with path.open("rb") as fh:
            resp = self.http.post("/api/documents", files={"file": (path.name, fh)})
        body: dict[str, Any] = resp.json()
        body["http_status"] = resp.status_code
        return body

    def wait(self, ids: list[str], timeout: float = 120) -> dict[str, dict[str, Any]]:
        done: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(done) < len(ids) and time.monotonic() < deadline:
            for doc_id in ids:
                if doc_id not in done:
                    doc = self.http.get(f"/api/documents/{doc_id}").json()
                    if doc.get("status") in ("archived", "failed"):
                        done[doc_id] = doc
            time.sleep(0.2)
        return done


def _process_samples(console: Console, gateway: _Gateway, workdir: Path) -> tuple[bool, str]:
    """Upload the samples (the duplicate last, once its original is archived)."""
    paths = write_samples(workdir / "samples")
    rows: list[tuple[Path, dict[str, Any]]] = []
    for wave in (
        [p for p in paths if p.name != DUPLICATE],
        [p for p in paths if p.name == DUPLICATE],
    ):
        uploads = [(p, gateway.upload(p)) for p in wave]
        for p, up in uploads:
            state = up.get("status") or f"rejected ({up['http_status']})"
            console.print(f"  uploaded {p.name:<28} -> {state}")
        finished = gateway.wait([up["id"] for _, up in uploads if "id" in up])
        rows.extend((p, finished.get(up.get("id", ""), up)) for p, up in uploads)
    table = Table("file", "status", "type", "outcome", "invoice no.", "total", "findings")
    ok = True
    first_correlation = ""
    for path, doc in rows:
        fields = {k: (v or {}).get("value") for k, v in (doc.get("fields") or {}).items()}
        error = doc.get("error") or {}
        got = doc.get("outcome") or (
            f"rejected: {error.get('code')}" if error else doc.get("status")
        )
        ok &= got == EXPECTED.get(path.name)
        if path.name == "invoice_en_line_items.pdf":
            first_correlation = str(doc.get("correlation_id") or "")
        colour = {"valid": "green", "invalid": "red", "needs_review": "yellow"}.get(str(got), "red")
        total = fields.get("total")
        table.add_row(
            path.name,
            str(doc.get("status") or "refused at upload"),
            str(doc.get("document_type") or ""),
            f"[{colour}]{got}[/]",
            str(fields.get("invoice_number") or ""),
            f"{total} {fields.get('currency') or ''}" if total is not None else "",
            ", ".join(f["rule_id"] for f in doc.get("findings") or []),
        )
    console.print(table)
    return ok, first_correlation


async def _refused(settings: Settings, key: SecretValue, agent: str, method: str) -> str:
    client = AgentClient(settings.agents[agent].url, api_key=key, settings=settings.client)
    try:
        await client.call(method, {"document_id": "0" * 64})
    except RpcCallError as exc:
        return f"HTTP {exc.http_status}, JSON-RPC error {exc.code}: {exc.message}"
    finally:
        await client.aclose()
    return "unexpectedly allowed"


async def _burst(console: Console, settings: Settings) -> bool:
    key = build_api_key_store(settings).create("monitoring", label="demo")
    client = AgentClient(
        settings.agents["orchestrator"].url,
        api_key=key,
        use_tokens=False,
        settings=settings.client.model_copy(update={"max_retries": 0}),
    )
    table = Table("call", "outcome", "remaining quota", "retry after")
    limited = False
    try:
        for i in range(1, BURST + 2):
            try:
                await client.call("get_status")
                rl = client.last_rate_limit
                table.add_row(str(i), "[green]200 ok", str(rl.remaining if rl else "?"), "")
            except RpcCallError as exc:
                limited = exc.http_status == 429
                retry = f"{exc.retry_after:.0f}s" if exc.retry_after is not None else ""
                table.add_row(str(i), f"[red]{exc.http_status} {exc.message}", "0", retry)
    finally:
        await client.aclose()
    console.print(table)
    return limited


def _path_of(console: Console, settings: Settings, correlation_id: str) -> bool:
    rows = tail(shared_engine(settings.database_url()), limit=50, correlation_id=correlation_id)
    table = Table("agent", "method", "caller", "outcome")
    for r in rows:
        table.add_row(r["agent"], r["method"], r["principal"], r["outcome"])
    console.print(f"  bastion audit tail --correlation {correlation_id}")
    console.print(table)
    return {(r["agent"], r["method"]) for r in rows} >= {
        ("gateway", "upload_document"),
        ("orchestrator", "process_document"),
        ("extractor", "extract"),
        ("validator", "validate"),
        ("archivist", "archive"),
    }


def _verify(console: Console, settings: Settings) -> bool:
    report = verify_chain(
        shared_engine(settings.database_url()),
        resolve(settings.audit.hmac_key, settings.base_dir).get_bytes(),
        settings.path(settings.audit.checkpoint_dir),
    )
    for chain in report.chains:
        mark = "[green]intact" if chain.ok else f"[red]{chain.message}"
        console.print(f"  chain {chain.chain!r}: {chain.records} records, {mark}")
    return report.ok


def run_demo(console: Console | None = None, workdir: Path | None = None) -> bool:
    """Run the demo; True when every step behaved as expected."""
    console = console or Console()
    with ExitStack() as keep:
        if workdir is None:
            workdir = Path(keep.enter_context(tempfile.TemporaryDirectory(prefix="bastion-demo-")))
        return _run_in(console, workdir.resolve())


def _run_in(console: Console, workdir: Path) -> bool:
    console.print(
        Panel.fit(
            "[bold]Bastion demo[/]: PDFs through gateway -> queue -> orchestrator -> extractor\n"
            "-> validator -> archivist, then a research question through research ->\n"
            "researchers -> critic; every hop authenticated, authorized, rate limited and\n"
            "audited."
        )
    )
    _step(console, 1, "Initialise a project and start every service on loopback")
    config = _prepare(workdir)
    settings = load_settings(config)

    def show(event: SupervisorEvent) -> None:
        if event.kind in ("ready", "exited", "restarting", "failed"):
            console.print(f"  {event.child:<12} {event.kind}: {event.message}")

    supervisor = service_supervisor(config, settings, log_dir=workdir / "logs", on_event=show)
    with supervisor:
        console.print(f"  gateway: {settings.pipeline.gateway_url}   workdir: {workdir}")
        _step(console, 2, "Upload the bundled samples and wait for the results")
        gateway = _Gateway(settings)
        ok, correlation = _process_samples(console, gateway, workdir)

        _step(console, 3, "Least privilege: agents calling outside their grant are refused")
        worker_key = credential(
            settings, "pipeline.worker_api_key", settings.pipeline.worker_api_key, "worker"
        )
        for caller, key, agent, method in (
            ("extractor", own_api_key(settings, "extractor"), "archivist", "archive"),
            ("worker", worker_key, "extractor", "extract"),
        ):
            answer = asyncio.run(_refused(settings, key, agent, method))
            console.print(f"  {caller} -> {agent}.{method}: {answer}")
            ok &= "HTTP 403" in answer

        _step(console, 4, f"Rate limited: the monitoring principal may call {BURST} times a minute")
        ok &= asyncio.run(_burst(console, settings))

        _step(console, 5, "Deep research: a two-hop question over the bundled corpus")
        ok &= research.ask(console, config)
    # The services are stopped here: their audit buffers are flushed.
    _step(console, 6, "One document's whole path, from the audit trail")
    ok &= _path_of(console, settings, correlation)
    _step(console, 7, "Audit trail verified: every agent's HMAC chain")
    ok &= _verify(console, settings)
    console.print()
    console.print(
        "[bold green]Demo complete.[/]"
        if ok
        else "[bold red]Demo finished with unexpected results.[/]"
    )
    return ok
