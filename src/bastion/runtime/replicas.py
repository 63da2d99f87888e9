"""The replicas of one agent: where each call to it goes.

An agent's address is one URL, a list of URLs, or a URL whose host is a DNS name that resolves
to several addresses. `ReplicaSet` turns that into replicas, one per URL with an IP host and
one per resolved address of a named host, and chooses one per call attempt:

* least outstanding requests, ties broken at random; a call counts as outstanding from its
  choice until its answer was read (a stream: until the stream ends);
* a `CircuitBreaker` per replica: a replica whose breaker refuses is passed over;
* with more than one replica, a background probe of every replica's `GET /readyz` (every
  `ClientSettings.replica_probe_seconds`); a replica that fails it is passed over until it
  passes again. A single replica is always tried: there is nothing to choose between;
* named hosts are resolved with the event loop's `getaddrinfo` (or the resolver given) at the
  first call, every `ClientSettings.dns_refresh_seconds`, and soon after a connection to one
  of their addresses failed, so a replica that went away (or came back at a new address) is
  noticed without a restart.

When no replica may be tried, the call fails fast with `ReplicasDown`, a `BreakerOpen` naming
the agent and how many replicas are down.

A request to a resolved address keeps the host name in the URL (the `Host` header, TLS SNI and
certificate verification all use the name); the connection is pinned to the address through
`pinned_resolver`, the resolver of the client's egress transport, for the duration of
`pinned_to(replica)`. Without the egress transport (a transport injected for tests or
in-process apps) names are not resolved: each URL is one replica.

Breaker metrics: each configured URL exports the breakers of its replicas as one,
`bastion_circuit_state{name=<scheme://host:port>}` (the configured address, never user input
nor a resolved IP), and counts the changes in `bastion_circuit_transitions_total{name, state}`.
A URL with an IP host is one replica: its breaker's state. A name stands for its resolved
addresses, which come and go with DNS: it shows the state of the most available of their
breakers (closed if any is closed, open only when every address's breaker is open), so it reads
2 exactly when calls to that name fail fast. The state is set when a breaker changes and when
the name's addresses change; an open breaker whose reset time has passed reads as half-open.
Two clients of one address in a process share the series: the last change shown wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import structlog

from bastion.config import ClientSettings
from bastion.egress import Resolver as EgressResolver
from bastion.egress import parse_ip
from bastion.egress import transport as egress_transport
from bastion.observability.metrics import observe_circuit_transition, set_circuit_state
from bastion.runtime.breaker import BreakerOpen, BreakerState, CircuitBreaker

__all__ = [
    "Replica",
    "ReplicaSet",
    "ReplicasDown",
    "Resolver",
    "loop_resolver",
    "pinned_resolver",
    "pinned_to",
    "replica_breaker",
]

log = structlog.get_logger("bastion.client")

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Host name and port to its addresses (async)."""
Probe = Callable[["Replica"], Awaitable[bool]]
"""Whether a replica is ready (its `/readyz` answered 200)."""
Clock = Callable[[], float]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_MIN_RESOLVE_GAP_SECONDS = 1.0

# (host name, address) the request being sent must connect to; read by `pinned_resolver`.
_pinned: ContextVar[tuple[str, str] | None] = ContextVar("bastion_replica_pin", default=None)


