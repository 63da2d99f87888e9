"""Run a set of child processes on one machine: start, wait until ready, restart, stop.

Used by `bastion up`, the demo, the end-to-end tests and the pipeline benchmark. Each child
runs in its own process group with its output in `log_dir/<name>.log` (or the supervisor's own
stdout/stderr); the log folder is created 0700 and each log 0600, as logs carry request data.
A child is ready when `GET health_url` answers 200, or, without a health URL, once it has
stayed alive for `settle_seconds`. A child starts once the children it `needs` are ready.
After `start()`, a background thread restarts a child that exits unexpectedly, with
exponential backoff, and gives up (see `failures` and `wait()`) after `max_restarts` restarts
within `restart_window` seconds. `stop()` stops dependants before what they need: SIGTERM to
each child (newest first), then SIGKILL to the process group of any that outlives `timeout`.
Each child finds the supervisor's pid in `BASTION_SUPERVISOR_PID`; `bastion serve` watches it
(`parent_watch`) and stops cleanly when the supervisor dies without stopping it.

`bastion.agents.services.service_specs()` builds what `bastion up` runs: the pipeline and
research agents, the gateway and the worker, each as `python -m bastion serve NAME --config
FILE`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shlex
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

import httpx

from bastion.config import Settings
from bastion.runtime.parent_watch import SUPERVISOR_PID_ENV

EventKind = Literal["starting", "ready", "exited", "restarting", "failed", "stopping", "stopped"]

LOG_TAIL_LINES = 20
_LOG_TAIL_BYTES = 16 * 1024
_HEALTH_TIMEOUT = 1.0


class SupervisorError(Exception):
    """A child could not be started or made ready; the message names it and shows its log."""


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One child process.

    `env` holds variables set on top of the supervisor's own environment. `needs` names
    children (listed before this one) that must be ready before this one starts; it also
    makes `stop()` stop this one first.
    """

    name: str
    argv: Sequence[str]
    health_url: str | None = None
    env: Mapping[str, str] | None = None
    needs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """What happened to a child, for progress output (`on_event`)."""

    child: str
    kind: EventKind
    message: str


@dataclass
class _Child:
    spec: ChildSpec
    log_path: Path | None
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready: bool = False
    starts: int = 0
    restart_at: float | None = None
    restart_times: deque[float] = field(default_factory=deque)
    health_error: str = "no answer yet"
    failure: str | None = None


