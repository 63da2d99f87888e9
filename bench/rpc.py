"""RPC benchmark: what the Bastion runtime and its security stack cost per call.

    .venv/bin/python bench/rpc.py [--duration 8] [--connections 16] [--only a,c] [--json FILE]

Variants, each served by its own uvicorn process (uvloop + httptools, one worker, 127.0.0.1,
free port) and loaded from a separate process over loopback:

    (a) bare Starlette JSON-RPC echo, one route POST /message, orjson in and out (baseline)
    (b) Bastion echo agent, security off
    (c) Bastion echo agent, full stack: API key, RBAC, rate limit (quota out of reach), audit
    (d) as (c), authenticated with a JWT from the agent's own POST /oauth/token
    (e) a2a-sdk SendMessage echo (AgentExecutor + DefaultRequestHandler + SDK JSON-RPC routes)
    (f) as (c), tracing off (`observability.tracing_enabled: false`): (c) and (f) measure what
        tracing costs, in the same run (a span per call and per security stage, buffered)

Load: `wrk` when installed (one thread, N keep-alive connections, a Lua script that checks
every response body), otherwise the asyncio generator in `_load.py`. Each variant is started,
checked with one real request, warmed up, measured, then stopped; the variants run back to
back, `--repeats` rounds, and the round with the most req/s is kept. Any non-2xx answer or
unexpected body fails the run: the numbers would be meaningless.

Targets: (c) >= 50% of (a) req/s, (c) >= 10x (e) req/s, and tracing costs < 5%: (c) >= 95%
of (f) req/s, and the CPU tracing adds per call (measured in one process without sockets by
`_tracing_cost.py`, fastest of alternating rounds, after the variants when c and f both run)
< 5% of (f)'s server CPU per call. On a busy machine req/s moves by more than 5% from round to
round; the in-process measurement is the steadier one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
SERVER_SCRIPT = BENCH_DIR / "_server.py"
TRACING_COST_SCRIPT = BENCH_DIR / "_tracing_cost.py"
LOAD_SCRIPT = BENCH_DIR / "_load.py"

ECHO_BODY = {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"message": "hello"}}
A2A_BODY = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "SendMessage",
    "params": {
        "message": {"messageId": "bench-1", "role": "ROLE_USER", "parts": [{"text": "hello"}]}
    },
}
ECHO_EXPECT = ['"result":{"message":"hello"']
A2A_EXPECT = ['"result":{"message":{', '"parts":[{"text":"hello"}]']

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Variant:
    key: str
    server: str  # the variant name understood by _server.py
    label: str
    needs_project: bool


VARIANTS: dict[str, Variant] = {
    v.key: v
    for v in (
        Variant("a", "baseline", "starlette baseline", False),
        Variant("b", "open", "bastion, security off", True),
        Variant("c", "apikey", "bastion, api key+rbac+rl+audit", True),
        Variant("d", "jwt", "bastion, jwt+rbac+rl+audit", True),
        Variant("e", "a2a-sdk", "a2a-sdk SendMessage", False),
        Variant("f", "apikey-untraced", "as (c), tracing off", True),
    )
}


class BenchError(Exception):
    """The benchmark cannot produce meaningful numbers; the message says why."""


@dataclass
class Target:
    """What the load generator sends, and what every good answer contains."""

    url: str
    body: str
    headers: dict[str, str]
    expect: list[str]


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    non2xx: int
    bad: int
    errors: dict[str, int]
    last_status: int = 0
    sample: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def problems(self) -> list[str]:
        found = []
        if self.non2xx:
            found.append(f"{self.non2xx} non-2xx responses (last status {self.last_status})")
        if self.bad:
            found.append(f"{self.bad} 2xx responses without the expected result")
        socket_errors = {k: v for k, v in self.errors.items() if v}
        if socket_errors:
            found.append(f"socket errors {socket_errors}")
        if self.requests == 0:
            found.append("no request completed")
        return found


@dataclass
class RunRecord:
    variant: str
    round: int
    load: LoadResult
    server_cpu_percent: float | None
    loadgen_cpu_percent: float | None = None
    # Busy CPU outside the server and the load generator: kernel work, other processes.
    other_cpu_percent: float | None = None
    audit_rows: int | None = None
    answered: int = 0


@dataclass
class Outcome:
    runs: dict[str, list[RunRecord]] = field(default_factory=dict)
    # `_tracing_cost.py`'s answer: app CPU per call with tracing on and off, in one process.
    tracing_in_process: dict[str, Any] | None = None

    def best(self, key: str) -> RunRecord | None:
        runs = self.runs.get(key) or []
        return max(runs, key=lambda r: r.load.rps) if runs else None


def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


# -- load generators --------------------------------------------------------------------------


def lua_string(value: str) -> str:
    level = 1
    while f"]{'=' * level}]" in value:
        level += 1
    eq = "=" * level
    return f"[{eq}[{value}]{eq}]"


def wrk_script(target: Target) -> str:
    """A wrk script: the POST, a body check on every response, and parseable totals."""
    headers = "\n".join(
        f"wrk.headers[ {lua_string(k)} ] = {lua_string(v)}"
        for k, v in {"Content-Type": "application/json", **target.headers}.items()
    )
    expect = ", ".join(lua_string(e) for e in target.expect)
    return f"""