async def loop_resolver(host: str, port: int) -> list[str]:
    """The addresses of `host`, by the running event loop's `getaddrinfo`, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def pinned_resolver(fallback: EgressResolver | None = None) -> EgressResolver:
    """An egress resolver that answers the address a replica was pinned to (`pinned_to`), and
    asks `fallback` (default: the egress transport's `system_resolver`) for any other host."""

    def resolve(host: str, port: int) -> Sequence[str]:
        pin = _pinned.get()
        if pin is not None and pin[0] == host:
            return [pin[1]]
        return (fallback or egress_transport.system_resolver)(host, port)

    return resolve


@contextlib.contextmanager
def pinned_to(replica: Replica | None) -> Iterator[None]:
    """Within the block, a request to `replica`'s host connects to its resolved address."""
    if replica is None or replica.ip is None:
        yield
        return
    token = _pinned.set((replica.host, replica.ip))
    try:
        yield
    finally:
        _pinned.reset(token)


def display_address(url: str) -> str:
    """`scheme://host:port` of `url`: no credentials, path or query (a log and label value)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    return f"{scheme}://{host}:{port}"


def replica_breaker(
    settings: ClientSettings, url: str, ip: str | None = None, *, clock: Clock = time.monotonic
) -> CircuitBreaker:
    """The breaker of the replica at `url` (pinned to `ip` for a resolved name). The replica
    set it serves in exports it (see the module docstring)."""
    address = display_address(url)
    return CircuitBreaker(
        failure_threshold=settings.breaker_failure_threshold,
        reset_seconds=settings.breaker_reset_seconds,
        clock=clock,
        target=address if ip is None else f"{address} ({ip})",
    )


# Most available first: the state a configured URL shows is the first its replicas are in.
_AVAILABILITY = (BreakerState.CLOSED, BreakerState.HALF_OPEN, BreakerState.OPEN)


@dataclass(eq=False)
class Replica:
    """One place calls can go: `url` (as configured, the host name kept) and, for a resolved
    name, the address `ip` the connection is pinned to."""

    url: str
    ip: str | None
    breaker: CircuitBreaker
    outstanding: int = 0
    ready: bool = True

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def address(self) -> str:
        """The configured address (no credentials)."""
        return display_address(self.url)

    @property
    def name(self) -> str:
        """The address, and the resolved IP when there is one: for messages and logs."""
        return self.address if self.ip is None else f"{self.address} ({self.ip})"

    def usable(self) -> bool:
        """Not known to be down: ready, and a breaker that would not refuse outright."""
        return self.ready and self.breaker.state is not BreakerState.OPEN


class ReplicasDown(BreakerOpen):
    """No replica of the agent may be tried: each failed its readiness probe or has an open
    breaker. Nothing was sent."""

    def __init__(self, target: str, total: int, not_ready: int, retry_after: float) -> None:
        super().__init__(target, retry_after)
        self.total = total
        self.not_ready = not_ready
        self.args = (
            f"all {total} replicas of {target} are down ({not_ready} failing GET /readyz, "
            f"{total - not_ready} with an open circuit): failing fast, next trial in "
            f"{self.retry_after:.1f}s; check that the agent's replicas are running and ready "
            "(GET /readyz on each) and that its address lists them",
        )

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class _Source:
    """One configured URL: a fixed replica (IP host, or names not resolved), or a name whose
    replicas follow DNS."""

    url: str
    named: bool
    replicas: list[Replica] = field(default_factory=list)
    shown: BreakerState | None = None  # the state exported, once it was

    def show_breakers(self) -> None:
        """Export the state of the most available replica's breaker under the address."""
        states = {r.breaker.state for r in self.replicas}
        state = next((s for s in _AVAILABILITY if s in states), BreakerState.CLOSED)
        if state is self.shown:
            return
        if self.shown is None:
            set_circuit_state(display_address(self.url), state.value)
        else:
            observe_circuit_transition(display_address(self.url), state.value)
        self.shown = state


class ReplicaSet:
    """The replicas of one agent, and the choice of one per call attempt.

    `target` names the agent in messages. `resolver` resolves named hosts (None: they are not
    resolved, each URL is one replica; a name that does not resolve is one replica too, its
    URL left to the egress transport to resolve). `probe` tells whether a replica is ready;
    without it every replica counts as ready. `breaker` is used for a single URL (so that
    clients of one target can share it); otherwise each replica gets its own from `settings`.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        target: str,
        settings: ClientSettings,
        resolver: Resolver | None = None,
        probe: Probe | None = None,
        breaker: CircuitBreaker | None = None,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if not urls:
            raise ValueError(f"{target}: no URL configured; give one URL or a list of URLs")
        self.target = target
        self._settings = settings
        self._resolver = resolver
        self._probe = probe
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 (load spreading, not security)
        self._sources: list[_Source] = []
        self._shared = breaker if len(urls) == 1 else None
        for url in urls:
            named = resolver is not None and parse_ip(urlsplit(url).hostname or "") is None
            source = _Source(url.rstrip("/"), named)
            if not named:
                source.replicas.append(self._replica(source, None, self._shared))
            source.show_breakers()
            self._sources.append(source)
        self._started = False
        self._start_lock = asyncio.Lock()
        self._stale = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _replica(self, source: _Source, ip: str | None, breaker: CircuitBreaker | None) -> Replica:
        if breaker is None:
            breaker = replica_breaker(self._settings, source.url, ip, clock=self._clock)
        breaker.add_listener(source.show_breakers)
        return Replica(url=source.url, ip=ip, breaker=breaker)

    @property
    def replicas(self) -> list[Replica]:
        """Every replica currently known, in configuration (then resolver) order."""
        return [r for source in self._sources for r in source.replicas]

    # -- choosing ----------------------------------------------------------------------------

    async def pick(self, avoid: frozenset[Replica] = frozenset()) -> Replica:
        """A replica for one attempt, its breaker acquired and its outstanding count raised
        (give it back with `release`). Replicas in `avoid` (tried already by this call) are
        chosen only when no other may be tried. Raises `ReplicasDown` when none may."""
        await self.start()
        replicas = self.replicas
        single = len(replicas) == 1
        candidates = [r for r in replicas if r.ready or single]
        self._rng.shuffle(candidates)
        candidates.sort(key=lambda r: (r in avoid, r.outstanding))
        refusals: list[BreakerOpen] = []
        for replica in candidates:
            try:
                replica.breaker.acquire()
            except BreakerOpen as refused:
                refusals.append(refused)
                continue
            replica.outstanding += 1
            return replica
        if single:
            raise refusals[0]
        not_ready = len(replicas) - len(candidates)
        waits = [r.retry_after for r in refusals]
        if not_ready:
            waits.append(self._settings.replica_probe_seconds)
        raise ReplicasDown(self.target, len(replicas), not_ready, min(waits, default=0.0))

    def has_other(self, avoid: frozenset[Replica]) -> bool:
        """Whether a replica not in `avoid` is not known to be down."""
        return any(r not in avoid and r.usable() for r in self.replicas)

    def release(self, replica: Replica) -> None:
        """The call on `replica` is over (its answer read, its stream closed)."""
        replica.outstanding = max(0, replica.outstanding - 1)

    def connect_failed(self, replica: Replica) -> None:
        """A connection to `replica` failed: re-resolve its name soon (it may have moved)."""
        if replica.ip is not None:
            self._stale.set()

    # -- background: resolution and readiness -----------------------------------------------

    async def start(self) -> None:
        """Resolve names and probe readiness once, then keep doing so in the background.
        Called by the first `pick`; later calls return at once."""
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            await self.resolve_now()
            await self.probe_now()
            if any(s.named for s in self._sources) or len(self.replicas) > 1:
                self._task = asyncio.create_task(self._refresh(), name=f"replicas {self.target}")
            self._started = True

    async def resolve_now(self) -> None:
        """Resolve every named host and update its replicas: new addresses join (ready), gone
        ones leave (calls on them finish). A failed resolution keeps the known replicas."""
        self._stale.clear()
        for source in self._sources:
            if source.named:
                await self._resolve(source)

    async def _resolve(self, source: _Source) -> None:
        assert self._resolver is not None
        parts = urlsplit(source.url)
        host = parts.hostname or ""
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
        try:
            addresses = list(dict.fromkeys(await self._resolver(host, port)))
        except OSError as exc:
            log.warning(
                "replicas.resolve_failed",
                target=self.target,
                address=display_address(source.url),
                error=str(exc),
            )
            addresses = []
        if not addresses:
            # Keep the replicas known; with none, the URL itself is tried and the egress
            # transport resolves it per request (its errors name what is wrong).
            if not source.replicas:
                source.replicas = [self._replica(source, None, self._shared)]
                source.show_breakers()
            return
        known = {r.ip: r for r in source.replicas}
        source.replicas = [known.get(a) or self._replica(source, a, None) for a in addresses]
        source.show_breakers()
        if set(known) != set(addresses):
            log.info(
                "replicas.resolved",
                target=self.target,
                address=display_address(source.url),
                addresses=addresses,
            )

    async def probe_now(self) -> None:
        """Probe every replica's readiness once (all at a time), when there are several."""
        replicas = self.replicas
        if self._probe is None or len(replicas) < 2:
            return
        results = await asyncio.gather(*(self._probe(r) for r in replicas), return_exceptions=True)
        for replica, result in zip(replicas, results, strict=True):
            ready = result is True
            if replica.ready != ready:
                log.info(
                    "replicas.readiness",
                    target=self.target,
                    replica=replica.name,
                    ready=ready,
                )
            replica.ready = ready

    async def _refresh(self) -> None:
        s = self._settings
        last_resolve = self._clock()
        next_probe = last_resolve + s.replica_probe_seconds
        while True:
            now = self._clock()
            # A failed connection asks for a resolution now, but at most one a second.
            next_resolve = last_resolve + s.dns_refresh_seconds
            if self._stale.is_set():
                next_resolve = min(next_resolve, last_resolve + _MIN_RESOLVE_GAP_SECONDS)
            try:
                if now >= next_resolve:
                    last_resolve = now
                    await self.resolve_now()
                if now >= next_probe:
                    next_probe = now + s.replica_probe_seconds
                    await self.probe_now()
            except Exception:  # the loop must outlive any one failure
                log.exception("replicas.refresh_failed", target=self.target)
            wait = max(0.0, min(next_probe, next_resolve) - self._clock())
            if self._stale.is_set():
                await asyncio.sleep(min(wait, _MIN_RESOLVE_GAP_SECONDS))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stale.wait(), timeout=wait)

    async def aclose(self) -> None:
        """Stop the background resolution and probing; let go of a shared breaker."""
        if self._shared is not None:
            for source in self._sources:
                self._shared.remove_listener(source.show_breakers)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
