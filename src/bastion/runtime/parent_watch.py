"""A supervised service stops cleanly when its supervisor dies.

The supervisor puts its pid in each child's environment (`SUPERVISOR_PID_ENV`). A child calls
`stop_with_parent()` early in its main; from then on, once the supervisor is gone (killed with
SIGKILL, crashed), the child sends itself SIGTERM, once, which runs its ordinary graceful
shutdown: in-flight requests finish, the audit buffer is flushed, the worker drains.

Two ways to notice, one outcome:

- on Linux, `prctl(PR_SET_PDEATHSIG)` has the kernel signal the child as soon as its parent
  goes. The kernel does so when the parent *thread* that started the child exits, which also
  happens while the supervisor lives on (a restart made by its monitor thread), so the signal
  (`DEATH_SIGNAL`) only triggers the check that the parent process is really gone;
- everywhere, a daemon thread compares `os.getppid()` with the supervisor's pid every
  `POLL_SECONDS`: a child whose parent died has been adopted by another process.

The supervisor may be gone before either is in place; a first check right away covers that.
Without the variable (a service started by hand, by systemd, in a container) nothing is
watched.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType

import structlog

__all__ = ["DEATH_SIGNAL", "POLL_SECONDS", "SUPERVISOR_PID_ENV", "stop_with_parent"]

log = structlog.get_logger("bastion.supervisor")

SUPERVISOR_PID_ENV = "BASTION_SUPERVISOR_PID"
POLL_SECONDS = 0.5
DEATH_SIGNAL = signal.SIGUSR2
# After the kernel's signal, how often and how long the parent is looked at again.
RECHECK_INTERVAL = 0.05
RECHECK_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1


class _ParentWatch:
    """Sends SIGTERM to this process, once, when the parent is no longer `parent`."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        # Taken once and never released: the signal handler and the polling thread may both
        # notice, and a second SIGTERM would cut uvicorn's graceful shutdown short.
        self._once = threading.Lock()

    def check(self) -> bool:
        """True (and the process asked to stop) when the parent is gone."""
        if os.getppid() == self.parent:
            return False
        if self._once.acquire(blocking=False):
            # The output may be a pipe the dead supervisor held: stop even if it is broken.
            with contextlib.suppress(OSError):
                log.warning("supervisor gone, stopping", supervisor_pid=self.parent)
            os.kill(os.getpid(), signal.SIGTERM)
        return True

    def on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        if not self.check():
            # A thread of the supervisor ended, or its process is still being torn down (its
            # threads exit one by one, each exit signalling): look again, briefly, off the
            # signal handler.
            threading.Thread(
                target=self.poll_for, args=(RECHECK_INTERVAL, RECHECK_SECONDS), daemon=True
            ).start()

    def poll_for(self, interval: float, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.check() and time.monotonic() < deadline:
            time.sleep(interval)

    def poll(self, interval: float) -> None:
        while not self.check():
            time.sleep(interval)


def _supervisor_pid(environ: Mapping[str, str]) -> int | None:
    try:
        pid = int(environ.get(SUPERVISOR_PID_ENV, ""))
    except ValueError:
        return None
    return pid if pid > 1 else None


def _request_death_signal() -> bool:
    """Ask the Linux kernel for `DEATH_SIGNAL` when the parent thread exits."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    return bool(prctl(_PR_SET_PDEATHSIG, int(DEATH_SIGNAL), 0, 0, 0) == 0)


def stop_with_parent(
    *,
    environ: Mapping[str, str] | None = None,
    poll_seconds: float = POLL_SECONDS,
    death_signal: bool = True,
) -> bool:
    """Stop this process (SIGTERM to itself) once its supervisor is gone.

    Returns False, watching nothing, when no supervisor pid is in the environment. The kernel
    signal is requested only from the main thread (where Python runs signal handlers) and
    when `death_signal` is set; the polling thread runs in every case.
    """
    parent = _supervisor_pid(os.environ if environ is None else environ)
    if parent is None:
        return False
    watch = _ParentWatch(parent)
    if death_signal and threading.current_thread() is threading.main_thread():
        signal.signal(DEATH_SIGNAL, watch.on_signal)
        _request_death_signal()
    # After the kernel request: a parent that died before it was in place is noticed here.
    if not watch.check():
        threading.Thread(
            target=watch.poll, args=(poll_seconds,), name="bastion-parent-watch", daemon=True
        ).start()
    return True
