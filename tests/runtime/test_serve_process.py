"""`bastion serve` as a real process, on a project made by `bastion init`.

Covers plain HTTP and TLS/mTLS, the bind rules (plain HTTP and the conformance profile only on
loopback), readiness with and without Redis, environment overrides, API keys managed from the
command line against a live agent, and graceful shutdown: a real SIGTERM (exit status 0, every
audit record flushed) and an in-process uvicorn server whose in-flight call must finish.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.agents.echo import echo_definition
from bastion.config import ServerSettings, load_settings
from bastion.core.context import CallContext
from bastion.runtime.agent import AgentApp
from bastion.runtime.client import AgentClient, client_ssl_context
from bastion.runtime.serve import uvicorn_config
from bastion.storage.database import shared_engine
from bastion.storage.models import AuditRecord

BASTION = [sys.executable, "-m", "bastion"]
START_TIMEOUT = 60.0  # a hang guard: the cores are shared with other tests' processes
STOP_TIMEOUT = 30.0
COMMAND_TIMEOUT = 60.0
KEY_RE = re.compile(r"bst_[a-z0-9]{12}_[0-9a-f]{64}")
RUNNING_RE = re.compile(r"Uvicorn running on (https?)://(\S+):(\d+)")


# -- helpers --------------------------------------------------------------------------------


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: no inherited BASTION_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["COLUMNS"] = "200"
    env.update(extra or {})
    return env


def bastion(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BASTION, *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        env=child_env(env),
        cwd=cwd,
        check=False,
    )


def http() -> httpx.Client:
    return httpx.Client(timeout=10, trust_env=False)


def rpc_body(method: str, params: Any = None, rid: int = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": rid}
    if params is not None:
        body["params"] = params
    return body


def headers(key: str | None = None, correlation_id: str | None = None) -> dict[str, str]:
    h: dict[str, str] = {}
    if key is not None:
        h["X-API-Key"] = key
    if correlation_id is not None:
        h["X-Correlation-ID"] = correlation_id
    return h


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out.get(k) or {}, v) if isinstance(v, Mapping) else v
    return out


@dataclass
class Project:
    dir: Path
    config: Path
    admin_key: str

    def update_config(self, extra: Mapping[str, Any]) -> None:
        doc = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        self.config.write_text(yaml.safe_dump(deep_merge(doc, extra)), encoding="utf-8")

    def allow(self, principal: str, methods: list[str]) -> None:
        path = self.dir / "policy.json"
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["allow"][principal] = methods
        path.write_text(json.dumps(doc), encoding="utf-8")

    def audit_records(self, correlation_prefix: str) -> list[AuditRecord]:
        engine = shared_engine(load_settings(self.config).database_url())
        with Session(engine) as s:
            stmt = (
                select(AuditRecord)
                .where(AuditRecord.correlation_id.startswith(correlation_prefix))
                .order_by(AuditRecord.seq)
            )
            return list(s.scalars(stmt))


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGTERM, then the exit status (negative: killed by that signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(STOP_TIMEOUT)


def _wait_started(proc: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        m = RUNNING_RE.search(text)
        if m:
            host = m.group(2).strip("[]")
            host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            return f"{m.group(1)}://{host}:{m.group(3)}"
        if proc.poll() is not None:
            raise AssertionError(f"bastion serve exited with {proc.returncode}:\n{text}")
        if time.monotonic() > deadline:
            raise AssertionError(f"bastion serve did not start in {START_TIMEOUT}s:\n{text}")
        time.sleep(0.05)


@contextmanager
def serve(project: Project, *args: str, env: Mapping[str, str] | None = None) -> Iterator[Served]:
    """`bastion serve echo --config F --port 0 ARGS` until the block exits."""
    log_path = project.dir / f"serve-{uuid.uuid4().hex[:8]}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*BASTION, "serve", "echo", "--config", str(project.config), "--port", "0", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(env),
            cwd=project.dir,
        )
    try:
        yield Served(proc, _wait_started(proc, log_path), log_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)


def refused(project: Project, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run `bastion serve` expecting a refusal; its one-line reason."""
    res = bastion("serve", "echo", "--config", str(project.config), "--port", "0", *args, env=env)
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Uvicorn running" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, res.stderr
    return lines[0]


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One `bastion init` per module; tests work on copies of it."""
    directory = tmp_path_factory.mktemp("template") / "proj"
    res = bastion("init", "--dir", str(directory))
    assert res.returncode == 0, res.stderr
    keys = KEY_RE.findall(res.stdout)
    assert len(keys) == 1, res.stdout
    return Project(directory, directory / "bastion.yaml", keys[0])


def copy_project(template: Project, target: Path) -> Project:
    shutil.copytree(template.dir, target)
    return Project(target, target / "bastion.yaml", template.admin_key)


@pytest.fixture
def project(template: Project, tmp_path: Path) -> Project:
    return copy_project(template, tmp_path / "proj")


@pytest.fixture(scope="module")
def shared(
    template: Project, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Project, Served]]:
    """One agent shared by the tests that need nothing special (key cache off)."""
    proj = copy_project(template, tmp_path_factory.mktemp("shared") / "proj")
    with serve(proj, env={"BASTION_AUTH__API_KEY_CACHE_SECONDS": "0"}) as served:
        yield proj, served


@dataclass
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


@pytest.fixture
def certs(project: Project) -> Certs:
    """A CA, a server certificate for 127.0.0.1 and client certificates (one from another CA),
    all inside the project folder."""
    d = project.dir / "tls"
    d.mkdir()
    ca = trustme.CA()
    other_ca = trustme.CA()
    files = Certs(
        ca=d / "ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
        client_cert=d / "client.pem",
        client_key=d / "client.key",
        stranger_cert=d / "stranger.pem",
        stranger_key=d / "stranger.key",
    )
    ca.cert_pem.write_to_path(str(files.ca))
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(files.server_cert))
    server.private_key_pem.write_to_path(str(files.server_key))
    client = ca.issue_cert("caller.bastion.test")
    client.cert_chain_pems[0].write_to_path(str(files.client_cert))
    client.private_key_pem.write_to_path(str(files.client_key))
    stranger = other_ca.issue_cert("stranger.bastion.test")
    stranger.cert_chain_pems[0].write_to_path(str(files.stranger_cert))
    stranger.private_key_pem.write_to_path(str(files.stranger_key))
    return files


# -- serving --------------------------------------------------------------------------------


def test_serves_health_readiness_and_authenticated_echo(shared: tuple[Project, Served]) -> None:
    proj, served = shared
    with http() as c:
        health = c.get(served.url + "/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "alive", "agent": "echo"}
        ready = c.get(served.url + "/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok"}
        ok = c.post(
            served.url + "/message",
            json=rpc_body("echo", {"message": "hello"}),
            headers=headers(proj.admin_key),
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["result"]["message"] == "hello"
        anonymous = c.post(served.url + "/message", json=rpc_body("echo", {"message": "hello"}))
        assert anonymous.status_code == 401


def test_keys_managed_from_the_cli_apply_to_a_live_agent(shared: tuple[Project, Served]) -> None:
    proj, served = shared
    cfg = str(proj.config)
    created = bastion("keys", "create", "admin", "--config", cfg, "--label", "live")
    assert created.returncode == 0, created.stderr
    old = created.stdout.strip()
    assert KEY_RE.fullmatch(old)
    key_id = old.split("_")[1]

    def status(key: str) -> int:
        with http() as c:
            body = rpc_body("echo", {"message": "k"})
            return c.post(served.url + "/message", json=body, headers=headers(key)).status_code

    assert status(old) == 200
    rotated = bastion("keys", "rotate", key_id, "--grace", "0s", "--config", cfg)
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert KEY_RE.fullmatch(new) and new != old
    assert status(old) == 401
    assert status(new) == 200

    revoked = bastion("keys", "revoke", new.split("_")[1], "--config", cfg)
    assert revoked.returncode == 0, revoked.stderr
    assert status(new) == 401


def test_plain_http_off_loopback_is_refused(project: Project) -> None:
    reason = refused(project, "--host", "0.0.0.0")
    assert "plain HTTP" in reason
    assert "server.tls" in reason
    assert "127.0.0.1" in reason
    assert "allow_insecure_http" in reason


def test_allow_insecure_http_permits_binding_all_interfaces(project: Project) -> None:
    env = {"BASTION_SERVER__ALLOW_INSECURE_HTTP": "true"}
    with serve(project, "--host", "0.0.0.0", env=env) as served, http() as c:
        assert "http://0.0.0.0:" in served.log()
        assert c.get(served.url + "/healthz").status_code == 200


def test_tck_profile_refuses_non_loopback_even_with_insecure_http(project: Project) -> None:
    env = {"BASTION_SERVER__ALLOW_INSECURE_HTTP": "true"}
    reason = refused(project, "--tck", "--host", "0.0.0.0", env=env)
    assert "loopback" in reason


def test_tck_profile_on_loopback_acts_as_principal_tck(project: Project) -> None:
    project.allow("tck", ["echo"])
    cid = f"tck-profile-{uuid.uuid4().hex[:12]}"
    with serve(project, "--tck") as served, http() as c:
        assert "--tck disables authentication" in served.log()
        resp = c.post(
            served.url + "/message",
            json=rpc_body("echo", {"message": "conformance"}),
            headers=headers(correlation_id=cid),
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["result"]["message"] == "conformance"
        assert served.stop() == 0
    tail = bastion("audit", "tail", "--json", "--config", str(project.config), "--correlation", cid)
    assert tail.returncode == 0, tail.stderr
    rows = json.loads(tail.stdout)
    assert [(r["principal"], r["auth_method"], r["method"], r["status"]) for r in rows] == [
        ("tck", "none", "echo", 200)
    ]


# -- TLS ------------------------------------------------------------------------------------


def _tls_config(*, mtls: bool) -> dict[str, Any]:
    """TLS settings with paths relative to the config file's folder."""
    tls = {"certfile": "tls/server.pem", "keyfile": "tls/server.key"}
    if mtls:
        tls["client_ca_file"] = "tls/ca.pem"
    return {"server": {"tls": tls}}


