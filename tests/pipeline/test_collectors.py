"""Scrape-time collectors: one read per cache period whatever the scrape rate (concurrent
scrapes included), a failed read cached like a good one, counted, and leaving no sample; a queue
that cannot tell the age of its oldest message leaves that sample out."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from bastion.pipeline.collectors import ScrapeCollector, Source, queue_source
from bastion.storage.queue import SQLiteQueue, open_queue
from tests.observability.scrape import parse


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingRead:
    """A store read that counts its calls, can be made to fail, and can be held mid-read."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self) -> list[Metric]:
        self.calls += 1
        self.gate.wait(10)
        if self.fail:
            raise OSError("store unreachable")
        gauge = GaugeMetricFamily("test_store_items", "items", labels=["kind"])
        gauge.add_metric(["a"], 7)
        return [gauge]


def render(collector: ScrapeCollector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def errors(name: str) -> float:
    return REGISTRY.get_sample_value("bastion_collector_errors_total", {"collector": name}) or 0.0


def test_reads_happen_once_per_cache_period() -> None:
    clock, read = Clock(), CountingRead()
    collector = ScrapeCollector([Source("cached_store", read)], ttl=5.0, clock=clock)
    for _ in range(50):
        scraped = parse(render(collector))
    assert read.calls == 1
    assert scraped.value("test_store_items", kind="a") == 7
    assert scraped.value("bastion_collector_up", collector="cached_store") == 1
    clock.now += 5.0
    render(collector)
    assert read.calls == 2


def test_concurrent_scrapes_wait_for_one_read() -> None:
    read = CountingRead()
    read.gate.clear()
    collector = ScrapeCollector([Source("storm_store", read)], ttl=60.0)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(render, collector) for _ in range(8)]
        read.gate.set()
        texts = [f.result(timeout=10) for f in futures]
    assert read.calls == 1
    assert all(parse(t).value("test_store_items", kind="a") == 7 for t in texts)


def test_a_failed_read_gives_no_sample_is_counted_and_cached() -> None:
    clock, read = Clock(), CountingRead()
    read.fail = True
    collector = ScrapeCollector([Source("failing_store", read)], ttl=5.0, clock=clock)
    before = errors("failing_store")
    for _ in range(10):
        scraped = parse(render(collector))
        assert "test_store_items" not in scraped.samples
        assert scraped.value("bastion_collector_up", collector="failing_store") == 0
    assert read.calls == 1 and errors("failing_store") == before + 1
    read.fail = False
    clock.now += 5.0
    recovered = parse(render(collector))
    assert recovered.value("test_store_items", kind="a") == 7
    assert recovered.value("bastion_collector_up", collector="failing_store") == 1


def test_one_failing_source_leaves_the_others(tmp_path: Path) -> None:
    broken = CountingRead()
    broken.fail = True
    with SQLiteQueue(tmp_path / "queue.db") as queue:
        queue.send({"n": 1})
        collector = ScrapeCollector(
            [queue_source(queue, "q"), Source("broken_store", broken)], ttl=0
        )
        scraped = parse(render(collector))
    assert scraped.value("bastion_queue_messages", queue="q", state="visible") == 1
    assert scraped.value("bastion_queue_dead_letters", queue="q") == 0
    assert scraped.value("bastion_collector_up", collector="queue") == 1
    assert scraped.value("bastion_collector_up", collector="broken_store") == 0


def test_the_age_of_the_oldest_message_is_left_out_where_the_queue_cannot_tell(
    tmp_path: Path, sqs_queue_url: str
) -> None:
    with SQLiteQueue(tmp_path / "queue.db") as queue:
        queue.send({"n": 1})
        local = parse(render(ScrapeCollector([queue_source(queue, "q")], ttl=0)))
    assert local.value("bastion_queue_oldest_age_seconds", queue="q") > 0
    sqs = open_queue(sqs_queue_url)
    try:
        sqs.send({"n": 1})
        remote = parse(render(ScrapeCollector([queue_source(sqs, "q")], ttl=0)))
    finally:
        sqs.close()
    assert "bastion_queue_oldest_age_seconds" not in remote.samples  # SQS: CloudWatch tells it
    assert remote.value("bastion_queue_messages", queue="q", state="visible") == 1
    assert remote.value("bastion_collector_up", collector="queue") == 1
