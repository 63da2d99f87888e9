"""AgentClient spread over an agent's replicas, each a real HTTP server on loopback.

Every fake replica answers `whoami` with its name, can hold a call open until told to let go,
and serves a `/readyz` whose answer the test sets. Probe rounds and resolutions are triggered
explicitly (`probe_now`, `resolve_now`); the background ones are set an hour apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import orjson
import pytest
import trustme
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bastion.config import AgentEndpoint, ClientSettings
from bastion.runtime.breaker import BreakerOpen, BreakerState
from bastion.runtime.client import AgentClient, AgentUnreachable, client_ssl_context
from bastion.runtime.replicas import Replica, ReplicasDown
from bastion.testing.live_server import LiveServer, serve_in_thread
from bastion.testing.ports import free_port

HOUR = 3600.0
WAIT_SECONDS = 15.0


def settings(**overrides: Any) -> ClientSettings:
    values: dict[str, Any] = {
        "max_retries": 3,
        "backoff_base_seconds": 0.0,
        "breaker_failure_threshold": 1,
        "breaker_reset_seconds": HOUR,
        "replica_probe_seconds": HOUR,
        "dns_refresh_seconds": HOUR,
        **overrides,
    }
    return ClientSettings(**values)


@dataclass
class FakeReplica:
    """One replica: answers `whoami` with its name; `hold` waits until `release` is set."""

    name: str
    ready: bool = True
    calls: int = 0
    hosts: list[str] = field(default_factory=list)
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/message", self._message, methods=["POST"]),
                Route("/readyz", self._readyz, methods=["GET"]),
            ]
        )

    async def _readyz(self, _request: Request) -> Response:
        return JSONResponse({"ready": self.ready}, status_code=200 if self.ready else 503)

    async def _wait_release(self) -> None:
        self.entered.set()
        await anyio.to_thread.run_sync(self.release.wait, WAIT_SECONDS)

    async def _message(self, request: Request) -> Response:
        self.calls += 1
        self.hosts.append(request.headers.get("host", ""))
        body = orjson.loads(await request.body())
        if body["method"] == "hold":
            await self._wait_release()
        if body["method"] == "stream":
            return StreamingResponse(self._events(body["id"]), media_type="text/event-stream")
        return JSONResponse({"jsonrpc": "2.0", "id": body["id"], "result": self.name})

    async def _events(self, rid: int) -> AsyncIterator[bytes]:
        for part in ("first", "last"):
            doc = {"jsonrpc": "2.0", "id": rid, "result": f"{self.name}:{part}"}
            yield b"data: " + orjson.dumps(doc) + b"\n\n"
            if part == "first":
                await self._wait_release()


class Running:
    """A fake replica served until `stop()`."""

    def __init__(
        self,
        fake: FakeReplica,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_options: dict[str, Any] | None = None,
    ) -> None:
        self.fake = fake
        self._cm = serve_in_thread(fake.app(), host=host, port=port, ssl_options=ssl_options)
        self.live: LiveServer = self._cm.__enter__()
        self.stopped = False

    @property
    def url(self) -> str:
        return self.live.url

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self._cm.__exit__(None, None, None)


@contextlib.contextmanager
def replicas(*names: str) -> Iterator[list[Running]]:
    running = [Running(FakeReplica(name)) for name in names]
    try:
        yield running
    finally:
        for r in running:
            r.fake.release.set()
            r.stop()


def replica_of(client: AgentClient, url: str) -> Replica:
    return next(r for r in client.replicas.replicas if r.url == url)


async def entered(fake: FakeReplica) -> None:
    assert await anyio.to_thread.run_sync(fake.entered.wait, WAIT_SECONDS)
    fake.entered.clear()


async def who(client: AgentClient, calls: int) -> list[str]:
    return [await client.call("whoami") for _ in range(calls)]


# -- spreading -------------------------------------------------------------------------------


async def test_calls_go_to_the_replica_with_the_fewest_outstanding() -> None:
    with replicas("a", "b", "c") as running:
        async with AgentClient([r.url for r in running], settings=settings()) as client:
            by_name = {r.fake.name: r.fake for r in running}
            first = asyncio.create_task(client.call("hold"))
            held1 = await _held_on(by_name)
            others = set(by_name) - {held1}
            assert set(await who(client, 30)) == others  # both idle ones, never the busy one

            second = asyncio.create_task(client.call("hold"))
            held2 = await _held_on(by_name)
            assert held2 in others
            (idle,) = others - {held2}
            assert set(await who(client, 10)) == {idle}

            for fake in by_name.values():
                fake.release.set()
            assert {await first, await second} == {held1, held2}
            assert all(r.outstanding == 0 for r in client.replicas.replicas)


async def _held_on(by_name: dict[str, FakeReplica]) -> str:
    """The name of the replica that has just entered a held call."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for name, fake in by_name.items():
            if fake.entered.is_set():
                fake.entered.clear()
                return name
        await asyncio.sleep(0.01)
    raise AssertionError("no replica received the held call")