def test_tls_serves_https_only(project: Project, certs: Certs) -> None:
    project.update_config(_tls_config(mtls=False))
    with serve(project) as served:
        assert served.url.startswith("https://")
        trusting = client_ssl_context(ca_file=certs.ca)
        with httpx.Client(verify=trusting, timeout=10, trust_env=False) as c:
            assert c.get(served.url + "/healthz").status_code == 200
            resp = c.post(
                served.url + "/message",
                json=rpc_body("echo", {"message": "over tls"}),
                headers=headers(project.admin_key),
            )
            assert resp.status_code == 200, resp.text
            assert resp.json()["result"]["message"] == "over tls"
        plain = served.url.replace("https://", "http://")
        with http() as c, pytest.raises(httpx.TransportError):
            c.get(plain + "/healthz")
        untrusting = client_ssl_context()  # system CAs: the test CA is unknown to them
        with (
            httpx.Client(verify=untrusting, timeout=10, trust_env=False) as c,
            pytest.raises(httpx.ConnectError),
        ):
            c.get(served.url + "/healthz")


async def test_mtls_requires_a_client_certificate_from_the_ca(
    project: Project, certs: Certs
) -> None:
    project.update_config(_tls_config(mtls=True))
    with serve(project) as served:
        no_cert = client_ssl_context(ca_file=certs.ca)
        with (
            httpx.Client(verify=no_cert, timeout=10, trust_env=False) as c,
            pytest.raises(httpx.TransportError),
        ):
            c.get(served.url + "/healthz")
        stranger = client_ssl_context(
            ca_file=certs.ca, certfile=certs.stranger_cert, keyfile=certs.stranger_key
        )
        with (
            httpx.Client(verify=stranger, timeout=10, trust_env=False) as c,
            pytest.raises(httpx.TransportError),
        ):
            c.get(served.url + "/healthz")

        ctx = client_ssl_context(
            ca_file=certs.ca, certfile=certs.client_cert, keyfile=certs.client_key
        )
        async with AgentClient(served.url, api_key=project.admin_key, ssl_context=ctx) as client:
            result = await client.call("echo", {"message": "mutual"})
            assert result["message"] == "mutual"
            # The key was exchanged for a token at /oauth/token, over mTLS as well.
            assert client.auth_mode == "bearer"


