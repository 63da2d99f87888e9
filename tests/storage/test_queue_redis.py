"""The Redis Streams queue beyond the contract: its URL and keys, exclusive receives across
processes while messages keep timing out, long polls woken from other threads, the settings."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import yaml

from bastion.config import ConfigError, load_settings
from bastion.project import init_project
from bastion.storage.queue import Message, Queue, open_queue
from bastion.storage.queue.redis_streams import RedisStreamsQueue, display_url
from bastion.testing.ports import closed_port_url
from tests.cli.runner import run


@pytest.fixture
def opened(redis_queue_url: str) -> Iterator[Callable[..., RedisStreamsQueue]]:
    """Open Redis queues on the test's own prefix; closed at the end."""
    queues: list[RedisStreamsQueue] = []

    def make(**kw: Any) -> RedisStreamsQueue:
        q = open_queue(redis_queue_url, **kw)
        assert isinstance(q, RedisStreamsQueue)
        queues.append(q)
        return q

    yield make
    for q in queues:
        q.close()


def _prefix(url: str) -> str:
    return parse_qs(urlsplit(url).query)["prefix"][0]


def _raw(url: str) -> redis.Redis:
    plain = urlsplit(url)._replace(query="").geturl()
    return redis.Redis.from_url(plain, decode_responses=True)


# -- the URL and the keys ------------------------------------------------------------------------


def test_the_url_names_the_prefix_and_a_password_is_never_shown() -> None:
    assert display_url("rediss://user:s3cret@cache.internal:6380/2?prefix=x") == (
        "rediss://cache.internal:6380/2?prefix=x"
    )
    down = closed_port_url(scheme="redis").replace("redis://", "redis://:s3cret@") + "/0"
    with pytest.raises(ConnectionError, match="cannot reach the Redis queue") as info:
        open_queue(down)
    assert "s3cret" not in str(info.value)
    with pytest.raises(ValueError, match="queue name"):
        open_queue(down, name="a:b")
    with pytest.raises(ValueError, match="key prefix"):
        open_queue(down + "?prefix=has space")
    with pytest.raises(ValueError, match="database number"):
        open_queue(down.removesuffix("/0") + "/queue")
    with pytest.raises(ValueError, match="no_such_option") as info:
        open_queue(down + "?no_such_option=1")
    assert "s3cret" not in str(info.value)


def test_keys_live_under_the_prefix_in_one_stream_with_its_group_and_dlq(
    opened: Callable[..., RedisStreamsQueue], redis_queue_url: str
) -> None:
    queue = opened(name="docs", max_receive_count=2)
    consumer = queue.register_consumer(600)
    kept = queue.send({"n": 1})
    queue.send({"n": 2})
    [m] = queue.receive(visibility_timeout=600, consumer=consumer)
    assert m.id == kept
    stream = f"{_prefix(redis_queue_url)}:docs"
    raw = _raw(redis_queue_url)
    try:
        [group] = raw.xinfo_groups(stream)
        assert group["name"] == "bastion" and group["pending"] == 1
        [pending] = raw.xpending_range(stream, "bastion", "-", "+", 10)
        assert (pending["consumer"], pending["times_delivered"]) == (consumer, 1)
        assert queue.dead_letter(m.receipt_handle, "not_pdf")
        [(_, dead)] = raw.xrange(f"{stream}:dlq")
        assert (dead["id"], dead["reason"], dead["receives"]) == (kept, "not_pdf", "1")
        assert raw.xlen(stream) == 1 and raw.xpending(stream, "bastion")["pending"] == 0
        assert all(key.startswith(stream) for key in raw.scan_iter(match=f"{stream}*"))
    finally:
        raw.close()


def test_malformed_or_forged_receipts_are_refused(
    opened: Callable[..., RedisStreamsQueue],
) -> None:
    queue = opened()
    queue.send({"n": 1})
    [m] = queue.receive(visibility_timeout=600)
    token, _, entry = m.receipt_handle.partition(".")
    for forged in ("", "nonsense", f"{'0' * 32}.{entry}", f"{token}.1-1", f"{token}.x-y"):
        assert not queue.delete(forged)
        assert not queue.change_visibility(forged, 0)
        assert not queue.dead_letter(forged, "x")
    assert queue.delete(m.receipt_handle)


