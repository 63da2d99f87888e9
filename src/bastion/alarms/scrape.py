"""Scraping: each target's `GET /metrics` fetched with the gateway's credential and parsed.

Targets are the gateway and every configured agent (one per replica URL, `targets_from`). A
scrape sends the credential as `X-API-Key` through an egress client bound to exactly the
targets' origins (`bastion.egress.origin_policy`: no redirects, nowhere else), verifying TLS
as the other service calls do (`server.tls`: its CA and client certificate). The body is
read up to `max_bytes` and parsed with `prometheus_client.parser.text_string_to_metric_families`;
only the samples of the metrics the rules read are kept. A target that cannot be scraped
(refused, unreachable, an error status, a body that does not parse) yields an error and no
samples, and `bastion_alarm_target_up{target, instance}` is 0 for it; the key never appears
in an error.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bastion.alarms.metrics import TARGET_UP
from bastion.config import Settings
from bastion.core.audit_entry import AuditSink
from bastion.egress import egress_client, origin_policy
from bastion.security import SecretValue

__all__ = ["Sample", "ScrapeResult", "ScrapeTarget", "Scraper", "TargetStatus", "targets_from"]

METRICS_PATH = "/metrics"
API_KEY_HEADER = "X-API-Key"
MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ScrapeTarget:
    """One process to scrape: its name (an agent's, or `gateway`) and base URL."""

    name: str
    url: str

    @property
    def instance(self) -> str:
        """`host:port`, as Prometheus labels a target."""
        return urlsplit(self.url).netloc.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample: its name, its labels (sorted pairs) and its value."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(slots=True)
class ScrapeResult:
    """What one scrape of one target gave: samples, or the error that stopped it."""

    target: ScrapeTarget
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """The latest scrape of one target."""

    name: str
    url: str
    up: bool
    error: str | None
    scraped_at: float


def targets_from(settings: Settings, gateway: str = "gateway") -> list[ScrapeTarget]:
    """The gateway (`pipeline.gateway_url`) and every monitored agent's URL, each replica once."""
    targets = [ScrapeTarget(gateway, settings.pipeline.gateway_url.rstrip("/"))]
    for name, endpoint in sorted(settings.agents.items()):
        if not endpoint.monitored:
            continue
        targets.extend(ScrapeTarget(name, url) for url in endpoint.urls())
    return list(dict.fromkeys(targets))


def parse_samples(text: str, wanted: Collection[str]) -> list[Sample]:
    """The samples of `text` (Prometheus exposition format) whose name is in `wanted`."""
    samples = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                labels = tuple(sorted(sample.labels.items()))
                samples.append(Sample(sample.name, labels, float(sample.value)))
    return samples


class Scraper:
    """Scrapes every target concurrently with one credential."""

    def __init__(
        self,
        targets: Sequence[ScrapeTarget],
        api_key: SecretValue,
        *,
        principal: str = "gateway",
        audit: AuditSink | None = None,
        timeout_seconds: float = 5.0,
        verify: ssl.SSLContext | bool = True,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.targets = list(targets)
        self._api_key = api_key
        self._max_bytes = max_bytes
        self._http: httpx.AsyncClient | None = None
        if self.targets:
            self._http = egress_client(
                origin_policy(*(t.url for t in self.targets)),
                principal=principal,
                audit=audit,
                timeout=timeout_seconds,
                verify=verify,
                follow_redirects=False,
                trust_env=False,
            )

    async def scrape(self, wanted: Collection[str]) -> list[ScrapeResult]:
        """One result per target, in target order; never raises for a target's failure."""
        return list(await asyncio.gather(*(self._one(t, wanted) for t in self.targets)))

    async def _one(self, target: ScrapeTarget, wanted: Collection[str]) -> ScrapeResult:
        try:
            text = await self._fetch(target)
            samples = await asyncio.to_thread(parse_samples, text, wanted)
        except httpx.HTTPError as exc:  # EgressDenied included
            result = ScrapeResult(target, error=f"{type(exc).__name__}: {_reason(exc)}")
        except ValueError as exc:  # the parser's, or a body that is too large
            result = ScrapeResult(target, error=f"bad metrics text: {exc}")
        else:
            result = ScrapeResult(target, samples)
        TARGET_UP.labels(target.name, target.instance).set(1 if result.ok else 0)
        return result

    async def _fetch(self, target: ScrapeTarget) -> str:
        assert self._http is not None  # there are targets
        headers = {API_KEY_HEADER: self._api_key.get()}
        async with self._http.stream("GET", target.url + METRICS_PATH, headers=headers) as answer:
            if answer.status_code != 200:
                raise httpx.HTTPStatusError(
                    f"HTTP {answer.status_code}", request=answer.request, response=answer
                )
            body = bytearray()
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise ValueError(f"the body is larger than {self._max_bytes} bytes")
        return body.decode("utf-8", errors="replace")

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()


def _reason(exc: httpx.HTTPError) -> str:
    """The error without the request's headers (which hold the key): httpx never puts them in
    its messages, and a status error says only the status."""
    return str(exc) or "no answer"