# -- readiness and environment overrides ---------------------------------------------------


def test_readyz_fails_when_redis_is_down_but_healthz_stays_up(project: Project) -> None:
    env = {
        "BASTION_RATE_LIMIT__BACKEND": "redis",
        "BASTION_RATE_LIMIT__REDIS_URL": "redis://127.0.0.1:1/0",
    }
    with serve(project, env=env) as served, http() as c:
        ready = c.get(served.url + "/readyz")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["redis"].startswith("unavailable")
        assert c.get(served.url + "/healthz").status_code == 200


@pytest.mark.redis
def test_readyz_checks_the_real_redis(project: Project, redis_url: str) -> None:
    env = {"BASTION_RATE_LIMIT__BACKEND": "redis", "BASTION_RATE_LIMIT__REDIS_URL": redis_url}
    with serve(project, env=env) as served, http() as c:
        ready = c.get(served.url + "/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        resp = c.post(
            served.url + "/message",
            json=rpc_body("echo", {"message": "limited by redis"}),
            headers=headers(project.admin_key),
        )
        assert resp.status_code == 200, resp.text


def test_environment_overrides_the_rate_limit(project: Project) -> None:
    env = {"BASTION_RATE_LIMIT__DEFAULT": "2/minute"}
    with serve(project, env=env) as served, http() as c:
        statuses = []
        for _ in range(3):
            resp = c.post(
                served.url + "/message",
                json=rpc_body("echo", {"message": "again"}),
                headers=headers(project.admin_key),
            )
            statuses.append(resp.status_code)
        assert statuses == [200, 200, 429]
        assert int(resp.headers["retry-after"]) > 0


