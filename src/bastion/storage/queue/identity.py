"""Who a queue consumer is, and whether a registered consumer's process is known to be gone.

A consumer records its pid, its host name and its *node*: this boot of this machine (the kernel's
boot id) and the pid namespace it runs in (a container has its own). A pid can only be checked
from the same node; there a consumer whose process no longer exists is gone for certain, and its
messages need not wait for its lease to run out. From anywhere else only the lease tells.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

from bastion.storage.queue.base import Consumer

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_PID_NAMESPACE = Path("/proc/self/ns/pid")


@functools.cache
def this_node() -> str:
    """This boot of this host and this pid namespace; "" where that cannot be told (then no
    consumer is ever judged gone by its pid)."""
    try:
        boot = _BOOT_ID.read_text(encoding="ascii").strip()
        namespace = os.stat(_PID_NAMESPACE).st_ino
    except OSError:
        return ""
    return f"{boot}/pidns:{namespace}" if boot else ""


def this_host() -> str:
    return socket.gethostname()


def process_gone(consumer: Consumer) -> bool:
    """True only if `consumer` ran on this node and its process no longer exists."""
    node = this_node()
    if not node or consumer.node != node or consumer.pid <= 0:
        return False
    if consumer.pid == os.getpid():
        return False
    try:
        os.kill(consumer.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return _zombie(consumer.pid)


def _zombie(pid: int) -> bool:
    """A process that has exited but whose parent has not collected it yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
