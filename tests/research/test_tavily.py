"""The `tavily` search provider against a fake Tavily API on 127.0.0.1: results become sources
and passages, the key travels as a bearer token and nowhere else, the egress perimeter allows
only the configured origin, and the circuit breaker (5 failures in 60 s, a trial after 30 s)
fails fast while open and shows its state as a metric."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError

from bastion.config import Settings, TavilySettings
from bastion.egress import EgressDenied
from bastion.research.sources import SearchProvider
from bastion.research.tavily import (
    SearchFailed,
    SearchUnavailable,
    TavilySearch,
    tavily_breaker,
    tavily_client,
    url_source_id,
)
from bastion.runtime import BreakerState
from bastion.security import check_references
from bastion.testing.fake_tavily import FakeTavily, fake_tavily_server
from tests.observability.scrape import Scrape, parse

KEY = "tvly-test-5f0c1d2e3b4a59687766554433221100"
KEY_ENV = "BASTION_TEST_TAVILY_KEY"
KEY_REF = f"secret://env/{KEY_ENV}"
RETRIEVED_AT = 1_765_000_000.0

RESULTS: list[dict[str, Any]] = [
    {
        "title": "Arthur's Magazine",
        "url": "https://example.org/arthurs-magazine",
        "content": "Arthur's Magazine was an American literary periodical first published 1844.",
        "score": 0.81,
        "published_date": "2024-09-10",
    },
    {
        "title": "First for Women",
        "url": "https://example.org/first-for-women",
        "content": "First for Women is a woman's magazine published by Bauer Media Group.",
        "score": 0.93,
        "published_date": "Tue, 10 Sep 2024 17:37:12 GMT",
    },
    {"title": "No URL", "content": "a result without a URL is left out", "score": 0.99},
    {
        "title": "Arthur's Magazine (again)",
        "url": "https://example.org/arthurs-magazine",
        "content": "the same page twice: kept once, the better scored",
        "score": 0.10,
    },
    {
        "title": "",
        "url": "https://example.org/untitled",
        "content": "An untitled page.",
        "score": 0.42,
    },
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTavily]:
    monkeypatch.setenv(KEY_ENV, KEY)
    with fake_tavily_server(KEY, RESULTS) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def settings_for(fake: FakeTavily, **overrides: Any) -> TavilySettings:
    return TavilySettings(
        base_url=fake.url, api_key_ref=KEY_REF, **{"timeout_seconds": 5.0, **overrides}
    )


def provider(fake: FakeTavily, clock: FakeClock, **overrides: Any) -> TavilySearch:
    return TavilySearch(
        settings_for(fake, **overrides),
        base_dir=Path.cwd(),
        clock=lambda: RETRIEVED_AT,
        breaker=tavily_breaker(clock),
    )


def metrics() -> Scrape:
    return parse(generate_latest().decode())


def tavily_sample(scrape: Scrape, sample: str, **labels: str) -> float:
    """A sample of the `tavily` breaker (`Scrape.value` takes `name` for the sample's name)."""
    return scrape.samples.get(sample, {}).get(frozenset({"name": "tavily", **labels}.items()), 0.0)


def circuit_state() -> float:
    return tavily_sample(metrics(), "bastion_circuit_state")


async def fail_times(
    search: TavilySearch, fake: FakeTavily, clock: FakeClock, at: list[float]
) -> None:
    """One failed search (HTTP 503) at each of the clock times `at`."""
    for when in at:
        clock.now = when
        fake.fail(503)
        with pytest.raises(SearchFailed):
            await search.search("magazines", 3)


# --- results ------------------------------------------------------------------------------


async def test_results_become_sources_and_passages(fake: FakeTavily, clock: FakeClock) -> None:
    async with provider(fake, clock) as search:
        passages = await search.search("first magazine", 5)
    as_provider: SearchProvider = search  # the protocol, checked by mypy
    assert as_provider.name == "tavily"
    # Best first, one per URL, none without a URL.
    assert [p.source.url for p in passages] == [
        "https://example.org/first-for-women",
        "https://example.org/arthurs-magazine",
        "https://example.org/untitled",
    ]
    first, arthur, untitled = passages
    assert first.score == pytest.approx(0.93)
    assert first.text == RESULTS[1]["content"]
    assert first.index == 0
    source = first.source
    assert source.id == url_source_id("https://example.org/first-for-women")
    assert source.title == "First for Women"
    assert source.provider == "tavily"
    assert source.retrieved_at == RETRIEVED_AT
    assert source.snippet == source.text == RESULTS[1]["content"]
    assert source.published_at == datetime(2024, 9, 10, 17, 37, 12, tzinfo=UTC).timestamp()
    assert arthur.source.title == "Arthur's Magazine"
    assert arthur.source.published_at == datetime(2024, 9, 10, tzinfo=UTC).timestamp()
    assert untitled.source.published_at is None
    assert untitled.source.title == "https://example.org/untitled"  # no title: the URL
    assert fake.bodies == [{"query": "first magazine", "max_results": 5, "search_depth": "basic"}]


async def test_a_url_has_one_stable_id(fake: FakeTavily, clock: FakeClock) -> None:
    async with provider(fake, clock) as search:
        once = await search.search("magazines", 5)
        again = await search.search("other words", 5)
    assert [p.source.id for p in once] == [p.source.id for p in again]
    assert len({p.source.id for p in once}) == 3
    assert url_source_id("https://example.org/a") == url_source_id("https://example.org/a")
    assert url_source_id("https://example.org/a") != url_source_id("https://example.org/b")


async def test_the_limit_and_max_results_cap_the_request(
    fake: FakeTavily, clock: FakeClock
) -> None:
    async with provider(fake, clock, max_results=3) as search:
        assert len(await search.search("magazines", 10)) == 2  # 3 asked, one had no URL
        assert len(await search.search("magazines", 1)) == 1
        assert await search.search("magazines", 0) == []
        with pytest.raises(ValueError, match="empty"):
            await search.search("   ", 3)
    assert [b["max_results"] for b in fake.bodies] == [3, 1]


async def test_search_depth_is_sent(fake: FakeTavily) -> None:
    search = TavilySearch(settings_for(fake), base_dir=Path.cwd(), search_depth="advanced")
    async with search:
        await search.search("magazines", 2)
    assert fake.bodies[-1]["search_depth"] == "advanced"


# --- the key ------------------------------------------------------------------------------


async def test_the_key_is_sent_as_a_bearer_token_only(fake: FakeTavily, clock: FakeClock) -> None:
    async with provider(fake, clock) as search:
        await search.search("magazines", 2)
    assert fake.authorizations == [f"Bearer {KEY}"]
    assert KEY not in str(fake.bodies)


async def test_the_key_is_in_no_log_line_and_no_error(
    fake: FakeTavily, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[SearchFailed] = []
    async with provider(fake, clock) as search:
        await search.search("magazines", 2)
        fake.fail(500, detail=f"internal error serving key {KEY}")
        fake.fail(401, detail=f"Unauthorized: key {KEY} was revoked")
        fake.malformed()
        for _ in range(3):
            with pytest.raises(SearchFailed) as exc:
                await search.search("magazines", 2)
            errors.append(exc.value)
        assert KEY not in repr(search.__dict__)
    messages = [str(e) for e in errors]
    assert "HTTP 500: internal error serving key [redacted]" in messages[0]
    assert "HTTP 401" in messages[1] and "research.tavily.api_key_ref" in messages[1]
    assert "malformed JSON" in messages[2]
    assert all(KEY not in m for m in messages)
    assert caplog.records, "the failures are logged"
    assert KEY not in caplog.text


async def test_a_refused_key_says_what_to_fix_and_does_not_count(
    fake: FakeTavily, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "tvly-wrong-key")
    async with provider(fake, clock) as search:
        for _ in range(6):
            with pytest.raises(SearchFailed, match=r"HTTP 401.*api_key_ref"):
                await search.search("magazines", 2)
        assert search.breaker.state is BreakerState.CLOSED
    assert fake.received == 6


def test_the_key_must_be_a_reference() -> None:
    with pytest.raises(ValidationError, match="secret reference"):
        TavilySettings(api_key_ref=KEY)
    with pytest.raises(ValueError, match="api_key_ref is not set"):
        TavilySearch(TavilySettings(), base_dir=Path.cwd())
    assert Settings(research={"tavily": {"api_key_ref": KEY_REF}}).research.tavily.api_key_ref


def test_config_check_resolves_the_key_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(research={"tavily": {"api_key_ref": KEY_REF}})
    monkeypatch.delenv(KEY_ENV, raising=False)
    [check] = [c for c in check_references(settings) if c.key == "research.tavily.api_key_ref"]
    assert not check.ok and KEY_ENV in (check.problem or "")
    monkeypatch.setenv(KEY_ENV, KEY)
    [check] = [c for c in check_references(settings) if c.key == "research.tavily.api_key_ref"]
    assert check.ok


# --- egress -------------------------------------------------------------------------------


async def test_egress_allows_only_the_configured_origin(fake: FakeTavily) -> None:
    with fake_tavily_server(KEY, RESULTS) as other:
        async with tavily_client(settings_for(fake)) as http:
            allowed = await http.post(fake.url + "/search", json={})
            assert allowed.status_code == 401  # reached the configured server
            for url in (other.url, f"http://localhost:{fake.url.rsplit(':', 1)[1]}"):
                with pytest.raises(EgressDenied, match="not on the allow-list"):
                    await http.post(url + "/search", json={})
        assert other.received == 0
    assert fake.received == 1


# --- the circuit breaker ------------------------------------------------------------------


async def test_five_failures_within_60s_open_the_circuit(
    fake: FakeTavily, clock: FakeClock
) -> None:
    async with provider(fake, clock) as search:
        await fail_times(search, fake, clock, [5000, 5010, 5020, 5030])
        assert search.breaker.state is BreakerState.CLOSED
        await fail_times(search, fake, clock, [5059])
        assert search.breaker.state is BreakerState.OPEN
        clock.now = 5070
        with pytest.raises(SearchUnavailable, match="circuit is open") as exc:
            await search.search("magazines", 3)
    assert exc.value.retry_after == pytest.approx(19.0)
    assert fake.received == 5  # failing fast: nothing sent


async def test_five_failures_over_more_than_60s_do_not_open(
    fake: FakeTavily, clock: FakeClock
) -> None:
    async with provider(fake, clock) as search:
        await fail_times(search, fake, clock, [5000, 5020, 5040, 5060.5, 5080])
        assert search.breaker.state is BreakerState.CLOSED
        assert len(await search.search("magazines", 5)) == 3
    assert fake.received == 6


async def test_half_open_after_30s_lets_one_trial_through_and_closes_on_success(
    fake: FakeTavily, clock: FakeClock
) -> None:
    async with provider(fake, clock) as search:
        await fail_times(search, fake, clock, [5000, 5001, 5002, 5003, 5004])
        clock.now = 5004 + 29.9
        with pytest.raises(SearchUnavailable):
            await search.search("magazines", 3)
        clock.now = 5004 + 30
        fake.slow(30)  # the trial is held until released
        trial = asyncio.create_task(search.search("magazines", 3))
        await until(lambda: fake.received == 6)
        assert search.breaker.state is BreakerState.HALF_OPEN
        with pytest.raises(SearchUnavailable):  # one trial at a time
            await search.search("magazines", 3)
        fake.release()
        assert len(await trial) == 2
        assert search.breaker.state is BreakerState.CLOSED
        assert len(await search.search("magazines", 5)) == 3
    assert fake.received == 7


async def test_a_failed_trial_opens_the_circuit_again(fake: FakeTavily, clock: FakeClock) -> None:
    async with provider(fake, clock) as search:
        await fail_times(search, fake, clock, [5000, 5001, 5002, 5003, 5004])
        await fail_times(search, fake, clock, [5034])  # the trial
        assert search.breaker.state is BreakerState.OPEN
        clock.now = 5050
        with pytest.raises(SearchUnavailable) as exc:
            await search.search("magazines", 3)
        assert exc.value.retry_after == pytest.approx(14.0)
        clock.now = 5064
        assert len(await search.search("magazines", 5)) == 3
        assert search.breaker.state is BreakerState.CLOSED
    assert fake.received == 7


async def test_slow_answers_time_out_and_count_as_failures(
    fake: FakeTavily, clock: FakeClock
) -> None:
    async with provider(fake, clock, timeout_seconds=0.2) as search:
        fake.slow(30, times=2)
        for _ in range(2):
            with pytest.raises(SearchFailed, match=r"did not answer within 0\.2 s"):
                await search.search("magazines", 3)
        assert search.breaker.failures == 2
        fake.release()
        fake.clear()  # a timed-out request the fake never saw left its slow answer queued
        await fail_times(search, fake, clock, [5001, 5002, 5003])
        assert search.breaker.state is BreakerState.OPEN


async def test_malformed_answers_count_as_failures(fake: FakeTavily, clock: FakeClock) -> None:
    async with provider(fake, clock) as search:
        fake.malformed(times=5)
        for _ in range(5):
            with pytest.raises(SearchFailed, match="malformed JSON"):
                await search.search("magazines", 3)
        assert search.breaker.state is BreakerState.OPEN


async def test_the_metric_shows_each_state(fake: FakeTavily, clock: FakeClock) -> None:
    before = metrics()
    async with provider(fake, clock) as search:
        assert circuit_state() == 0  # closed
        await fail_times(search, fake, clock, [5000, 5001, 5002, 5003, 5004])
        assert circuit_state() == 2  # open
        clock.now = 5034
        fake.slow(30)
        trial = asyncio.create_task(search.search("magazines", 3))
        await until(lambda: fake.received == 6)
        assert circuit_state() == 1  # half-open, the trial in flight
        fake.release()
        await trial
        assert circuit_state() == 0  # closed again
    after = metrics()
    for state in ("open", "half_open", "closed"):
        counted = [
            tavily_sample(scrape, "bastion_circuit_transitions_total", state=state)
            for scrape in (before, after)
        ]
        assert counted[1] - counted[0] == 1, state


async def until(condition: Any, timeout: float = 10.0) -> None:
    """Wait (polling, bounded) until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