# -- graceful shutdown ----------------------------------------------------------------------


def test_sigterm_flushes_the_audit_trail_and_exits_zero(project: Project) -> None:
    # With a one-hour flush interval, nothing reaches the database before shutdown does it.
    env = {"BASTION_AUDIT__FLUSH_INTERVAL_SECONDS": "3600"}
    prefix = f"sigterm-{uuid.uuid4().hex[:8]}"
    calls = 20
    with serve(project, env=env) as served:
        with http() as c:
            for i in range(calls):
                resp = c.post(
                    served.url + "/message",
                    json=rpc_body("echo", {"message": f"m{i}"}, rid=i),
                    headers=headers(project.admin_key, f"{prefix}-{i:04d}"),
                )
                assert resp.status_code == 200
            denied = c.post(
                served.url + "/message",
                json=rpc_body("echo", {"message": "no key"}),
                headers=headers(correlation_id=f"{prefix}-anon"),
            )
            assert denied.status_code == 401
        assert served.stop() == 0, served.log()
        log = served.log()
    assert "Application shutdown complete" in log
    records = project.audit_records(prefix)
    assert len(records) == calls + 1
    assert sorted(r.correlation_id for r in records if r.outcome == "ok") == [
        f"{prefix}-{i:04d}" for i in range(calls)
    ]
    assert [r.outcome for r in records if r.correlation_id == f"{prefix}-anon"] == [
        "denied:authenticate"
    ]
    verify = bastion("audit", "verify", "--config", str(project.config))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit trail intact" in verify.stdout


def test_sub_second_shutdown_timeout_still_lets_requests_finish() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    cfg = uvicorn_config(
        app,
        ServerSettings(shutdown_timeout_seconds=0.5),
        host="127.0.0.1",
        port=0,
        resolve_path=Path,
    )
    assert cfg.timeout_graceful_shutdown is not None
    assert cfg.timeout_graceful_shutdown >= 0.5


def test_served_apps_trust_no_forwarding_header_and_take_small_websocket_messages() -> None:
    """The client address is the socket's (the WAF alone decides when X-Forwarded-For
    counts), and a WebSocket message is refused before it is buffered past 64 KiB."""

    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    cfg = uvicorn_config(app, ServerSettings(), host="127.0.0.1", port=0, resolve_path=Path)
    assert cfg.proxy_headers is False
    assert cfg.ws_max_size == 64 * 1024


def test_in_flight_call_finishes_and_is_audited_when_the_server_stops(project: Project) -> None:
    settings = load_settings(project.config)
    settings.audit.flush_interval_seconds = 3600  # only the shutdown flush writes records
    settings.server.shutdown_timeout_seconds = 20
    app = AgentApp(echo_definition(), settings)
    started = threading.Event()
    holder: dict[str, uvicorn.Server] = {}

    def shutting_down() -> bool:
        """uvicorn was told to stop and has closed its listening sockets."""
        srv = holder["server"]
        return srv.should_exit and not any(s.is_serving() for s in srv.servers)

    async def slow(ctx: CallContext) -> dict[str, bool]:
        """Runs until the server is shutting down, then a while longer: past uvicorn's own
        short pause before it starts waiting for (or cancelling) in-flight requests."""
        started.set()
        deadline = time.monotonic() + 20
        while not shutting_down() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        return {"finished_after_stop": shutting_down()}

    app.definition.registry.add("slow", slow)
    cfg = uvicorn_config(app, settings.server, host="127.0.0.1", port=0, resolve_path=settings.path)
    assert cfg.timeout_graceful_shutdown == 20
    server = uvicorn.Server(cfg)
    holder["server"] = server
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            assert thread.is_alive(), "the server thread died during start-up"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        cid = f"inflight-{uuid.uuid4().hex[:8]}"
        with ThreadPoolExecutor(1) as pool, http() as c:
            future = pool.submit(
                c.post,
                url + "/message",
                json=rpc_body("slow"),
                headers=headers(project.admin_key, cid),
                timeout=30,
            )
            assert started.wait(10), "the slow call never started"
            server.should_exit = True  # what uvicorn's SIGTERM handler does
            resp = future.result(timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["result"]["finished_after_stop"] is True
        thread.join(STOP_TIMEOUT)
        assert not thread.is_alive(), "the server did not stop"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
        sock.close()
    records = project.audit_records(cid)
    assert [(r.method, r.outcome, r.status) for r in records] == [("slow", "ok", 200)]
