"""The `tavily` search provider: web search through the Tavily API (`POST {base_url}/search`),
behind a circuit breaker, its results turned into `Source`s and `Passage`s.

The API key comes from a `secret://` reference (`research.tavily.api_key_ref`) through a
`Secret` handle, re-read after its TTL so a rotated key is used without a restart; it is sent as
`Authorization: Bearer <key>` and never appears in a log line or an error message (an error text
the server sends back is shown with the key taken out).

All HTTP goes through the egress perimeter: the client may reach exactly `base_url`'s scheme,
host and port (`origin_policy`), and follows no redirect.

The breaker (`tavily_breaker`) opens after 5 failures within 60 s; while it is open a search
fails fast with `SearchUnavailable` and nothing is sent; after 30 s one trial call goes through,
whose success closes it and whose failure opens it again. Failures are what says the service is
unwell: no answer in `timeout_seconds`, no connection, HTTP 429 or 5xx, a redirect, a body that
is not the API's JSON. A 4xx answer (a bad key, a bad request) proves the service is up: the
search fails with a message saying what to fix, and the breaker counts a success. A request the
egress policy refuses never left: the breaker counts nothing. The breaker's state is the
`bastion_circuit_state{name="tavily"}` metric.

A result becomes one `Source` (id: a hash of its URL, so the same page has the same id in every
search; `snippet` the result's content; `published_at` from `published_date` when Tavily gives
it) and one `Passage` of it, scored with Tavily's relevance score; passages come best first,
one per URL.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson

from bastion._version import __version__
from bastion.aio import AsyncClosing
from bastion.config import SecretsSettings, TavilySettings
from bastion.egress import EgressDenied, egress_client, origin_policy
from bastion.research.sources import Passage, Source
from bastion.runtime import BreakerOpen, CircuitBreaker
from bastion.security import Secret

__all__ = [
    "FAILURE_THRESHOLD",
    "FAILURE_WINDOW_SECONDS",
    "NAME",
    "RESET_SECONDS",
    "SearchFailed",
    "SearchUnavailable",
    "TavilySearch",
    "tavily_breaker",
    "tavily_client",
    "url_source_id",
]

log = logging.getLogger(__name__)

NAME = "tavily"
SEARCH_PATH = "/search"
USER_AGENT = f"bastion-research/{__version__}"
FAILURE_THRESHOLD = 5
FAILURE_WINDOW_SECONDS = 60.0
RESET_SECONDS = 30.0
_REDACTED = "[redacted]"
_ERROR_DETAIL_CHARS = 200

Clock = Callable[[], float]
SearchDepth = Literal["basic", "advanced"]


class SearchFailed(Exception):
    """A search brought back nothing usable; the message says why (never the key)."""


class SearchUnavailable(SearchFailed):
    """The provider's circuit is open: the search was refused locally, nothing was sent.
    `retry_after` is how long until the next trial call is let through."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Failure(Exception):
    """Internal: why a call failed, and whether it counts against the breaker."""

    def __init__(self, message: str, *, counts: bool) -> None:
        super().__init__(message)
        self.counts = counts


def tavily_breaker(clock: Clock = time.monotonic) -> CircuitBreaker:
    """The breaker in front of Tavily: opens after 5 failures within 60 s, one trial after 30 s,
    exported as `bastion_circuit_state{name="tavily"}`."""
    return CircuitBreaker(
        failure_threshold=FAILURE_THRESHOLD,
        failure_window_seconds=FAILURE_WINDOW_SECONDS,
        reset_seconds=RESET_SECONDS,
        clock=clock,
        target=NAME,
        metric_name=NAME,
    )


def tavily_client(settings: TavilySettings) -> httpx.AsyncClient:
    """The provider's HTTP client: the egress perimeter allowing exactly `base_url`'s origin,
    no redirects, the configured timeout."""
    return egress_client(
        origin_policy(settings.base_url),
        principal=f"research:{NAME}",
        headers={"User-Agent": USER_AGENT},
        timeout=settings.timeout_seconds,
        follow_redirects=False,
    )


def url_source_id(url: str) -> str:
    """A source's id from its URL: stable across searches, runs and providers."""
    return hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:32]


