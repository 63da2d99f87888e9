"""A consumer's lease on a queue, kept alive by a heartbeat thread, and the reclaiming of the
messages of consumers that are gone.

    lease = ConsumerLease(queue, lease_seconds=10)
    lease.start()                     # register, then reclaim what dead consumers held
    queue.receive(..., consumer=lease.consumer_id)
    lease.stop()                      # unregister: what it still holds is visible at once

The heartbeat renews the lease every third of the lease time, on its own thread (a busy event
loop does not make a live consumer look dead), and reclaims on each beat too: so a crashed
peer's messages go back to the queue while the other workers keep running, not only when one
starts. Reclaimed are the messages of consumers whose lease ran out and those of consumers whose
process is known gone (same node, pid no longer alive: see `identity`); a live lease's messages
are never touched.
"""

from __future__ import annotations

import threading

import structlog

from bastion.storage.queue.base import Queue
from bastion.storage.queue.identity import process_gone

log = structlog.get_logger("bastion.queue")


class ConsumerLease:
    """The registration of one consumer on `queue`, renewed until `stop()`."""

    def __init__(
        self, queue: Queue, lease_seconds: float, *, renew_every: float | None = None
    ) -> None:
        if not lease_seconds > 0:
            raise ValueError("lease_seconds must be positive")
        self.queue = queue
        self.lease_seconds = float(lease_seconds)
        self.renew_every = renew_every if renew_every is not None else self.lease_seconds / 3
        if not 0 < self.renew_every < self.lease_seconds:
            raise ValueError("renew_every must be positive and shorter than the lease")
        self.consumer_id: str | None = None
        self.reclaimed = 0  # messages this consumer has handed back from consumers that are gone
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Register, reclaim the messages of consumers that are gone, start the heartbeat;
        return how many messages were reclaimed."""
        if self.consumer_id is not None:
            raise RuntimeError("this lease is already started")
        self.consumer_id = self.queue.register_consumer(self.lease_seconds)
        released = self.reclaim()
        self._thread = threading.Thread(
            target=self._heartbeat, name="bastion-queue-lease", daemon=True
        )
        self._thread.start()
        return released

    def reclaim(self) -> int:
        """Hand back the messages of consumers whose lease ran out or whose process is gone."""
        gone = [
            c.id for c in self.queue.consumers() if c.id != self.consumer_id and process_gone(c)
        ]
        released = self.queue.reclaim(gone)
        if released:
            self.reclaimed += released
            log.warning(
                "reclaimed messages held by consumers that are gone",
                messages=released,
                dead_processes=len(gone),
            )
        return released

    def _heartbeat(self) -> None:
        consumer_id = self.consumer_id
        assert consumer_id is not None
        while not self._stop.wait(self.renew_every):
            try:
                if not self.queue.renew_lease(consumer_id, self.lease_seconds):
                    log.warning(
                        "this consumer's lease had lapsed: messages it held may have been "
                        "reclaimed and given to another consumer",
                        lease_seconds=self.lease_seconds,
                    )
                self.reclaim()
            except Exception:
                log.exception("queue lease heartbeat failed; retrying")

    def stop(self) -> int:
        """Stop the heartbeat and unregister; return how many held messages were handed back."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        consumer_id, self.consumer_id = self.consumer_id, None
        if consumer_id is None:
            return 0
        return self.queue.unregister_consumer(consumer_id)
