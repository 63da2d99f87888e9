"""moto's server (SQS, S3, ...) in a process of its own, for the tests: `python -m
tests.moto_server PORT` serves 127.0.0.1:PORT, prints "ready" once it listens, and stops when its
standard input closes. A process of its own, so that the tests' own work (and the consumer
processes they start) does not compete with it for one interpreter.

moto's SQS changes a queue's messages without a lock (a delete rebuilds the list, so two at once
can undo each other; two receives can take one message): its requests that change messages run
under the queue's own lock here, which a long poll lets go while it waits. Real SQS has no such
races.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_SQS_WRITES = (
    "receive_message",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "send_message",
    "send_message_batch",
)


def _locked_per_queue(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` of moto's SQS backend run under its queue's lock."""

    @functools.wraps(method)
    def run(backend: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs["queue_name"] if "queue_name" in kwargs else args[0]
        with backend.get_queue(name)._messages_lock:
            return method(backend, *args, **kwargs)

    return run


def main(port: int) -> None:
    from moto.server import ThreadedMotoServer
    from moto.sqs.models import SQSBackend

    for name in _SQS_WRITES:
        setattr(SQSBackend, name, _locked_per_queue(getattr(SQSBackend, name)))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print("ready", flush=True)
    sys.stdout = sys.stderr  # nobody reads the pipe from now on
    sys.stdin.read()  # until the tests close it
    server.stop()


@contextlib.contextmanager
def running() -> Iterator[str]:
    """This server in a child process on a free loopback port, for the tests and the
    benchmarks: its endpoint URL; stopped (its standard input closed) afterwards."""
    from bastion.testing.ports import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.moto_server", str(port)],
        cwd=Path(__file__).resolve().parent.parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("moto's server did not start: is moto[server] installed?")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


if __name__ == "__main__":
    main(int(sys.argv[1]))
