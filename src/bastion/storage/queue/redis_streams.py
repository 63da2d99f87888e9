"""The Redis Streams queue backend: a queue shared by workers on any number of hosts.

`redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=PREFIX]` (`rediss://` for TLS): the URL's
path picks the Redis database (0 when absent), `prefix` the key prefix (`bastion:queue` when
absent); other query options go to redis-py (`socket_timeout=` defaults to 5 s,
`socket_connect_timeout=` to 10 s). Queue `name` keeps its
messages in the stream `<prefix>:<name>` and its other keys beside it (`<prefix>:<name>:dlq`,
`:pending`, ...; see `redis_scripts`), so queue names are letters, digits, `_`, `.` and `-`.

Design. Each message is one stream entry (message id, body, sent time) and the stream has one
consumer group. A receive claims, in one Lua script: first the received entries whose visibility
ran out (`XCLAIM` of those ids), then new entries (`XREADGROUP ... >`). The group's pending
entries list (PEL) is the record of what is received and not deleted: its holder is the
consumer id given to `receive` (or `(nobody)`), its delivery count is the receive count
(`XCLAIM` adds one per receive, moving an entry to `(nobody)` uses `JUSTID`, which does not).
Visibility is per message, so it is kept beside the PEL rather than read from an entry's idle
time (one `XAUTOCLAIM` min-idle-time cannot tell a 600 s hold from a 0.3 s one, and an idle time
can only be set into the past): the sorted set `pending` holds each received entry's visible-at,
`expiring` those of entries on their last receive, which go to the DLQ stream
(`<prefix>:<name>:dlq`, with the reason and receive count) when their time runs out rather than
being received again. `change_visibility` moves the entry's time and hands it to `(nobody)`;
`delete` acknowledges and deletes the entry; a delayed message waits in the sorted set
`delayed` and joins the stream when due. Receipt handles are `<random token>.<entry id>`; the
token of the latest receive is kept per entry, so a stale handle is refused.

Every operation is one Lua script (atomic: two workers never both hold a message), and every
time in it is the Redis server's clock (`TIME`): visibility, delays, leases and retention agree
across hosts whatever their own clocks say. Long polls wait in `XREAD BLOCK` on the stream and
on a small wake stream (added to when messages become visible without a new entry), at most
until the next hidden or delayed message is due.

Consumers register in a hash (id, pid, host, node, start) with their lease in a sorted set;
`reclaim` hands the PEL entries of consumers whose lease ran out, who are said to be gone or who
are not registered to `(nobody)`, visible at once with their receive counts kept, and removes
those consumers from the group.

One Redis server (with replicas if wanted), not Redis Cluster: a queue's scripts use a dozen
keys that are not hash-tagged into one slot. Durability is the server's: with AOF and
`appendfsync everysec` a crash loses at most the last second; a failover to a replica that had
not yet received the last writes can lose or redeliver those messages. Redis 6.2 or later.

Retention counts from when a message entered the stream: its send, the end of its delay, or its
redrive (a message whose delay outlasts the retention is dropped when it comes due); dead
letters from when they died. Expired messages are purged as part of normal use.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.commands.core import Script
from redis.typing import EncodableT

from bastion.storage.queue import redis_scripts as lua
from bastion.storage.queue.base import (
    DEFAULT_MAX_RECEIVE_COUNT,
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_VISIBILITY_TIMEOUT,
    REASON_MAX_RECEIVES,
    Consumer,
    DeadLetter,
    InFlight,
    Message,
    QueueStats,
)
from bastion.storage.queue.checks import (
    MAX_REASON,
    check_lease,
    check_receive,
    check_settings,
    check_timeout,
    encode_body,
)
from bastion.storage.queue.identity import this_host, this_node
from bastion.storage.queue.url import display_url

DEFAULT_PREFIX = "bastion:queue"
GROUP = "bastion"
NOBODY = "(nobody)"  # the holder of received messages that no consumer holds
_SWEEP_LIMIT = 1000  # stream entries past retention purged per call
_REDRIVE_CHUNK = 500
# Seconds; the URL's socket_timeout= and socket_connect_timeout= override them.
_DEFAULT_SOCKET_TIMEOUT = 5.0
_CONNECT_TIMEOUT = 10.0
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
_ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_TOKEN = re.compile(r"[0-9a-f]{32}")

_SCRIPTS = {
    "send": lua.SEND,
    "receive": lua.RECEIVE,
    "delete": lua.DELETE,
    "change_visibility": lua.CHANGE_VISIBILITY,
    "dead_letter": lua.DEAD_LETTER,
    "redrive": lua.REDRIVE,
    "sweep": lua.SWEEP,
    "stats": lua.STATS,
    "oldest": lua.OLDEST,
    "register": lua.REGISTER,
    "unregister": lua.UNREGISTER,
    "reclaim": lua.RECLAIM,
    "consumers": lua.CONSUMERS,
    "in_flight": lua.IN_FLIGHT,
}


def _split_url(url: str) -> tuple[str, str]:
    """(the URL for redis-py, the key prefix) of a queue URL."""
    parts = urlsplit(url)
    if not re.fullmatch(r"/?[0-9]*", parts.path):
        raise ValueError(
            f"invalid Redis queue URL {display_url(url)}: its path is the database number "
            "(redis://HOST:PORT/0)"
        )
    options = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for key, value in options if key == "prefix"]
    rest = urlencode([(key, value) for key, value in options if key != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefixes[-1] if prefixes else DEFAULT_PREFIX


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _seconds(ms: str | int | float) -> float:
    return int(float(ms)) / 1000


def _entry_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


def _fields(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


class RedisStreamsQueue:
    """A `Queue` kept in Redis (see the module docstring); `client` must decode responses."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        name: str = "default",
        max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        check_settings(max_receive_count, retention_seconds)
        if not _NAME.fullmatch(name):
            raise ValueError(f"queue name {name!r}: use 1 to 200 letters, digits, '_', '.' or '-'")
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(
                f"Redis key prefix {prefix!r}: use 1 to 200 letters, digits, '_', '.', ':' or '-'"
            )
        self.name = name
        self.prefix = prefix
        self.max_receive_count = max_receive_count
        self.retention_seconds = float(retention_seconds)
        self._client = client
        kw = client.get_connection_kwargs()
        self._shown = f"{kw.get('host', kw.get('path'))}:{kw.get('port', '')}/{kw.get('db', 0)}"
        # A long poll's XREAD BLOCK ends well inside the socket timeout (redis-py's default: 5 s).
        self._max_block_ms = int(500 * (kw.get("socket_timeout") or _DEFAULT_SOCKET_TIMEOUT))
        self.stream = f"{prefix}:{name}"
        self._keys = [self.stream + (f":{k}" if k else "") for k in lua.KEY_NAMES]
        self._wake_key = self._keys[lua.KEY_NAMES.index("wake")]
        self._dlq_key = self._keys[lua.KEY_NAMES.index("dlq")]
        self._scripts: dict[str, Script] = {
            op: client.register_script(lua.script(body)) for op, body in _SCRIPTS.items()
        }

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        name: str = "default",
        max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> RedisStreamsQueue:
        """Connect to the queue at a `redis://` or `rediss://` URL (see the module docstring);
        the server must answer."""
        shown = display_url(url)
        address, prefix = _split_url(url)
        try:
            client = redis.Redis.from_url(
                address,
                decode_responses=True,
                socket_timeout=_DEFAULT_SOCKET_TIMEOUT,
                socket_connect_timeout=_CONNECT_TIMEOUT,
            )
        except (ValueError, TypeError) as exc:
            raise ValueError(f"invalid Redis queue URL {shown}: {exc}") from None
        try:
            queue = cls(
                client,
                prefix=prefix,
                name=name,
                max_receive_count=max_receive_count,
                retention_seconds=retention_seconds,
            )
            client.ping()
        except redis.RedisError as exc:
            client.close()
            raise ConnectionError(
                f"cannot reach the Redis queue at {shown}: {exc} (is Redis running there, and "
                "are the password and database number right?)"
            ) from None
        except TypeError as exc:  # an option redis-py does not know, seen on connecting
            client.close()
            raise ValueError(f"invalid Redis queue URL {shown}: {exc}") from None
        except ValueError:
            client.close()
            raise
        return queue

    def _run(self, op: str, *args: Any) -> Any:
        settings: list[EncodableT] = [
            GROUP,
            NOBODY,
            self.max_receive_count,
            _ms(self.retention_seconds),
            REASON_MAX_RECEIVES,
        ]
        with self._answering():
            return self._scripts[op](keys=self._keys, args=[*settings, *args])

    @contextmanager
    def _answering(self) -> Iterator[None]:
        """Redis unreachable or not answering: a `ConnectionError` (an `OSError`) naming the
        server, never its password."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise ConnectionError(
                f"the Redis queue at {self._shown} did not answer: {exc}"
            ) from exc

    def close(self) -> None:
        """Close the connections (the queue reconnects if used again)."""
        self._client.close()

    def __enter__(self) -> RedisStreamsQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- producer ---------------------------------------------------------------------------

    def send(self, body: dict[str, Any], *, delay_seconds: float = 0) -> str:
        payload = encode_body(body, delay_seconds)
        msg_id = uuid.uuid4().hex
        self._run("send", msg_id, payload, _ms(delay_seconds))
        return msg_id

    # -- consumer ---------------------------------------------------------------------------

    def receive(
        self,
        max_messages: int = 1,
        *,
        visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
        wait_seconds: float = 0,
        consumer: str | None = None,
    ) -> list[Message]:
        check_receive(max_messages, visibility_timeout, wait_seconds)
        if consumer == NOBODY:
            raise ValueError(f"{NOBODY!r} is not a consumer id (use register_consumer)")
        deadline = time.monotonic() + wait_seconds
        while True:
            tokens = [secrets.token_hex(16) for _ in range(max_messages)]
            raw, due_ms, last_entry, last_wake = self._run(
                "receive",
                consumer or NOBODY,
                max_messages,
                _ms(visibility_timeout),
                _SWEEP_LIMIT,
                *tokens,
            )
            messages = [self._message(*row) for row in raw]
            remaining_ms = (deadline - time.monotonic()) * 1000
            if messages or remaining_ms < 1:
                messages.sort(key=lambda m: _entry_order(m.receipt_handle.partition(".")[2]))
                return messages
            block = min(remaining_ms, self._max_block_ms)
            if due_ms >= 0:
                block = min(block, due_ms + 1)
            with self._answering():
                self._client.xread(
                    {self.stream: last_entry, self._wake_key: last_wake},
                    count=1,
                    block=max(1, int(block)),
                )

    @staticmethod
    def _message(entry_id: str, token: str, flat: list[str], count: int) -> Message:
        f = _fields(flat)
        return Message(
            id=f["id"],
            receipt_handle=f"{token}.{entry_id}",
            body=json.loads(f["body"]),
            receive_count=int(count),
            sent_at=_seconds(f["sent"]),
        )

    @staticmethod
    def _receipt(receipt_handle: str) -> tuple[str, str] | None:
        """(entry id, token) of a well-formed receipt handle."""
        token, _, entry_id = receipt_handle.partition(".")
        if _TOKEN.fullmatch(token) and _ENTRY_ID.fullmatch(entry_id):
            return entry_id, token
        return None

    def delete(self, receipt_handle: str) -> bool:
        receipt = self._receipt(receipt_handle)
        return receipt is not None and bool(self._run("delete", *receipt))

    def change_visibility(
        self, receipt_handle: str, timeout: float, *, reason: str | None = None
    ) -> bool:
        check_timeout(timeout)
        receipt = self._receipt(receipt_handle)
        if receipt is None:
            return False
        text, given = ("", "0") if reason is None else (reason[:MAX_REASON], "1")
        return bool(self._run("change_visibility", *receipt, _ms(timeout), text, given))

    def dead_letter(self, receipt_handle: str, reason: str) -> bool:
        receipt = self._receipt(receipt_handle)
        return receipt is not None and bool(self._run("dead_letter", *receipt, reason[:MAX_REASON]))

    # -- dead-letter queue ------------------------------------------------------------------

    def dlq_list(self, limit: int = 100) -> list[DeadLetter]:
        self._run("sweep", _SWEEP_LIMIT)
        return [
            DeadLetter(
                id=f["id"],
                body=json.loads(f["body"]),
                receive_count=int(f["receives"]),
                sent_at=_seconds(f["sent"]),
                dead_at=_seconds(_entry_order(entry_id)[0]),
                reason=f["reason"] or REASON_MAX_RECEIVES,
            )
            for entry_id, f in self._dlq_page("-", limit)
        ]

    def redrive(self, ids: list[str] | None = None) -> int:
        self._run("sweep", _SWEEP_LIMIT)
        wanted = None if ids is None else set(ids)
        chosen: list[str] = []
        start = "-"
        while page := self._dlq_page(start, 1000):
            chosen += [eid for eid, f in page if wanted is None or f["id"] in wanted]
            start = "(" + page[-1][0]
        return sum(
            int(self._run("redrive", *chosen[i : i + _REDRIVE_CHUNK]))
            for i in range(0, len(chosen), _REDRIVE_CHUNK)
        )

    def _dlq_page(self, start: str, count: int) -> list[tuple[str, dict[str, str]]]:
        """Up to `count` dead letters from entry `start` on: (entry id, fields)."""
        with self._answering():
            page = self._client.xrange(self._dlq_key, min=start, count=count) or []
        return [(str(eid), {str(k): str(v) for k, v in (f or {}).items()}) for eid, f in page]

    # -- introspection and maintenance ------------------------------------------------------

    def stats(self) -> QueueStats:
        visible, in_flight, delayed, dead = self._run("stats", _SWEEP_LIMIT)
        return QueueStats(
            visible=int(visible), in_flight=int(in_flight), delayed=int(delayed), dead=int(dead)
        )

    def oldest_age_seconds(self) -> float:
        return _seconds(self._run("oldest", _SWEEP_LIMIT))

    def depth(self) -> int:
        s = self.stats()
        return s.visible + s.in_flight + s.delayed

    def dlq_depth(self) -> int:
        return self.stats().dead

    def purge_expired(self) -> int:
        total = 0
        while True:
            purged, more = self._run("sweep", _SWEEP_LIMIT)
            total += int(purged)
            if not more:
                return total

    # -- consumers and leases ---------------------------------------------------------------

    def _identity(self, consumer_id: str, lease_seconds: float) -> list[Any]:
        check_lease(lease_seconds)
        return [consumer_id, os.getpid(), this_host(), this_node(), _ms(lease_seconds)]

    def register_consumer(self, lease_seconds: float) -> str:
        consumer_id = uuid.uuid4().hex
        self._run("register", *self._identity(consumer_id, lease_seconds), "0")
        return consumer_id

    def renew_lease(self, consumer_id: str, lease_seconds: float) -> bool:
        return bool(self._run("register", *self._identity(consumer_id, lease_seconds), "1"))

    def unregister_consumer(self, consumer_id: str) -> int:
        return int(self._run("unregister", consumer_id))

    def reclaim(self, gone: Collection[str] = ()) -> int:
        return int(self._run("reclaim", *gone))

    @staticmethod
    def _registry(rows: list[list[str]]) -> dict[str, Consumer]:
        consumers = {}
        for consumer_id, identity, lease_ms in rows:
            who = json.loads(identity)
            consumers[consumer_id] = Consumer(
                id=consumer_id,
                pid=int(who["pid"]),
                host=str(who["host"]),
                node=str(who["node"]),
                started_at=_seconds(who["started"]),
                lease_expires_at=_seconds(lease_ms),
            )
        return consumers

    def consumers(self) -> list[Consumer]:
        registry = self._registry(self._run("consumers"))
        return sorted(registry.values(), key=lambda c: (c.started_at, c.id))

    def in_flight(self, limit: int = 100) -> list[InFlight]:
        rows, registry_rows = self._run("in_flight")
        registry = self._registry(registry_rows)
        flights = []
        for entry_id, flat, holder, count, visible_ms, received_ms, error in rows:
            f = _fields(flat)
            consumer_id = None if holder == NOBODY else holder
            flight = InFlight(
                id=f["id"],
                body=json.loads(f["body"]),
                receive_count=int(count),
                sent_at=_seconds(f["sent"]),
                received_at=None if received_ms is None else _seconds(received_ms),
                visible_at=_seconds(visible_ms),
                consumer=None if consumer_id is None else registry.get(consumer_id),
                consumer_id=consumer_id,
                last_error=error,
            )
            flights.append((flight.sent_at, _entry_order(entry_id), flight))
        flights.sort(key=lambda row: row[:2])
        return [flight for _, _, flight in flights[:limit]]
