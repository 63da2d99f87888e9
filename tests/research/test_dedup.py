"""Source deduplication: normalised URLs, near-identical texts, and which source is kept."""

from __future__ import annotations

import itertools

import pytest

from bastion.research.dedup import deduplicate, normalize_url, shingles
from bastion.research.sources import Source
from bastion.research.text import jaccard

TEXT = (
    "The harbour authority confirmed on Monday that the northern breakwater will be rebuilt "
    "over the next two years, with work starting in the spring and the ferry terminal staying "
    "open throughout the construction period according to the published plan"
)


def source(id: str, text: str = "", url: str | None = None, provider: str = "web") -> Source:
    return Source(id=id, title=id, provider=provider, retrieved_at=0.0, snippet=text[:40],
                  text=text, url=url)  # fmt: skip


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("HTTPS://Example.COM:443/a/b/", "https://example.com/a/b"),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("https://example.com/a?utm_source=x&utm_Medium=y&id=3#part", "https://example.com/a?id=3"),
        ("https://example.com/a?b=2&a=1&fbclid=z&gclid=q", "https://example.com/a?a=1&b=2"),
        ("https://example.com./", "https://example.com/"),
        ("https://example.com/A/Path", "https://example.com/A/Path"),  # paths keep their case
    ],
)
def test_normalize_url(url: str, normal: str) -> None:
    assert normalize_url(url) == normal


def test_same_page_under_two_urls_is_one_source() -> None:
    a = source("a", "short", "https://news.example.com/story/?utm_campaign=feed")
    b = source("b", "a longer text of the story", "https://NEWS.example.com:443/story#comments")
    c = source("c", "other", "https://news.example.com/story?page=2")
    result = deduplicate([a, b, c])
    assert result.kept == (b, c)  # the longer text is kept, in its group's first position
    assert [(d.source.id, d.kept, d.reason) for d in result.dropped] == [("a", ("web", "b"), "url")]


def test_near_identical_texts_are_one_source() -> None:
    copy = TEXT.replace("Monday", "Tuesday")  # one word changed: five shingles differ
    reworded = TEXT + " today."
    original = source("orig", TEXT, "https://port.example.org/news")
    syndicated = source("synd", reworded, "https://wire.example.com/x")
    different = source("diff", copy, "https://other.example.net/y")
    assert jaccard(shingles(TEXT), shingles(reworded)) >= 0.9
    assert jaccard(shingles(TEXT), shingles(copy)) < 0.9
    result = deduplicate([original, syndicated, different])
    assert result.kept == (syndicated, different)
    assert [(d.source.id, d.reason) for d in result.dropped] == [("orig", "text")]
    # a lower threshold joins them; the longer text ("Tuesday") is kept
    assert deduplicate([original, different], threshold=0.5).kept == (different,)


def test_the_kept_source_does_not_depend_on_input_order() -> None:
    group = [
        source("b", TEXT, "https://a.example.com/p", provider="tavily"),
        source("a", TEXT, "https://b.example.com/q", provider="tavily"),
        source("z", TEXT, None, provider="corpus"),
        source("c", TEXT + " more", "https://c.example.com/r?utm_x=1"),
        source("d", "", "https://c.example.com/r"),
    ]
    kept = {deduplicate(list(order)).kept for order in itertools.permutations(group)}
    assert kept == {(group[3],)}  # the longest text wins whatever the order
    tied = group[:3]
    kept = {deduplicate(list(order)).kept for order in itertools.permutations(tied)}
    assert kept == {(group[2],)}  # equal texts: no URL sorts first, then provider, then id


def test_empty_texts_without_urls_are_not_duplicates() -> None:
    a, b = source("a"), source("b")
    assert deduplicate([a, b]).kept == (a, b)
    assert shingles("") == frozenset()
    assert shingles("Two words") == frozenset({("two", "words")})