# -- two processes never hold the same receive ---------------------------------------------------


def _receive_until_empty(url: str, out: str, barrier: Any) -> None:
    queue = open_queue(url, max_receive_count=1000)
    barrier.wait()
    got: list[list[Any]] = []
    while messages := queue.receive(10, visibility_timeout=0.05, wait_seconds=1):
        for m in messages:
            # The first two receives let the message time out: whichever process claims it
            # first receives it again, so the two keep racing for the same messages.
            deleted = m.receive_count >= 3 and queue.delete(m.receipt_handle)
            got.append([m.id, m.receive_count, deleted])
    queue.close()
    Path(out).write_text(json.dumps(got))


def test_two_processes_never_receive_the_same_message_at_once(
    opened: Callable[..., RedisStreamsQueue], redis_queue_url: str, tmp_path: Path
) -> None:
    queue = opened()
    sent = {queue.send({"i": i}) for i in range(100)}
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    outs = [tmp_path / f"consumer-{n}.json" for n in range(2)]
    procs = [
        ctx.Process(target=_receive_until_empty, args=(redis_queue_url, str(out), barrier))
        for out in outs
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    per_process = [json.loads(out.read_text()) for out in outs]
    counts: dict[str, list[int]] = defaultdict(list)
    deletes: dict[str, int] = defaultdict(int)
    for rows in per_process:
        for msg_id, count, deleted in rows:
            counts[msg_id].append(count)
            deletes[msg_id] += deleted
    assert set(counts) == sent
    # Every receive of a message is one step of its count, taken by exactly one process.
    assert all(sorted(c) == list(range(1, len(c) + 1)) for c in counts.values())
    assert all(deletes[msg_id] == 1 for msg_id in sent)  # exactly one owner could delete it
    assert all(rows for rows in per_process)
    assert queue.depth() == 0 and queue.dlq_depth() == 0


# -- long polls ----------------------------------------------------------------------------------


class _Watched:
    """A queue's long-poll waits, seen from the test: each `XREAD BLOCK` and what woke it."""

    def __init__(self, queue: RedisStreamsQueue, monkeypatch: pytest.MonkeyPatch) -> None:
        self.waiting = threading.Event()
        self.blocks: list[int] = []
        self.woken_by: list[list[str]] = []
        client = queue._client
        xread = client.xread

        def watched(streams: dict[str, str], **kw: Any) -> Any:
            self.blocks.append(kw["block"])
            self.waiting.set()
            result = xread(streams, **kw)
            self.woken_by.append([stream for stream, _ in result or []])
            return result

        monkeypatch.setattr(client, "xread", watched)


def _poll_in_thread(queue: Queue, **kw: Any) -> tuple[threading.Thread, list[Message]]:
    got: list[Message] = []
    thread = threading.Thread(target=lambda: got.extend(queue.receive(**kw)), daemon=True)
    thread.start()
    return thread, got


def test_a_long_poll_returns_a_message_another_thread_sends_meanwhile(
    opened: Callable[..., RedisStreamsQueue], monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer, producer = opened(), opened()
    watch = _Watched(consumer, monkeypatch)
    thread, got = _poll_in_thread(consumer, wait_seconds=60)
    assert watch.waiting.wait(30)  # the poll found nothing and waits
    sent = producer.send({"late": True})
    thread.join(60)
    assert [(m.id, m.body) for m in got] == [(sent, {"late": True})]
    # The wait that ended was ended by the new entry (earlier ones, if the machine stalled past a
    # wait's time, ended empty).
    assert watch.woken_by[-1] == [consumer.stream]
    assert all(not streams for streams in watch.woken_by[:-1])


@pytest.mark.parametrize("release", ["change_visibility", "unregister_consumer"])
def test_a_long_poll_wakes_when_a_received_message_is_released(
    opened: Callable[..., RedisStreamsQueue], monkeypatch: pytest.MonkeyPatch, release: str
) -> None:
    consumer, holder = opened(), opened()
    mid = holder.send({"n": 1})
    holder_id = holder.register_consumer(600)
    [m] = holder.receive(visibility_timeout=600, consumer=holder_id)
    watch = _Watched(consumer, monkeypatch)
    thread, got = _poll_in_thread(consumer, wait_seconds=60)
    assert watch.waiting.wait(30)
    if release == "change_visibility":
        assert holder.change_visibility(m.receipt_handle, 0, reason="retry")
    else:
        assert holder.unregister_consumer(holder_id) == 1
    thread.join(60)
    assert [(x.id, x.receive_count) for x in got] == [(mid, 2)]
    assert [stream.rpartition(":")[2] for stream in watch.woken_by[-1]] == ["wake"]
    assert all(not streams for streams in watch.woken_by[:-1])


def test_a_long_poll_waits_no_longer_than_until_a_delayed_message_is_due(
    opened: Callable[..., RedisStreamsQueue], monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = opened()
    watch = _Watched(queue, monkeypatch)
    mid = queue.send({"later": True}, delay_seconds=1)
    assert [m.id for m in queue.receive(wait_seconds=60)] == [mid]
    # Not the whole minute, nor the longest wait between two looks (2.5 s): until it is due.
    assert all(block <= 1001 for block in watch.blocks)


# -- settings and commands -----------------------------------------------------------------------


def _project_with_queue(tmp_path: Path, queue_url: str) -> tuple[Path, dict[str, Any]]:
    config = init_project(tmp_path / "proj").config
    data = yaml.safe_load(config.read_text())
    data["pipeline"]["queue_url"] = queue_url
    config.write_text(yaml.safe_dump(data))
    return config, data


def test_pipeline_queue_url_accepts_redis_and_config_check_passes(tmp_path: Path) -> None:
    url = "rediss://:s3cret@cache.internal:6380/3?prefix=bastion:q"
    config, data = _project_with_queue(tmp_path, url)
    assert load_settings(config).pipeline.queue_url.startswith("rediss://")
    result = run("config", "check", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "holds the queue" not in result.output and "s3cret" not in result.output

    data["pipeline"]["queue_url"] = "amqp://guest:s3cret@broker/"
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"pipeline.queue_url: .*amqp:// .*redis://") as info:
        load_settings(config)
    assert "s3cret" not in str(info.value)


def test_status_and_dlq_commands_read_a_redis_queue(
    tmp_path: Path, opened: Callable[..., RedisStreamsQueue], redis_queue_url: str
) -> None:
    queue = opened()
    poison = queue.send({"document_id": "doc_poison"})
    [m] = queue.receive()
    assert queue.dead_letter(m.receipt_handle, "not_pdf")
    queue.send({"document_id": "doc_waiting"})
    config, _ = _project_with_queue(tmp_path, redis_queue_url)

    listed = run("dlq", "list", "--json", "--config", str(config))
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert (row["id"], row["document_id"], row["reason"]) == (poison, "doc_poison", "not_pdf")
    status = run("status", "--json", "--config", str(config))
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["queue"] == {
        "visible": 1,
        "in_flight": 0,
        "delayed": 0,
        "dead": 1,
    }


def test_commands_name_an_unreachable_redis_without_its_password(tmp_path: Path) -> None:
    down = closed_port_url(scheme="redis").replace("redis://", "redis://:s3cret@") + "/0"
    config, _ = _project_with_queue(tmp_path, down)
    for command in (["status"], ["dlq", "list"]):
        result = run(*command, "--config", str(config))
        assert result.exit_code != 0
        assert "cannot open the queue pipeline.queue_url=redis://127.0.0.1:" in result.output
        assert "cannot reach the Redis queue" in result.output
        assert "s3cret" not in result.output