wrk.method = "POST"
wrk.body = {lua_string(target.body)}
{headers}

local expect = {{ {expect} }}
local threads = {{}}

non2xx = 0
bad = 0
last_status = 0
sample = ""

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    last_status = status
    if sample == "" then sample = string.sub(body or "", 1, 300) end
    return
  end
  for _, e in ipairs(expect) do
    if not string.find(body, e, 1, true) then
      bad = bad + 1
      if sample == "" then sample = string.sub(body or "", 1, 300) end
      return
    end
  end
end

function done(summary, latency, requests)
  local n, b, ls, s = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    n = n + t:get("non2xx")
    b = b + t:get("bad")
    local st = t:get("last_status")
    if st ~= 0 then ls = st end
    local sm = t:get("sample")
    if s == "" and sm ~= "" then s = sm end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {{"requests":%d,"duration_us":%d,"p50_us":%.1f,"p90_us":%.1f,' ..
    '"p99_us":%.1f,"max_us":%.1f,"mean_us":%.1f,"non2xx":%d,"bad":%d,"last_status":%d,' ..
    '"errors":{{"connect":%d,"read":%d,"write":%d,"timeout":%d}}}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, n, b, ls,
    e.connect, e.read, e.write, e.timeout))
  io.write("WRK_SAMPLE " .. string.gsub(s, "[\\r\\n]", " ") .. "\\n")