async def test_a_stream_counts_as_outstanding_until_it_ends() -> None:
    with replicas("a", "b") as running:
        async with AgentClient([r.url for r in running], settings=settings()) as client:
            items: list[str] = []
            stream = client.stream("stream")
            items.append(await anext(stream))
            name = items[0].split(":")[0]
            busy = next(r for r in running if r.fake.name == name)
            assert replica_of(client, busy.url).outstanding == 1
            assert set(await who(client, 10)) == {"a", "b"} - {name}
            busy.fake.release.set()
            items.extend([item async for item in stream])
            assert items == [f"{name}:first", f"{name}:last"]
            assert replica_of(client, busy.url).outstanding == 0


# -- failures --------------------------------------------------------------------------------


async def test_a_stopped_replica_is_skipped_and_its_breaker_opens() -> None:
    with replicas("a", "b", "c") as running:
        async with AgentClient([r.url for r in running], settings=settings()) as client:
            assert set(await who(client, 30)) == {"a", "b", "c"}
            dead = running[1]
            dead.stop()
            breaker = replica_of(client, dead.url).breaker
            answers: list[str] = []
            for _ in range(200):  # each call picks at random among the idle replicas
                answers.append(await client.call("whoami"))
                if breaker.state is BreakerState.OPEN:
                    break
            assert breaker.state is BreakerState.OPEN
            gauge = REGISTRY.get_sample_value(
                "bastion_circuit_state", {"name": replica_of(client, dead.url).address}
            )
            assert gauge == 2
            assert "b" not in answers
            assert set(await who(client, 30)) == {"a", "c"}

            await client.replicas.probe_now()
            assert not replica_of(client, dead.url).ready


async def test_a_replica_failing_readyz_is_skipped_until_it_recovers() -> None:
    with replicas("a", "b", "c") as running:
        flaky = running[2].fake
        flaky.ready = False
        async with AgentClient([r.url for r in running], settings=settings()) as client:
            assert set(await who(client, 30)) == {"a", "b"}  # the first call probes first
            assert flaky.calls == 0

            flaky.ready = True
            await client.replicas.probe_now()
            seen: set[str] = set()
            for _ in range(200):
                seen.add(await client.call("whoami"))
                if "c" in seen:
                    break
            assert "c" in seen


async def test_all_replicas_down_fails_fast_naming_the_agent() -> None:
    with replicas("a", "b", "c") as running:
        for r in running:
            r.fake.ready = False
        async with AgentClient([r.url for r in running], settings=settings()) as client:
            with pytest.raises(ReplicasDown) as caught:
                await client.call("whoami")
            assert isinstance(caught.value, BreakerOpen)
            message = str(caught.value)
            assert running[0].url in message
            assert "all 3 replicas" in message
            assert "3 failing GET /readyz" in message
            assert all(r.fake.calls == 0 for r in running)

            running[0].fake.ready = True
            await client.replicas.probe_now()
            assert await client.call("whoami") == "a"


