"""The process supervisor with real child processes: small Python scripts that serve a health
endpoint, crash, ignore SIGTERM or never become ready."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.agents.services import check_local, service_specs
from bastion.config import load_settings
from bastion.project import init_project
from bastion.research.protocol import RESEARCH_AGENTS
from bastion.runtime.supervisor import ChildSpec, Supervisor, SupervisorError, SupervisorEvent
from bastion.testing.ports import free_port

# Serves GET /healthz (200) on the port in argv[1] after sleeping argv[2] seconds; exits 0 on
# SIGTERM.
HEALTH_SERVER = """
import http.server, signal, sys, time
port, delay = int(sys.argv[1]), float(sys.argv[2])
print("booting on", port, flush=True)
time.sleep(delay)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass

def stop(*_):
    print("got SIGTERM", flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

# Exits with status 3 on its first run (marker file absent), then runs until SIGTERM.
CRASH_ONCE = """
import pathlib, sys, time
marker = pathlib.Path(sys.argv[1])
if not marker.exists():
    marker.write_text("crashed")
    time.sleep(0.7)
    print("crashing now", flush=True)
    sys.exit(3)
print("second life", flush=True)
while True:
    time.sleep(1)
"""

# Lives long enough to count as started, then exits 1, every time.
ALWAYS_CRASH = """
import sys, time
time.sleep(0.6)
print("fatal: cannot continue", flush=True)
sys.exit(1)
"""

# Ignores SIGTERM, and so does the grandchild it starts (in its process group); writes the
# grandchild's pid to argv[1].
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
grandchild = subprocess.Popen([sys.executable, "-c", code])
open(sys.argv[1], "w").write(str(grandchild.pid))
print("ignoring SIGTERM", flush=True)
while True:
    time.sleep(1)
"""

# Serves /healthz on argv[1] on its first run and exits 3 after a moment; later runs hang
# without ever serving.
READY_THEN_STUCK = """
import http.server, pathlib, sys, threading, time
port, marker = int(sys.argv[1]), pathlib.Path(sys.argv[2])
if marker.exists():
    print("stuck", flush=True)
    time.sleep(600)
marker.write_text("ran")

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", port), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
time.sleep(1.0)
sys.exit(3)
"""

SLOW_BOOT = """
import time
print("loading a very large model", flush=True)
time.sleep(600)
"""

EXIT_AT_ONCE = """
import sys
print("boom: config is broken", flush=True)
sys.exit(2)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


class Recorder:
    def __init__(self) -> None:
        self.events: list[SupervisorEvent] = []

    def __call__(self, event: SupervisorEvent) -> None:
        self.events.append(event)

    def kinds(self, child: str) -> list[str]:
        return [e.kind for e in self.events if e.child == child]

    def index(self, child: str, kind: str) -> int:
        return next(i for i, e in enumerate(self.events) if e.child == child and e.kind == kind)


@pytest.fixture
def script(tmp_path: Path) -> Callable[[str, str], list[str]]:
    def make(name: str, source: str) -> list[str]:
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        return [sys.executable, str(path)]

    return make


def health_child(script: Callable[[str, str], list[str]], name: str, delay: float) -> ChildSpec:
    port = free_port()
    argv = [*script("health_server", HEALTH_SERVER), str(port), str(delay)]
    return ChildSpec(name, argv, health_url=f"http://127.0.0.1:{port}/healthz")


def test_ready_by_health_url_then_clean_stop(
    tmp_path: Path, script: Callable[[str, str], list[str]]
) -> None:
    rec = Recorder()
    specs = [
        health_child(script, "api", delay=0.4),
        ChildSpec("consumer", script("consumer", SLOW_BOOT), needs=("api",)),
    ]
    sup = Supervisor(specs, log_dir=tmp_path / "logs", on_event=rec)
    with sup:
        assert sup.is_ready("api") and sup.is_ready("consumer")
        api_pid, consumer_pid = sup.pid("api"), sup.pid("consumer")
        assert api_pid and consumer_pid
        # The dependant starts only once what it needs is ready.
        assert rec.index("api", "ready") < rec.index("consumer", "starting")
    assert not alive(api_pid) and not alive(consumer_pid)
    # ... and is stopped first.
    assert rec.index("consumer", "stopped") < rec.index("api", "stopping")
    stopped = next(e for e in rec.events if e.child == "api" and e.kind == "stopped")
    assert stopped.message == "exit status 0"
    log = (tmp_path / "logs" / "api.log").read_text()
    assert "supervisor: start #1" in log
    assert "booting on" in log and "got SIGTERM" in log
    assert sup.log_path("api") == tmp_path / "logs" / "api.log"
    sup.stop()  # idempotent


def test_restarts_a_crashed_child(tmp_path: Path, script: Callable[[str, str], list[str]]) -> None:
    rec = Recorder()
    argv = [*script("crash_once", CRASH_ONCE), str(tmp_path / "marker")]
    with Supervisor(
        [ChildSpec("flaky", argv)], log_dir=tmp_path / "logs", backoff_base=0.1, on_event=rec
    ) as sup:
        first = sup.pid("flaky")
        assert wait_until(lambda: sup.restarts("flaky") == 1 and sup.is_ready("flaky"))
        assert sup.pid("flaky") not in (None, first)
        assert not sup.failures
        assert not sup.wait(0.1)
    kinds = rec.kinds("flaky")
    assert kinds[:6] == ["starting", "ready", "exited", "restarting", "starting", "ready"]
    exited = next(e for e in rec.events if e.kind == "exited")
    assert "exit status 3" in exited.message
    log = (tmp_path / "logs" / "flaky.log").read_text()
    assert "crashing now" in log and "second life" in log and "start #2" in log


def test_gives_up_after_too_many_restarts(
    tmp_path: Path, script: Callable[[str, str], list[str]]
) -> None:
    rec = Recorder()
    with Supervisor(
        [ChildSpec("doomed", script("always_crash", ALWAYS_CRASH))],
        log_dir=tmp_path / "logs",
        max_restarts=2,
        backoff_base=0.05,
        on_event=rec,
    ) as sup:
        assert sup.wait(timeout=20)
        reason = sup.failures["doomed"]
        assert "doomed exited (exit status 1) after 2 restart(s) within 60 s; giving up" in reason
        assert "fatal: cannot continue" in reason  # the log's last lines
        assert sup.restarts("doomed") == 2
        assert sup.pid("doomed") is None
    assert rec.kinds("doomed")[-1] == "failed"


def test_a_restarted_child_that_never_gets_ready_counts_as_a_crash(
    tmp_path: Path, script: Callable[[str, str], list[str]]
) -> None:
    port = free_port()
    argv = [*script("stuck", READY_THEN_STUCK), str(port), str(tmp_path / "marker")]
    rec = Recorder()
    spec = ChildSpec("svc", argv, health_url=f"http://127.0.0.1:{port}/healthz")
    with Supervisor(
        [spec],
        log_dir=tmp_path / "logs",
        ready_timeout=1.0,
        max_restarts=1,
        backoff_base=0.05,
        on_event=rec,
    ) as sup:
        assert sup.wait(timeout=20)
        reason = sup.failures["svc"]
        assert "svc exited (not ready within 1 s, killed) after 1 restart(s)" in reason
        assert "stuck" in reason
    assert rec.kinds("svc") == [
        "starting",
        "ready",
        "exited",
        "restarting",
        "starting",
        "exited",
        "failed",
    ]


def test_no_restart_reports_the_exit(
    tmp_path: Path, script: Callable[[str, str], list[str]]
) -> None:
    with Supervisor(
        [ChildSpec("once", script("always_crash", ALWAYS_CRASH))],
        log_dir=tmp_path,
        restart=False,
    ) as sup:
        assert sup.wait(timeout=10)
        assert sup.failures["once"].startswith("once exited unexpectedly (exit status 1)")
        assert sup.restarts("once") == 0


def test_readiness_timeout_names_the_child_and_shows_its_log(
    tmp_path: Path, script: Callable[[str, str], list[str]]
) -> None:
    port = free_port()
    rec = Recorder()
    sup = Supervisor(
        [ChildSpec("slow", script("slow", SLOW_BOOT), health_url=f"http://127.0.0.1:{port}/hz")],
        log_dir=tmp_path / "logs",
        ready_timeout=1.0,
        on_event=rec,
    )
    with pytest.raises(SupervisorError) as err:
        sup.start()
    message = str(err.value)
    assert message.startswith(f"slow was not ready within 1 s (GET http://127.0.0.1:{port}/hz:")
    assert str(tmp_path / "logs" / "slow.log") in message
    assert "loading a very large model" in message
    # What was started is stopped again.
    assert rec.kinds("slow")[-1] == "stopped"
    assert sup.pid("slow") is None


def test_exit_while_starting_is_an_error(
    tmp_path: Path, script: Callable[[str, str], list[str]]
) -> None:
    port = free_port()
    spec = ChildSpec("broken", script("exit", EXIT_AT_ONCE), f"http://127.0.0.1:{port}/healthz")
    with pytest.raises(SupervisorError) as err, Supervisor([spec], log_dir=tmp_path):
        pass
    assert str(err.value).startswith("broken exited while starting (exit status 2)")
    assert "boom: config is broken" in str(err.value)


def test_a_busy_port_is_refused_before_anything_starts(
    tmp_path: Path, script: Callable[[str, str], list[str]]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rec = Recorder()
        spec = ChildSpec("api", script("slow", SLOW_BOOT), f"http://127.0.0.1:{port}/healthz")
        with pytest.raises(SupervisorError, match=f"api cannot start: .* 127.0.0.1:{port}"):
            Supervisor([spec], log_dir=tmp_path, on_event=rec).start()
        assert rec.events == []


def test_sigterm_then_sigkill_for_the_whole_group(
    tmp_path: Path, script: Callable[[str, str], list[str]]
) -> None:
    rec = Recorder()
    pid_file = tmp_path / "grandchild.pid"
    argv = [*script("stubborn", STUBBORN), str(pid_file)]
    sup = Supervisor([ChildSpec("stubborn", argv)], log_dir=tmp_path, on_event=rec)
    sup.start()
    assert wait_until(pid_file.exists)
    grandchild = int(pid_file.read_text())
    child = sup.pid("stubborn")
    assert child and alive(grandchild)
    began = time.monotonic()
    sup.stop(timeout=1.0)
    assert time.monotonic() - began < 5
    assert not alive(child)
    assert wait_until(lambda: not alive(grandchild), 5)
    assert rec.kinds("stubborn")[-2:] == ["stopping", "stopped"]
    assert rec.events[-1].message.startswith("killed with SIGKILL after 1 s")
    assert "signal SIGKILL" in rec.events[-1].message


def test_output_inherited_without_a_log_dir(script: Callable[[str, str], list[str]]) -> None:
    with Supervisor([ChildSpec("quiet", script("slow", SLOW_BOOT))]) as sup:
        assert sup.log_path("quiet") is None
        assert sup.log_tail("quiet") == ""


def test_specs_are_checked() -> None:
    with pytest.raises(ValueError, match="two children are called 'a'"):
        Supervisor([ChildSpec("a", ["true"]), ChildSpec("a", ["true"])])
    with pytest.raises(ValueError, match="'b' needs 'c', which is not listed before it"):
        Supervisor([ChildSpec("b", ["true"], needs=("c",)), ChildSpec("c", ["true"])])
    with pytest.raises(SupervisorError, match="cannot start nope"):
        Supervisor([ChildSpec("nope", ["/nonexistent/binary"])]).start()


def test_service_specs_start_the_pipeline_in_order(tmp_path: Path) -> None:
    init_project(tmp_path)
    config = tmp_path / "bastion.yaml"
    settings = load_settings(config)
    specs = [s for s in service_specs(config, settings) if s.name not in RESEARCH_AGENTS]
    assert [s.name for s in specs] == [
        "archivist",
        "validator",
        "extractor",
        "orchestrator",
        "gateway",
        "worker",
    ]
    by_name = {s.name: s for s in specs}
    assert by_name["archivist"].argv == [
        sys.executable,
        "-m",
        "bastion",
        "serve",
        "archivist",
        "--config",
        str(config.resolve()),
    ]
    assert by_name["archivist"].health_url == "http://127.0.0.1:8084/healthz"
    assert by_name["gateway"].health_url == "http://127.0.0.1:8080/healthz"
    assert by_name["worker"].health_url is None
    assert by_name["worker"].argv[3:5] == ["serve", "worker"]
    assert set(by_name["worker"].needs) == {"archivist", "validator", "extractor", "orchestrator"}
    check_local(settings)

    remote = settings.model_copy(
        update={
            "pipeline": settings.pipeline.model_copy(update={"gateway_url": "http://10.1.2.3:80"})
        }
    )
    with pytest.raises(SupervisorError, match=r"pipeline.gateway_url is http://10.1.2.3:80"):
        check_local(remote)
    agents = dict(settings.agents)
    agents["extractor"] = agents["extractor"].model_copy(update={"url": "http://example.com:8082"})
    with pytest.raises(SupervisorError, match=r"agents.extractor.url is http://example.com:8082"):
        check_local(settings.model_copy(update={"agents": agents}))
    del agents["extractor"]
    with pytest.raises(SupervisorError, match=r"agents\.extractor is missing"):
        service_specs(config, settings.model_copy(update={"agents": agents}))


def test_signal_name_in_exit_description() -> None:
    from bastion.runtime.supervisor import describe_exit

    assert describe_exit(-signal.SIGKILL) == "signal SIGKILL"
    assert describe_exit(0) == "exit status 0"


def test_service_specs_add_the_research_agents(tmp_path: Path) -> None:
    """`bastion up` runs the pipeline and the research agents: the research agents after the
    archivist (and the other pipeline agents), the gateway after them, the worker last."""
    init_project(tmp_path)
    config = tmp_path / "bastion.yaml"
    settings = load_settings(config)
    specs = service_specs(config, settings)
    assert [s.name for s in specs] == [
        "archivist",
        "validator",
        "extractor",
        "orchestrator",
        "researcher",
        "critic",
        "research",
        "gateway",
        "worker",
    ]
    by_name = {s.name: s for s in specs}
    assert by_name["research"].health_url == "http://127.0.0.1:8085/healthz"
    assert by_name["researcher"].health_url == "http://127.0.0.1:8086/healthz"
    assert by_name["critic"].health_url == "http://127.0.0.1:8087/healthz"
    assert by_name["research"].argv[3:5] == ["serve", "research"]
    check_local(settings)

    agents = dict(settings.agents)
    agents["critic"] = agents["critic"].model_copy(update={"url": "http://example.com:8087"})
    with pytest.raises(SupervisorError, match=r"agents.critic.url is http://example.com:8087"):
        check_local(settings.model_copy(update={"agents": agents}))
    del agents["critic"]
    with pytest.raises(SupervisorError, match=r"agents\.critic is missing"):
        service_specs(config, settings.model_copy(update={"agents": agents}))
    # A project from before research: the pipeline alone.
    for name in ("research", "researcher"):
        del agents[name]
    names = [s.name for s in service_specs(config, settings.model_copy(update={"agents": agents}))]
    assert names == ["archivist", "validator", "extractor", "orchestrator", "gateway", "worker"]