class TavilySearch(AsyncClosing):
    """A `SearchProvider` over the Tavily search API (see the module docstring).

    `base_dir` is the folder `secret://file/...` references are relative to (the configuration
    file's); `secrets` how references are resolved (default: the process's). `clock` gives
    `retrieved_at` (Unix time); `breaker` defaults to `tavily_breaker()`.
    """

    def __init__(
        self,
        settings: TavilySettings,
        *,
        base_dir: Path,
        secrets: SecretsSettings | None = None,
        search_depth: SearchDepth = "basic",
        clock: Clock = time.time,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if settings.api_key_ref is None:
            raise ValueError(
                "research.tavily.api_key_ref is not set: give the Tavily API key as a secret "
                "reference (e.g. secret://env/TAVILY_API_KEY)"
            )
        self._settings = settings
        self._url = settings.base_url + SEARCH_PATH
        self._search_depth = search_depth
        self._clock = clock
        self._key = Secret(settings.api_key_ref, base_dir, secrets)
        self.breaker = breaker or tavily_breaker()
        self._http = tavily_client(settings)

    @property
    def name(self) -> str:
        return NAME

    async def aclose(self) -> None:
        await self._http.aclose()

    async def search(self, query: str, limit: int) -> list[Passage]:
        """At most `limit` passages for `query`, best first. Raises `SearchUnavailable` while
        the circuit is open, `SearchFailed` when the search brought back nothing usable."""
        if not query.strip():
            raise ValueError("the search query is empty")
        if limit < 1:
            return []
        try:
            self.breaker.acquire()
        except BreakerOpen as exc:
            raise SearchUnavailable(
                f"tavily search is unavailable: its circuit is open after repeated failures "
                f"({FAILURE_THRESHOLD} within {FAILURE_WINDOW_SECONDS:g} s); "
                f"next trial in {exc.retry_after:.1f} s",
                exc.retry_after,
            ) from None
        try:
            doc = await self._post(query, min(limit, self._settings.max_results))
            passages = self._passages(doc, limit)
        except _Failure as exc:
            message = f"tavily search at {self._settings.base_url} {self._redact(str(exc))}"
            if exc.counts:
                self.breaker.record_failure()
            else:
                self.breaker.record_success()  # the service answered: it is up
            log.warning("%s", message)
            raise SearchFailed(message) from None
        except EgressDenied as exc:
            self.breaker.release()  # nothing was sent
            raise SearchFailed(
                f"tavily search at {self._settings.base_url} is outside the egress policy: {exc}"
            ) from None
        except BaseException:
            self.breaker.release()  # cancelled: no verdict
            raise
        self.breaker.record_success()
        return passages

    async def _post(self, query: str, max_results: int) -> Any:
        """The decoded answer of one search call, or a `_Failure`."""
        body = orjson.dumps(
            {"query": query, "max_results": max_results, "search_depth": self._search_depth}
        )
        headers = {
            "Authorization": f"Bearer {self._key.get().get()}",
            "Content-Type": "application/json",
        }
        timeout = self._settings.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                response = await self._http.post(self._url, content=body, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            raise _Failure(f"did not answer within {timeout:g} s", counts=True) from None
        except EgressDenied:
            raise
        except httpx.HTTPError as exc:
            raise _Failure(f"cannot be reached ({type(exc).__name__})", counts=True) from None
        return _decode(response)

    def _passages(self, doc: Any, limit: int) -> list[Passage]:
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, list):
            raise _Failure("sent an answer without a results list", counts=True)
        retrieved_at = self._clock()
        passages = [p for p in (_passage(i, retrieved_at) for i in results) if p is not None]
        passages.sort(key=lambda p: -p.score)  # stable: Tavily's order among equal scores
        seen: set[str] = set()
        best: list[Passage] = []
        for passage in passages:
            if passage.source.id not in seen:
                seen.add(passage.source.id)
                best.append(passage)
        return best[:limit]

    def _redact(self, text: str) -> str:
        key = self._key.get().get()
        return text.replace(key, _REDACTED) if key else text


def _decode(response: httpx.Response) -> Any:
    status = response.status_code
    if status == 429 or status >= 500:
        raise _Failure(f"answered HTTP {status}: {_error_detail(response)}", counts=True)
    if 300 <= status < 400:
        raise _Failure(f"answered HTTP {status} (a redirect, not followed)", counts=True)
    if status >= 400:
        hint = "check research.tavily.api_key_ref" if status in (401, 403) else "check the query"
        raise _Failure(
            f"refused the search with HTTP {status}: {_error_detail(response)} ({hint})",
            counts=False,
        )
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise _Failure("sent malformed JSON", counts=True) from None


def _error_detail(response: httpx.Response) -> str:
    """Tavily's own error message (`{"detail": {"error": ...}}`), shortened."""
    try:
        doc = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        doc = None
    detail = doc.get("detail") if isinstance(doc, dict) else None
    if isinstance(detail, dict):
        detail = detail.get("error")
    text = detail if isinstance(detail, str) else response.reason_phrase or "no detail"
    return text[:_ERROR_DETAIL_CHARS]


def _passage(item: Any, retrieved_at: float) -> Passage | None:
    """One result as a passage of its source; None for a result without a URL."""
    if not isinstance(item, dict):
        return None
    url = _text(item.get("url"))
    if not url:
        return None
    content = _text(item.get("content"))
    source = Source(
        id=url_source_id(url),
        title=_text(item.get("title")) or url,
        provider=NAME,
        retrieved_at=retrieved_at,
        snippet=content,
        text=_text(item.get("raw_content")) or content,
        url=url,
        published_at=_published_at(item.get("published_date")),
    )
    score = item.get("score")
    relevance = (
        float(score) if isinstance(score, int | float) and not isinstance(score, bool) else 0.0
    )
    return Passage(source=source, index=0, text=content, score=relevance)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _published_at(value: Any) -> float | None:
    """`published_date` as a Unix time: ISO 8601 (`2024-09-10`, `2024-09-10T17:37:12Z`) or an
    RFC 2822 date (`Tue, 10 Sep 2024 17:37:12 GMT`); a date without a zone is read as UTC;
    None when absent or unreadable."""
    text = _text(value)
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