async def test_a_retry_goes_to_another_replica() -> None:
    with replicas("a", "b") as running:
        client_settings = settings(max_retries=1, breaker_failure_threshold=5)
        async with AgentClient([r.url for r in running], settings=client_settings) as client:
            await client.replicas.probe_now()  # both ready before the calls are counted
            assert set(await who(client, 10)) == {"a", "b"}
            dead = running[0]
            dead.stop()
            # Only one retry is allowed: each call that picked the dead replica first must
            # have been retried on the other one.
            assert set(await who(client, 30)) == {"b"}
            assert replica_of(client, dead.url).breaker.failures >= 1


# -- DNS -------------------------------------------------------------------------------------


class FakeDns:
    """A resolver hook: `agents.test` resolves to whatever `addresses` holds."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.lookups = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        assert host == "agents.test"
        self.lookups += 1
        return list(self.addresses)


@contextlib.contextmanager
def loopback_replicas(
    count: int, ssl_options: dict[str, Any] | None = None
) -> Iterator[tuple[int, list[Running]]]:
    """`count` replicas on 127.0.0.1, 127.0.0.2, ... all on one port."""
    port = free_port()
    running = [
        Running(FakeReplica(f"127.0.0.{i}"), f"127.0.0.{i}", port, ssl_options)
        for i in range(1, count + 1)
    ]
    try:
        yield port, running
    finally:
        for r in running:
            r.fake.release.set()
            r.stop()


@contextlib.asynccontextmanager
async def client_of_name(
    port: int, dns: FakeDns, scheme: str = "http", **options: Any
) -> AsyncIterator[AgentClient]:
    """A client of `agents.test` (resolved by `dns` to .1 and .2), once its calls were seen
    spread over both."""
    url = f"{scheme}://agents.test:{port}"
    async with AgentClient(url, settings=settings(), resolver=dns, **options) as client:
        assert set(await who(client, 30)) == {"127.0.0.1", "127.0.0.2"}
        yield client


async def test_a_name_spreads_over_its_addresses_and_follows_dns() -> None:
    with loopback_replicas(3) as (port, running):
        dns = FakeDns("127.0.0.1", "127.0.0.2")
        async with client_of_name(port, dns) as client:
            # The host name stays in the request: Host header (and SNI for https).
            assert {h for r in running for h in r.fake.hosts} == {f"agents.test:{port}"}

            dns.addresses = ["127.0.0.2", "127.0.0.3"]
            await client.replicas.resolve_now()
            assert {r.ip for r in client.replicas.replicas} == {"127.0.0.2", "127.0.0.3"}
            assert set(await who(client, 30)) == {"127.0.0.2", "127.0.0.3"}


async def test_https_replicas_of_a_name_are_verified_against_the_name(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("agents.test")  # valid for the name only, not for its addresses
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "c.pem", tmp_path / "k.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    options = {"ssl_certfile": str(cert_file), "ssl_keyfile": str(key_file)}
    with loopback_replicas(2, options) as (port, _running):
        dns = FakeDns("127.0.0.1", "127.0.0.2")
        ctx = client_ssl_context(ca_file=ca_file)
        async with client_of_name(port, dns, "https", ssl_context=ctx) as client:
            assert all(r.ready for r in client.replicas.replicas)  # probed over https too


async def test_a_connection_failure_makes_the_name_resolve_again() -> None:
    with loopback_replicas(3) as (port, running):
        dns = FakeDns("127.0.0.1", "127.0.0.2")
        async with client_of_name(port, dns) as client:
            lookups = dns.lookups
            running[0].stop()  # the replica at .1 went away and came back at .3
            dns.addresses = ["127.0.0.2", "127.0.0.3"]
            deadline = time.monotonic() + WAIT_SECONDS
            seen: set[str] = set()
            while "127.0.0.3" not in seen and time.monotonic() < deadline:
                seen.add(await client.call("whoami"))
                await asyncio.sleep(0.05)  # let the background resolution run
            assert "127.0.0.3" in seen
            assert dns.lookups > lookups


async def test_a_name_that_does_not_resolve_is_unreachable_as_before() -> None:
    dns = FakeDns()  # no address: the URL is tried as it is, resolved per request
    url = f"http://agents.test:{free_port()}"
    async with AgentClient(url, settings=settings(max_retries=0), resolver=dns) as client:
        with pytest.raises(AgentUnreachable, match=r"agents\.test"):
            await client.call("whoami")
        (replica,) = client.replicas.replicas
        assert replica.ip is None
        assert replica.breaker is client.breaker


# -- configuration ---------------------------------------------------------------------------


def test_an_agent_address_may_be_a_list_of_urls() -> None:
    endpoint = AgentEndpoint(url=["http://10.0.0.5:8003/", "http://10.0.0.6"], port=8003)
    assert endpoint.urls() == ["http://10.0.0.5:8003", "http://10.0.0.6:8003"]
    assert endpoint.base_url() == "http://10.0.0.5:8003"
    assert AgentEndpoint(url="http://10.0.0.5:8003").urls() == ["http://10.0.0.5:8003"]
    with pytest.raises(ValueError, match="empty list"):
        AgentEndpoint(url=[])


# -- breaker metrics -------------------------------------------------------------------------


def circuit(name: str) -> float | None:
    return REGISTRY.get_sample_value("bastion_circuit_state", {"name": name})


def opened(name: str) -> float:
    labels = {"name": name, "state": "open"}
    return REGISTRY.get_sample_value("bastion_circuit_transitions_total", labels) or 0.0


async def call_until_open(client: AgentClient, replica: Replica) -> None:
    """Call until `replica`'s breaker opens (each call picks at random among idle replicas)."""
    for _ in range(200):
        with contextlib.suppress(AgentUnreachable, BreakerOpen):
            await client.call("whoami")
        if replica.breaker.state is BreakerState.OPEN:
            return
    raise AssertionError(f"the breaker of {replica.name} did not open")