end
"""


def parse_result(raw: dict[str, Any], sample: str = "") -> LoadResult:
    return LoadResult(
        requests=int(raw["requests"]),
        duration_s=float(raw["duration_us"]) / 1e6,
        p50_ms=float(raw["p50_us"]) / 1000.0,
        p90_ms=float(raw["p90_us"]) / 1000.0,
        p99_ms=float(raw["p99_us"]) / 1000.0,
        max_ms=float(raw["max_us"]) / 1000.0,
        mean_ms=float(raw["mean_us"]) / 1000.0,
        non2xx=int(raw["non2xx"]),
        bad=int(raw["bad"]),
        errors={k: int(v) for k, v in raw["errors"].items()},
        last_status=int(raw.get("last_status", 0)),
        sample=sample or str(raw.get("sample", "")),
    )


class Wrk:
    def __init__(self, path: str, connections: int, workdir: Path) -> None:
        self.path = path
        self.connections = connections
        self.workdir = workdir
        first = subprocess.run(
            [path, "-v"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        version = first[0].split("[")[0].strip() if first else "wrk"
        self.name = f"{version} (-t1 -c{connections}, Lua body check on every response)"

    def run(self, target: Target, seconds: int) -> LoadResult:
        script = self.workdir / "load.lua"
        script.write_text(wrk_script(target), encoding="utf-8")
        cmd = [
            self.path,
            "-t1",
            f"-c{self.connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            target.url,
        ]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        raw = None
        sample = ""
        for line in proc.stdout.splitlines():
            if line.startswith("WRK_RESULT "):
                raw = json.loads(line[len("WRK_RESULT ") :])
            elif line.startswith("WRK_SAMPLE "):
                sample = line[len("WRK_SAMPLE ") :].strip()
        if proc.returncode != 0 or raw is None:
            raise BenchError(f"wrk failed (exit {proc.returncode}): {proc.stdout}{proc.stderr}")
        return parse_result(raw, sample)


class PythonLoad:
    def __init__(self, connections: int, workdir: Path, reason: str) -> None:
        self.connections = connections
        self.workdir = workdir
        self.name = (
            f"python asyncio (bench/_load.py, {connections} keep-alive connections; {reason})"
        )

    def run(self, target: Target, seconds: int) -> LoadResult:
        url = httpx.URL(target.url)
        spec = {
            "host": url.host,
            "port": url.port,
            "path": url.raw_path.decode(),
            "body": target.body,
            "headers": target.headers,
            "expect": target.expect,
            "connections": self.connections,
            "duration": seconds,
            "warmup": 0,
        }
        spec_file = self.workdir / "load.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, str(LOAD_SCRIPT), str(spec_file)],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        for line in proc.stdout.splitlines():
            if line.startswith("LOAD_RESULT "):
                return parse_result(json.loads(line[len("LOAD_RESULT ") :]))
        raise BenchError(f"load generator failed (exit {proc.returncode}): {proc.stderr}")


LoadGenerator = Wrk | PythonLoad


# -- servers ----------------------------------------------------------------------------------


def machine_busy_seconds() -> float | None:
    """CPU time spent busy by the whole machine, all cores (Linux only)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all threads (Linux only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """User + system CPU time of the children waited for so far (the load generator runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Server:
    """One variant's server process: started, reachable on `url`, stopped on exit."""

    def __init__(self, variant: Variant, workdir: Path, project: Path | None) -> None:
        self.variant = variant
        self.log = workdir / f"server-{variant.key}.log"
        self.stderr_path = workdir / f"server-{variant.key}.stderr"
        cmd = [sys.executable, str(SERVER_SCRIPT), variant.server, "--log", str(self.log)]
        if project is not None:
            cmd += ["--project", str(project)]
        self._stderr = self.stderr_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr)
        self.port = self._read_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _read_port(self) -> int:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise BenchError(f"server {self.variant.server} did not start: {self.tail()}")
        return int(line.split()[1])

    def tail(self, lines: int = 20) -> str:
        parts = []
        for path in (self.stderr_path, self.log):
            if path.exists():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()
                parts.append(f"--- {path.name}\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


# -- variants ---------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def check_answer(variant: Variant, response: httpx.Response) -> None:
    """One request, checked field by field: the load run only looks for substrings."""
    if response.status_code != 200:
        raise BenchError(
            f"({variant.key}) check request: HTTP {response.status_code}: {response.text[:300]}"
        )
    data = response.json()
    result = data.get("result") if isinstance(data, dict) else None
    if variant.server == "a2a-sdk":
        message = result.get("message") if isinstance(result, dict) else None
        ok = (
            isinstance(message, dict)
            and message.get("role") == "ROLE_AGENT"
            and message.get("parts") == [{"text": "hello"}]
        )
    else:
        ok = isinstance(result, dict) and result.get("message") == "hello"
    if not ok or "error" in data:
        raise BenchError(f"({variant.key}) unexpected answer: {response.text[:300]}")


def prepare(variant: Variant, server: Server, api_key: str | None, max_seconds: int) -> Target:
    """Wait until the server answers, fetch a token if needed, and check two real calls."""
    headers: dict[str, str] = {}
    body = dumps(A2A_BODY if variant.server == "a2a-sdk" else ECHO_BODY)
    expect = A2A_EXPECT if variant.server == "a2a-sdk" else ECHO_EXPECT
    if variant.server == "a2a-sdk":
        headers["A2A-Version"] = "1.0"
    url = server.url + "/message"
    with httpx.Client(timeout=10.0) as client:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                client.get(server.url + "/.well-known/agent-card.json")
                break
            except httpx.TransportError:
                if not server.alive() or time.monotonic() > deadline:
                    raise BenchError(
                        f"({variant.key}) server is not answering: {server.tail()}"
                    ) from None
                time.sleep(0.05)
        if variant.server in ("apikey", "apikey-untraced"):
            assert api_key is not None
            headers["X-API-Key"] = api_key
        elif variant.server == "jwt":
            assert api_key is not None
            reply = client.post(server.url + "/oauth/token", headers={"X-API-Key": api_key})
            if reply.status_code != 200:
                raise BenchError(f"(d) POST /oauth/token: HTTP {reply.status_code} {reply.text}")
            token = reply.json()
            if int(token.get("expires_in", 0)) < max_seconds + 30:
                raise BenchError(
                    f"(d) the token expires in {token.get('expires_in')}s, before the run ends"
                )
            headers["Authorization"] = f"Bearer {token['access_token']}"
        for _ in range(2):
            reply = client.post(
                url, content=body, headers={"Content-Type": "application/json", **headers}
            )
            check_answer(variant, reply)
    return Target(url=url, body=body, headers=headers, expect=expect)


def audit_rows(project: Path) -> int | None:
    db = project / "bastion.db"
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT count(*) FROM audit_records").fetchone()
    return int(row[0])


def new_project(workdir: Path, name: str) -> tuple[Path, str]:
    from bastion.project import init_project

    result = init_project(workdir / name)
    return result.directory, result.admin_key


def run_variant(
    variant: Variant,
    round_no: int,
    generator: LoadGenerator,
    workdir: Path,
    duration: int,
    warmup: int,
) -> RunRecord:
    project: Path | None = None
    api_key: str | None = None
    if variant.needs_project:
        project, api_key = new_project(workdir, f"project-{variant.key}-{round_no}")
    say(f"[{variant.key}] {variant.label}: starting server")
    server = Server(variant, workdir, project)
    answered = 0
    try:
        target = prepare(variant, server, api_key, warmup + duration)
        answered += 2
        say(f"[{variant.key}] listening on {server.url}, answers checked; warming up {warmup}s")
        warm = generator.run(target, warmup)
        answered += warm.requests
        if warm.problems():
            raise BenchError(f"({variant.key}) warm-up: " + "; ".join(warm.problems()))
        say(f"[{variant.key}] measuring {duration}s")
        cpu_before = cpu_seconds(server.proc.pid)
        children_before = children_cpu_seconds()
        machine_before = machine_busy_seconds()
        started = time.monotonic()
        load = generator.run(target, duration)
        elapsed = time.monotonic() - started
        cpu_after = cpu_seconds(server.proc.pid)
        loadgen_cpu = 100.0 * (children_cpu_seconds() - children_before) / elapsed
        machine_after = machine_busy_seconds()
        answered += load.requests
        if not server.alive():
            raise BenchError(f"({variant.key}) server died under load: {server.tail()}")
    finally:
        server.stop()
    problems = load.problems()
    if problems:
        detail = f"; first bad body: {load.sample}" if load.sample else ""
        raise BenchError(f"({variant.key}) " + "; ".join(problems) + detail)
    cpu = None
    if cpu_before is not None and cpu_after is not None:
        cpu = 100.0 * (cpu_after - cpu_before) / elapsed
    record = RunRecord(variant.key, round_no, load, cpu, loadgen_cpu, answered=answered)
    if machine_before is not None and machine_after is not None and cpu is not None:
        busy = 100.0 * (machine_after - machine_before) / elapsed
        record.other_cpu_percent = max(0.0, busy - cpu - loadgen_cpu)
    extra = f", server CPU {cpu:.0f}%" if cpu is not None else ""
    extra += f", load generator CPU {loadgen_cpu:.0f}%"
    if record.other_cpu_percent is not None:
        extra += f", rest of the machine {record.other_cpu_percent:.0f}%"
    if variant.server in ("apikey", "apikey-untraced", "jwt") and project is not None:
        record.audit_rows = audit_rows(project)
        extra += f", audit rows {record.audit_rows} for {answered} answered calls"
        if record.audit_rows is None or record.audit_rows < answered:
            raise BenchError(
                f"({variant.key}) audit trail holds {record.audit_rows} records for "
                f"{answered} answered calls"
            )
    say(
        f"[{variant.key}] {load.rps:,.0f} req/s, p50 {load.p50_ms:.2f} ms, "
        f"p99 {load.p99_ms:.2f} ms, {load.requests} requests, 0 errors{extra}"
    )
    return record


# -- report -----------------------------------------------------------------------------------


def checks(outcome: Outcome) -> list[dict[str, Any]]:
    a, c, e = outcome.best("a"), outcome.best("c"), outcome.best("e")
    found: list[dict[str, Any]] = []
    if a and c:
        ratio = c.load.rps / a.load.rps
        found.append(
            {
                "check": "(c) >= 50% of (a)",
                "value": f"{ratio:.0%}",
                "passed": ratio >= 0.5,
            }
        )
    else:
        found.append({"check": "(c) >= 50% of (a)", "value": "needs a and c", "passed": None})
    if c and e:
        ratio = c.load.rps / e.load.rps
        found.append({"check": "(c) >= 10x (e)", "value": f"{ratio:.1f}x", "passed": ratio >= 10})
    else:
        found.append({"check": "(c) >= 10x (e)", "value": "needs c and e", "passed": None})
    f = outcome.best("f")
    if c and f:
        ratio = c.load.rps / f.load.rps
        passed = ratio >= 0.95
        found.append({"check": "(c) >= 95% of (f)", "value": f"{ratio:.1%}", "passed": passed})
    else:
        found.append({"check": "(c) >= 95% of (f)", "value": "needs c and f", "passed": None})
    share = tracing_share(outcome)
    name = "tracing CPU < 5% of (f)/call"
    if share is not None:
        found.append({"check": name, "value": f"{share:.1%}", "passed": share < 0.05})
    else:
        found.append({"check": name, "value": "needs c and f", "passed": None})
    return found


def tracing_share(outcome: Outcome) -> float | None:
    """The CPU tracing adds per call (in-process measurement) over (f)'s server CPU per call."""
    f = outcome.best("f")
    measured = outcome.tracing_in_process
    off = cpu_per_call_us(f) if f is not None else None
    if measured is None or not off:
        return None
    return float(measured["added_us"]) / off


def measure_tracing_in_process() -> dict[str, Any]:
    """Run `_tracing_cost.py` (its log lines discarded) and return its JSON answer."""
    done = subprocess.run(
        [sys.executable, str(TRACING_COST_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise BenchError(f"{TRACING_COST_SCRIPT.name} failed with status {done.returncode}")
    answer: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return answer


def cpu_per_call_us(run: RunRecord) -> float | None:
    """Server CPU microseconds per answered call in the measured window."""
    if run.server_cpu_percent is None or not run.load.requests:
        return None
    return run.server_cpu_percent / 100.0 * run.load.duration_s / run.load.requests * 1e6


def tracing_cost(outcome: Outcome) -> str | None:
    """The tracing on/off comparison: req/s ratio and server CPU per call of (c) and (f)."""
    c, f = outcome.best("c"), outcome.best("f")
    if c is None or f is None:
        return None
    on, off = cpu_per_call_us(c), cpu_per_call_us(f)
    lines = [
        "tracing cost, (c) on vs (f) off, same run:",
        f"  req/s        on {c.load.rps:>9,.0f}   off {f.load.rps:>9,.0f}   "
        f"ratio {c.load.rps / f.load.rps:.3f}",
    ]
    if on is not None and off is not None:
        lines.append(
            f"  CPU/call µs  on {on:>9.1f}   off {off:>9.1f}   "
            f"{on - off:+.1f} µs ({(on - off) / off:+.1%})"
        )
    measured = outcome.tracing_in_process
    if measured is not None:
        share = tracing_share(outcome)
        lines.append(
            f"  in-process app CPU/call µs, fastest of {measured['rounds']} rounds: "
            f"on {measured['on_us']:.1f}, off {measured['off_us']:.1f}, "
            f"tracing adds {measured['added_us']:.1f} µs"
            + (f" = {share:.1%} of (f)'s server CPU per call" if share is not None else "")
        )
    return "\n".join(lines)


def render(outcome: Outcome, keys: list[str]) -> str:
    base = outcome.best("a")
    header = f"{'variant':<38} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs (a)':>7} {'cpu':>5}"
    lines = [header, "-" * len(header)]
    for key in keys:
        best = outcome.best(key)
        if best is None:
            continue
        ratio = f"{best.load.rps / base.load.rps:.2f}" if base else "-"
        cpu = f"{best.server_cpu_percent:.0f}%" if best.server_cpu_percent is not None else "-"
        lines.append(
            f"{'(' + key + ') ' + VARIANTS[key].label:<38} {best.load.rps:>9,.0f} "
            f"{best.load.p50_ms:>8.2f} {best.load.p99_ms:>8.2f} {ratio:>7} {cpu:>5}"
        )
    lines.append("")
    cost = tracing_cost(outcome)
    if cost is not None:
        lines.extend([cost, ""])
    for check in checks(outcome):
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[check["passed"]]
        lines.append(f"{check['check']:<20} {check['value']:>14}  {verdict}")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("bastion", "uvicorn", "uvloop", "httptools", "starlette", "orjson", "a2a-sdk"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[dist] = metadata.version(dist)
    return found


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def to_json(
    outcome: Outcome, keys: list[str], generator: LoadGenerator, args: argparse.Namespace
) -> dict[str, Any]:
    def run_dict(run: RunRecord) -> dict[str, Any]:
        load = run.load
        return {
            "round": run.round,
            "rps": round(load.rps, 1),
            "requests": load.requests,
            "duration_s": load.duration_s,
            "p50_ms": round(load.p50_ms, 3),
            "p90_ms": round(load.p90_ms, 3),
            "p99_ms": round(load.p99_ms, 3),
            "max_ms": round(load.max_ms, 3),
            "mean_ms": round(load.mean_ms, 3),
            "non2xx": load.non2xx,
            "bad_bodies": load.bad,
            "socket_errors": load.errors,
            "server_cpu_percent": (
                round(run.server_cpu_percent, 1) if run.server_cpu_percent is not None else None
            ),
            "loadgen_cpu_percent": (
                round(run.loadgen_cpu_percent, 1) if run.loadgen_cpu_percent is not None else None
            ),
            "other_cpu_percent": (
                round(run.other_cpu_percent, 1) if run.other_cpu_percent is not None else None
            ),
            "audit_rows": run.audit_rows,
            "answered_calls": run.answered,
        }

    base = outcome.best("a")
    variants: dict[str, Any] = {}
    for key in keys:
        best = outcome.best(key)
        if best is None:
            continue
        variants[key] = {
            "label": VARIANTS[key].label,
            "server": VARIANTS[key].server,
            "best": run_dict(best),
            "ratio_vs_a": round(best.load.rps / base.load.rps, 3) if base else None,
            "runs": [run_dict(r) for r in outcome.runs[key]],
        }
    return {
        "generator": generator.name,
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "repeats": args.repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": cpu_model(),
            "platform": platform.platform(),
            **versions(),
        },
        "variants": variants,
        "tracing_in_process": outcome.tracing_in_process,
        "checks": checks(outcome),
    }


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Bastion RPC benchmark (see bench/README.md).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(f"  ({v.key}) {v.label}" for v in VARIANTS.values()),
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds measured per variant")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per variant")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--repeats", type=int, default=2, help="rounds; the best one is kept")
    parser.add_argument("--only", default="a,b,c,d,e,f", help="variants to run, e.g. c,f")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument(
        "--generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator (auto: wrk when installed)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 2 when a target check fails"
    )
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in keys if k not in VARIANTS]
    if unknown or not keys:
        parser.error(f"--only takes letters among {','.join(VARIANTS)} (got {args.only!r})")
    args.keys = [k for k in VARIANTS if k in keys]
    for name in ("duration", "warmup", "connections", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def make_generator(choice: str, connections: int, workdir: Path) -> LoadGenerator:
    wrk = shutil.which("wrk")
    if choice == "wrk" and wrk is None:
        raise BenchError("--generator wrk: wrk is not installed")
    if wrk is not None and choice != "python":
        return Wrk(wrk, connections, workdir)
    reason = "chosen with --generator python" if wrk is not None else "wrk not found"
    return PythonLoad(connections, workdir, reason)


@contextlib.contextmanager
def work_directory(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    failed = False
    try:
        yield path
    except BaseException:
        failed = True
        raise
    finally:
        if keep or failed:
            say(f"work directory (logs, projects) kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    outcome = Outcome()
    try:
        with work_directory(args.keep) as workdir:
            generator = make_generator(args.generator, args.connections, workdir)
            say(f"load generator: {generator.name}")
            say(
                f"{len(args.keys)} variants x {args.repeats} rounds, {args.warmup}s warm-up + "
                f"{args.duration}s measured each, {os.cpu_count()} CPUs ({cpu_model()})"
            )
            before = machine_busy_seconds()
            time.sleep(1.0)
            after = machine_busy_seconds()
            if before is not None and after is not None and after - before > 0.1:
                say(
                    f"note: the machine is not idle ({100 * (after - before):.0f}% of one CPU "
                    "busy before the run); other work competes for the same CPUs and makes the "
                    "numbers noisy"
                )
            for round_no in range(1, args.repeats + 1):
                say(f"== round {round_no}/{args.repeats}")
                for key in args.keys:
                    record = run_variant(
                        VARIANTS[key], round_no, generator, workdir, args.duration, args.warmup
                    )
                    outcome.runs.setdefault(key, []).append(record)
            if "c" in args.keys and "f" in args.keys:
                say("tracing cost in one process (bench/_tracing_cost.py)")
                outcome.tracing_in_process = measure_tracing_in_process()
    except BenchError as exc:
        say(f"FAILED: {exc}")
        return 1
    say("")
    say(f"load generator: {generator.name}; best of {args.repeats} rounds")
    say(render(outcome, args.keys))
    if args.json is not None:
        args.json.write_text(
            json.dumps(to_json(outcome, args.keys, generator, args), indent=2) + "\n",
            encoding="utf-8",
        )
        say(f"results written to {args.json}")
    if args.strict and any(c["passed"] is False for c in checks(outcome)):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
