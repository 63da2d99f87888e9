"""The runtime demo: two agents on loopback calling each other through the full security stack.

Shows, in order: an allowed call that crosses two agents under one correlation ID, a rejected
bad key, a forbidden method, a rate-limited burst with the quota counting down, and the audit
trail verified end to end.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from bastion.agents.echo import echo_definition
from bastion.agents.relay import relay_definition
from bastion.config import AgentEndpoint, Settings, load_settings
from bastion.project import init_project
from bastion.runtime.agent import AgentApp
from bastion.runtime.client import AgentClient, RpcCallError
from bastion.runtime.context import correlation_id_var, new_correlation_id
from bastion.security.audit_verify import tail, verify_chain
from bastion.security.secrets import resolve, write_secret_file
from bastion.security.stack import build_api_key_store
from bastion.storage.database import shared_engine
from bastion.testing import serve_in_thread

DEMO_POLICY = {
    "allow": {
        "admin": ["*"],
        "relay": ["echo.echo"],
        "demo-user": ["relay.relay", "relay.get_status"],
        "monitoring": ["get_status"],
    },
    "deny": {},
    "roles": {},
}
BURST = 5


def _prepare(workdir: Path) -> tuple[Settings, dict[str, str]]:
    res = init_project(workdir)
    (workdir / "policy.json").write_text(json.dumps(DEMO_POLICY, indent=2))
    settings = load_settings(res.config)
    settings.rate_limit.principals["demo-user"] = f"{BURST}/minute"
    keys = build_api_key_store(settings)
    relay_key = keys.create("relay", label="relay agent")
    write_secret_file(workdir / "secrets" / "relay.key", relay_key)
    user_key = keys.create("demo-user", label="demo caller")
    return settings, {"admin": res.admin_key, "demo-user": user_key}


def _step(console: Console, n: int, title: str) -> None:
    console.print()
    console.rule(f"[bold cyan]{n}. {title}")


async def _expect_refusal(
    console: Console, settings: Settings, url: str, key: str, method: str, status: int
) -> bool:
    """Call `method` and show the refusal; True when it was refused with `status`."""
    client = AgentClient(url, api_key=key, use_tokens=False, settings=settings.client)
    try:
        await client.call(method, {"message": "let me in"})
    except RpcCallError as exc:
        console.print(f"  HTTP {exc.http_status}, JSON-RPC error {exc.code}: {exc.message}")
        return exc.http_status == status
    finally:
        await client.aclose()
    console.print("  [red]unexpectedly allowed[/]")
    return False


async def _scenario(
    console: Console, settings: Settings, urls: dict[str, str], keys: dict[str, str]
) -> bool:
    ok = True
    user = AgentClient(
        urls["relay"], api_key=keys["demo-user"], use_tokens=False, settings=settings.client
    )
    try:
        _step(console, 1, "Allowed: demo-user -> relay -> echo (the relay calls as itself)")
        cid = new_correlation_id()
        token = correlation_id_var.set(cid)
        try:
            result = await user.call("relay", {"message": "hello, zero trust"})
        finally:
            correlation_id_var.reset(token)
        console.print(f"  result: [green]{result['message']!r}[/] via {result['via']}")
        console.print(f"  correlation id: [bold]{cid}[/] (one ID across both hops)")

        _step(console, 2, "Rejected: a made-up API key")
        forged = "bst_aaaaaaaaaaaa_" + "0" * 64
        ok &= await _expect_refusal(console, settings, urls["relay"], forged, "relay", 401)

        _step(console, 3, "Forbidden: demo-user calls the echo agent directly (no grant)")
        ok &= await _expect_refusal(console, settings, urls["echo"], keys["demo-user"], "echo", 403)

        _step(
            console, 4, f"Rate limited: demo-user may make {BURST} calls a minute (step 1 used one)"
        )
        table = Table("call", "outcome", "remaining quota", "retry after")
        burst = AgentClient(
            urls["relay"],
            api_key=keys["demo-user"],
            use_tokens=False,
            settings=settings.client.model_copy(update={"max_retries": 0}),
        )
        limited = False
        try:
            for i in range(1, BURST + 2):
                try:
                    await burst.call("get_status")
                    rl = burst.last_rate_limit
                    table.add_row(str(i), "[green]200 ok", str(rl.remaining if rl else "?"), "")
                except RpcCallError as exc:
                    limited = exc.http_status == 429
                    table.add_row(
                        str(i),
                        f"[red]{exc.http_status} {exc.message}",
                        "0",
                        f"{exc.retry_after:.0f}s",
                    )
        finally:
            await burst.aclose()
        console.print(table)
        ok &= limited
    finally:
        await user.aclose()
    return ok


def _audit_report(console: Console, settings: Settings) -> bool:
    _step(console, 5, "Audit trail: every call recorded, HMAC chain verified")
    engine = shared_engine(settings.database_url())
    rows = sorted(tail(engine, limit=12), key=lambda r: r["ts"])
    table = Table("agent", "caller", "auth", "method", "outcome", "HTTP", "correlation")
    for r in rows:
        table.add_row(
            r["agent"],
            r["principal"],
            r["auth_method"],
            r["method"],
            r["outcome"].replace("denied:", "denied "),
            str(r["status"]),
            "…" + r["correlation_id"][-8:],
        )
    console.print(table)
    report = verify_chain(
        engine,
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
        return _run_in(console, workdir)


def _run_in(console: Console, workdir: Path) -> bool:
    with ExitStack() as stack:
        console.print(
            Panel.fit(
                "[bold]Bastion runtime demo[/]: two agents on loopback, every call authenticated,\n"
                "authorized, rate limited and audited.",
            )
        )
        settings, keys = _prepare(workdir)
        echo = stack.enter_context(serve_in_thread(AgentApp(echo_definition(), settings)))
        settings.agents["echo"] = AgentEndpoint(url=echo.url)
        settings.agents["relay"] = AgentEndpoint(
            url="http://127.0.0.1", api_key="secret://file/secrets/relay.key"
        )
        relay = stack.enter_context(serve_in_thread(AgentApp(relay_definition(settings), settings)))
        urls = {"echo": echo.url, "relay": relay.url}
        console.print(
            f"  echo agent:  {echo.url}\n  relay agent: {relay.url}\n  workdir:     {workdir}"
        )
        ok = asyncio.run(_scenario(console, settings, urls, keys))
        stack.close()  # stops both agents: their audit buffers are flushed on shutdown
    ok = _audit_report(console, settings) and ok
    console.print()
    console.print(
        "[bold green]Demo complete.[/]"
        if ok
        else "[bold red]Demo finished with unexpected results.[/]"
    )
    return ok
