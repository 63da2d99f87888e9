"""Metrics read at scrape time from the pipeline's stores: queue depth and age, DLQ size,
documents.

Scrapes run in a thread (`bastion.runtime.metrics_endpoint`), so a source may block: the queue's
stats are read from the queue, the documents by status are asked of the archivist.

`ScrapeCollector` reads each of its sources at most once per `ttl` seconds, whatever the scrape
rate, so a scrape storm cannot hammer the database; concurrent scrapes wait for one read. A
source whose read fails (store down, file locked) gives no sample until its next read, counts in
`bastion_collector_errors_total{collector}` and shows as 0 in `bastion_collector_up{collector}`;
the scrape itself still succeeds. A failure is cached for `ttl` like a success.

    bastion_queue_messages{queue, state}    main queue messages: visible, in_flight, delayed
    bastion_queue_dead_letters{queue}       messages in the dead-letter queue
    bastion_queue_oldest_age_seconds{queue} seconds since the longest-waiting receivable message
                                            became visible (sent, delay or visibility ran out,
                                            handed back, redriven); 0 when none waits; in flight
                                            and not-yet-due delayed messages do not wait. Left
                                            out on SQS, which cannot tell it (see CloudWatch)
    bastion_documents{status}               documents by archive status (and `deleted`)
    bastion_collector_up{collector}         1 if the source's last read worked, else 0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import structlog
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bastion.observability.metrics import COLLECTOR_ERRORS
from bastion.storage import Queue

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "ScrapeCollector",
    "Source",
    "documents_source",
    "pipeline_collector",
    "queue_source",
]

DEFAULT_TTL_SECONDS = 5.0

log = structlog.get_logger("bastion.metrics")


@dataclass(frozen=True, slots=True)
class Source:
    """One store read at scrape time: `read` returns its metric families or raises."""

    name: str
    read: Callable[[], Iterable[Metric]]


@dataclass(slots=True)
class _Reading:
    at: float
    ok: bool
    metrics: list[Metric]


class ScrapeCollector(Collector):
    """Reads its sources at scrape time, each at most once per `ttl` seconds."""

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = tuple(sources)
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._readings: dict[str, _Reading] = {}

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            readings = [self._reading(source) for source in self.sources]
        up = GaugeMetricFamily(
            "bastion_collector_up",
            "Whether the last scrape-time read of a store worked (1) or failed (0)",
            labels=["collector"],
        )
        for source, reading in zip(self.sources, readings, strict=True):
            yield from reading.metrics
            up.add_metric([source.name], 1.0 if reading.ok else 0.0)
        yield up

    def _reading(self, source: Source) -> _Reading:
        now = self._clock()
        cached = self._readings.get(source.name)
        if cached is not None and now - cached.at < self.ttl:
            return cached
        try:
            reading = _Reading(now, True, list(source.read()))
        except Exception as exc:
            # Only the type: a driver's message may carry a connection string.
            log.warning("metrics read failed", collector=source.name, error=type(exc).__name__)
            COLLECTOR_ERRORS.labels(source.name).inc()
            reading = _Reading(now, False, [])
        self._readings[source.name] = reading
        return reading


def queue_source(queue: Queue, name: str) -> Source:
    """The depth of `queue` by state, its dead-letter queue's size and how long its oldest
    waiting message has waited, labelled `queue=name`."""

    def read() -> list[Metric]:
        stats = queue.stats()
        messages = GaugeMetricFamily(
            "bastion_queue_messages",
            "Messages on the queue by state (visible, in_flight, delayed)",
            labels=["queue", "state"],
        )
        messages.add_metric([name, "visible"], stats.visible)
        messages.add_metric([name, "in_flight"], stats.in_flight)
        messages.add_metric([name, "delayed"], stats.delayed)
        dead = GaugeMetricFamily(
            "bastion_queue_dead_letters",
            "Messages in the queue's dead-letter queue",
            labels=["queue"],
        )
        dead.add_metric([name], stats.dead)
        families: list[Metric] = [messages, dead]
        age = queue.oldest_age_seconds()
        if age is not None:  # SQS cannot tell (CloudWatch's ApproximateAgeOfOldestMessage can)
            oldest = GaugeMetricFamily(
                "bastion_queue_oldest_age_seconds",
                "Seconds the longest-waiting receivable message has waited (0: none waits)",
                labels=["queue"],
            )
            oldest.add_metric([name], age)
            families.append(oldest)
        return families

    return Source("queue", read)


def documents_source(counts: Callable[[], dict[str, int]]) -> Source:
    """The archive's documents by status (every status, zeros included, plus `deleted`), as
    `counts()` reads them (the gateway asks the archivist: `archivist.stats`)."""

    def read() -> list[Metric]:
        documents = GaugeMetricFamily(
            "bastion_documents", "Documents in the archive by status", labels=["status"]
        )
        for status, count in sorted(counts().items()):
            documents.add_metric([status], count)
        return [documents]

    return Source("documents", read)


def pipeline_collector(
    queue: Queue, counts: Callable[[], dict[str, int]], *, ttl: float = DEFAULT_TTL_SECONDS
) -> ScrapeCollector:
    """The pipeline queue (`queue="pipeline"`) and the archive's documents, read at scrape time."""
    return ScrapeCollector([queue_source(queue, "pipeline"), documents_source(counts)], ttl=ttl)