def describe_exit(code: int) -> str:
    """`exit status 1`, or `signal SIGKILL` for a child killed by a signal."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    return host, parts.port or (443 if parts.scheme == "https" else 80)


def _in_use(url: str) -> bool:
    host, port = _host_port(url)
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class Supervisor:
    """Starts `specs` in order (a child waits for the children it `needs`), keeps them
    running, and stops them. Use `with Supervisor(specs) as sup:` or `start()` / `stop()`.

    `verify` is the TLS verification for health checks (an `ssl.SSLContext` for private CAs
    and mTLS). `on_event` is called with every `SupervisorEvent`, from the calling thread
    during `start()`/`stop()` and from the monitor thread in between.
    """

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        log_dir: str | os.PathLike[str] | None = None,
        restart: bool = True,
        ready_timeout: float = 60.0,
        settle_seconds: float = 0.5,
        max_restarts: int = 5,
        restart_window: float = 60.0,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        stop_timeout: float = 15.0,
        check_ports: bool = True,
        verify: ssl.SSLContext | bool = True,
        on_event: Callable[[SupervisorEvent], None] | None = None,
        poll_interval: float = 0.05,
    ) -> None:
        seen: set[str] = set()
        for spec in specs:
            if spec.name in seen:
                raise ValueError(f"two children are called {spec.name!r}")
            for need in spec.needs:
                if need not in seen:
                    raise ValueError(
                        f"child {spec.name!r} needs {need!r}, which is not listed before it"
                    )
            seen.add(spec.name)
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.restart = restart
        self.ready_timeout = ready_timeout
        self.settle_seconds = settle_seconds
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stop_timeout = stop_timeout
        self.check_ports = check_ports
        self.on_event = on_event
        self.poll_interval = poll_interval
        self._children = {
            s.name: _Child(s, self.log_dir / f"{s.name}.log" if self.log_dir else None)
            for s in specs
        }
        self._http = httpx.Client(timeout=_HEALTH_TIMEOUT, verify=verify, trust_env=False)
        self._lock = threading.Lock()
        self._failed = threading.Event()
        self._halt = threading.Event()
        self._monitor: threading.Thread | None = None
        self._orphans: list[int] = []
        self._started = False
        self._stopped = False

    # -- public API -------------------------------------------------------------------------

    @property
    def specs(self) -> list[ChildSpec]:
        return [c.spec for c in self._children.values()]

    def log_path(self, name: str) -> Path | None:
        """The child's log file, or None when its output goes to the supervisor's own."""
        return self._children[name].log_path

    def pid(self, name: str) -> int | None:
        """The child's current process id (None while it is not running)."""
        proc = self._children[name].proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def is_ready(self, name: str) -> bool:
        return self._children[name].ready

    def restarts(self, name: str) -> int:
        """How often the child was restarted after exiting unexpectedly."""
        return max(0, self._children[name].starts - 1)

    @property
    def failures(self) -> dict[str, str]:
        """Children the supervisor gave up on, with the reason."""
        with self._lock:
            return {n: c.failure for n, c in self._children.items() if c.failure is not None}

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a child has failed for good (True) or `timeout` has passed (False)."""
        return self._failed.wait(timeout)

    def log_tail(self, name: str, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the child's log ("" without a log file)."""
        path = self._children[name].log_path
        if path is None:
            return ""
        try:
            with path.open("rb") as fh:
                fh.seek(max(0, path.stat().st_size - _LOG_TAIL_BYTES))
                data = fh.read()
        except OSError:
            return ""
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    def start(self) -> None:
        """Start every child and wait until all are ready.

        Raises SupervisorError (after stopping whatever was started) when a child cannot be
        spawned, exits while starting, or is not ready within `ready_timeout` seconds.
        """
        if self._started:
            raise RuntimeError("a Supervisor can be started once")
        self._started = True
        if self.log_dir is not None:
            self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            if self.check_ports:
                self._check_ports()
            self._start_all()
        except BaseException:
            self.stop()
            raise
        self._monitor = threading.Thread(
            target=self._monitor_loop, name="bastion-supervisor", daemon=True
        )
        self._monitor.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop every child: dependants first, each wave with SIGTERM (newest child first),
        then SIGKILL to the process group of any child still running after `timeout` seconds
        (default `stop_timeout`), per wave. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._halt.set()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join()
        wait = self.stop_timeout if timeout is None else timeout
        try:
            for wave in self._stop_waves():
                self._stop_wave(wave, wait)
            for pgid in self._orphans:
                _kill_group(pgid)
        finally:
            self._http.close()

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- starting ---------------------------------------------------------------------------

    def _emit(self, child: str, kind: EventKind, message: str) -> None:
        if self.on_event is not None:
            self.on_event(SupervisorEvent(child, kind, message))

    def _check_ports(self) -> None:
        for c in self._children.values():
            url = c.spec.health_url
            if url and _in_use(url):
                host, port = _host_port(url)
                raise SupervisorError(
                    f"{c.spec.name} cannot start: something already listens on {host}:{port}. "
                    "Stop it (another `bastion up`?) or configure another port"
                )

    def _spawn(self, c: _Child) -> None:
        spec = c.spec
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            SUPERVISOR_PID_ENV: str(os.getpid()),
            **(spec.env or {}),
        }
        c.starts += 1
        c.ready = False
        c.restart_at = None
        c.health_error = "no answer yet"
        self._emit(spec.name, "starting", shlex.join(spec.argv))
        log = None
        try:
            if c.log_path is not None:
                # Logs carry request data: readable by their owner only.
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
                log = os.fdopen(os.open(c.log_path, flags, 0o600), "ab")
                stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
                log.write(
                    f"--- {stamp} supervisor: start #{c.starts}: {shlex.join(spec.argv)}\n".encode()
                )
                log.flush()
            c.proc = subprocess.Popen(  # noqa: S603 - argv comes from the caller's ChildSpec
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log is not None else None,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise SupervisorError(
                f"cannot start {spec.name} ({shlex.join(spec.argv)}): {exc.strerror or exc}"
            ) from None
        finally:
            if log is not None:
                log.close()
        c.started_at = time.monotonic()

    def _probe(self, c: _Child) -> bool:
        """True once the running child is ready."""
        url = c.spec.health_url
        if url is None:
            return time.monotonic() - c.started_at >= self.settle_seconds
        try:
            response = self._http.get(url)
        except httpx.HTTPError as exc:
            c.health_error = str(exc) or type(exc).__name__
            return False
        if response.status_code == 200:
            return True
        c.health_error = f"HTTP {response.status_code}"
        return False

    def _with_log(self, name: str, message: str) -> str:
        path = self._children[name].log_path
        if path is None:
            return message + " (its output went to this terminal)"
        tail = self.log_tail(name)
        if not tail:
            return f"{message}; its log {path} is empty"
        indented = "\n".join("  " + line for line in tail.splitlines())
        return f"{message}; last lines of {path}:\n{indented}"

    def _start_all(self) -> None:
        children = list(self._children.values())
        while True:
            for c in children:
                if c.proc is None and all(self._children[n].ready for n in c.spec.needs):
                    self._spawn(c)
            for c in children:
                if c.proc is None or c.ready:
                    continue
                name = c.spec.name
                code = c.proc.poll()
                if code is not None:
                    raise SupervisorError(
                        self._with_log(
                            name, f"{name} exited while starting ({describe_exit(code)})"
                        )
                    )
                if self._probe(c):
                    c.ready = True
                    took = time.monotonic() - c.started_at
                    self._emit(name, "ready", f"ready after {took:.1f} s")
                elif time.monotonic() - c.started_at > self.ready_timeout:
                    what = f"GET {c.spec.health_url}: {c.health_error}" if c.spec.health_url else ""
                    raise SupervisorError(
                        self._with_log(
                            name,
                            f"{name} was not ready within {self.ready_timeout:g} s"
                            + (f" ({what})" if what else ""),
                        )
                    )
            if all(c.ready for c in children):
                return
            time.sleep(self.poll_interval)

    # -- keeping children running -----------------------------------------------------------

    def _monitor_loop(self) -> None:
        while not self._halt.wait(self.poll_interval):
            for c in self._children.values():
                if self._halt.is_set():
                    return
                if c.failure is None:
                    self._check(c)

    def _give_up(self, c: _Child, reason: str) -> None:
        with self._lock:
            c.failure = self._with_log(c.spec.name, reason)
        self._emit(c.spec.name, "failed", reason)
        self._failed.set()

    def _check(self, c: _Child) -> None:
        name = c.spec.name
        now = time.monotonic()
        if c.proc is None:
            if c.restart_at is not None and now >= c.restart_at:
                try:
                    self._spawn(c)
                except SupervisorError as exc:
                    self._give_up(c, str(exc))
            return
        code = c.proc.poll()
        if code is None:
            if c.ready:
                return
            if self._probe(c):
                c.ready = True
                self._emit(name, "ready", f"ready after {now - c.started_at:.1f} s")
                return
            if now - c.started_at <= self.ready_timeout:
                return
            # A restarted child that never becomes ready counts as a crash.
            _kill_group(c.proc.pid)
            c.proc.wait()
            how = f"not ready within {self.ready_timeout:g} s, killed"
        else:
            how = describe_exit(code)
        # Helpers the child started may outlive it for a moment (they see end of input and
        # finish); whatever is left of its process group is killed by stop().
        self._orphans.append(c.proc.pid)
        c.proc, c.ready = None, False
        self._emit(name, "exited", f"{name} exited unexpectedly ({how})")
        if not self.restart:
            self._give_up(c, f"{name} exited unexpectedly ({how})")
            return
        while c.restart_times and now - c.restart_times[0] > self.restart_window:
            c.restart_times.popleft()
        if len(c.restart_times) >= self.max_restarts:
            self._give_up(
                c,
                f"{name} exited ({how}) after {len(c.restart_times)} restart(s) within "
                f"{self.restart_window:g} s; giving up",
            )
            return
        delay = min(self.backoff_max, self.backoff_base * 2 ** len(c.restart_times))
        c.restart_times.append(now)
        c.restart_at = now + delay
        self._emit(name, "restarting", f"restarting {name} in {delay:.1f} s")

    # -- stopping ---------------------------------------------------------------------------

    def _stop_waves(self) -> list[list[_Child]]:
        """Children grouped so that each wave only holds children nobody left running needs."""
        level: dict[str, int] = {}
        for c in reversed(list(self._children.values())):
            dependants = [d for d in self._children.values() if c.spec.name in d.spec.needs]
            level[c.spec.name] = max((level[d.spec.name] + 1 for d in dependants), default=0)
        waves: list[list[_Child]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for c in reversed(list(self._children.values())):
            waves[level[c.spec.name]].append(c)
        return waves

    def _stop_wave(self, wave: list[_Child], timeout: float) -> None:
        running = [c for c in wave if c.proc is not None]
        for c in running:
            assert c.proc is not None
            if c.proc.poll() is None:
                self._emit(c.spec.name, "stopping", "SIGTERM")
                c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for c in running:
            proc = c.proc
            assert proc is not None
            try:
                code = proc.wait(max(0.0, deadline - time.monotonic()))
                how = describe_exit(code)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                how = f"killed with SIGKILL after {timeout:g} s ({describe_exit(proc.wait())})"
            # Whatever the child left behind in its group (helpers it started) goes too, once
            # it had the rest of the wave's time to finish.
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(self.poll_interval)
            _kill_group(proc.pid)
            c.proc, c.ready = None, False
            self._emit(c.spec.name, "stopped", how)


# -- the document pipeline ------------------------------------------------------------------


def service_tls(settings: Settings) -> ssl.SSLContext | bool:
    """How to verify the configured services' TLS (`verify=` for httpx): the CA and client
    certificate in `server.tls`, else the system CAs."""
    from bastion.runtime.client import tls_context_from_settings

    return tls_context_from_settings(settings.server.tls, settings.path) or True