async def test_a_name_shows_the_breaker_of_its_most_available_address() -> None:
    with loopback_replicas(3) as (port, running):
        dns = FakeDns("127.0.0.1", "127.0.0.2")
        name = f"http://agents.test:{port}"
        async with client_of_name(port, dns) as client:
            assert circuit(name) == 0
            one, two = client.replicas.replicas
            running[0].stop()
            await call_until_open(client, one)
            assert circuit(name) == 0  # .2 still takes calls
            before = opened(name)
            running[1].stop()
            await call_until_open(client, two)
            assert circuit(name) == 2  # every address open: calls to the name fail fast
            assert opened(name) == before + 1
            with pytest.raises(ReplicasDown):
                await client.call("whoami")

            dns.addresses = ["127.0.0.3"]  # the agent came back elsewhere
            await client.replicas.resolve_now()
            assert circuit(name) == 0
            assert await client.call("whoami") == "127.0.0.3"
        # No series for the resolved addresses: only the configured name is a label value.
        assert circuit(f"http://127.0.0.1:{port}") is None
        assert circuit(f"http://agents.test:{port} (127.0.0.1)") is None


async def test_a_name_that_does_not_resolve_shows_its_own_breaker() -> None:
    dns = FakeDns()
    url = f"http://agents.test:{free_port()}"
    async with AgentClient(url, settings=settings(max_retries=0), resolver=dns) as client:
        assert circuit(url) == 0
        with pytest.raises(AgentUnreachable):
            await client.call("whoami")
        assert client.breaker.state is BreakerState.OPEN
        assert circuit(url) == 2
