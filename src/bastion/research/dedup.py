"""Deduplication of sources: the same page under two URLs, or the same text from two places.

Two sources are duplicates when their normalised URLs are equal (`normalize_url`: scheme and
host lowercased, default port, fragment and tracking parameters such as `utm_*` dropped, the
trailing slash and the query order made canonical) or when their texts are near-identical: the
Jaccard similarity of their word 5-shingles is at least `threshold` (0.9 by default). Duplicates
are grouped transitively, and each group keeps one source chosen by a rule that does not depend
on input order: the longest text, then the smallest (normalised URL, provider, id). Kept sources
come back in the order their groups first appear.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bastion.research.sources import Source
from bastion.research.text import jaccard

__all__ = ["Deduplicated", "Duplicate", "deduplicate", "jaccard", "normalize_url", "shingles"]

NEAR_DUPLICATE = 0.9
SHINGLE_WORDS = 5

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that say how a visitor arrived, never what the page is.
_TRACKING = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid", "_ga", "_gl"}
)
_WORD = re.compile(r"\w+", re.UNICODE)


def normalize_url(url: str) -> str:
    """`url` in a canonical form, so that two spellings of one page compare equal."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    port = parts.port
    netloc = host
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{host}"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/") or ("/" if netloc else "")
    query = sorted(
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.lower().startswith("utm_") and key.lower() not in _TRACKING
    )
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def shingles(text: str, size: int = SHINGLE_WORDS) -> frozenset[tuple[str, ...]]:
    """The word `size`-grams of `text`, lowercased (a shorter text is one shingle)."""
    words = _WORD.findall(text.lower())
    if not words:
        return frozenset()
    if len(words) <= size:
        return frozenset({tuple(words)})
    return frozenset(tuple(words[i : i + size]) for i in range(len(words) - size + 1))


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A source left out, the kept source's (provider, id) and why (`url` or `text`)."""

    source: Source
    kept: tuple[str, str]
    reason: str


@dataclass(frozen=True, slots=True)
class Deduplicated:
    kept: tuple[Source, ...]
    dropped: tuple[Duplicate, ...]


def deduplicate(sources: Sequence[Source], threshold: float = NEAR_DUPLICATE) -> Deduplicated:
    """`sources` without duplicates (see the module docstring for the rules)."""
    urls = [normalize_url(s.url) if s.url else None for s in sources]
    grams = [shingles(s.text or s.snippet) for s in sources]
    parent = list(range(len(sources)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with_url: dict[str, int] = {}
    for i, url in enumerate(urls):
        if url is None:
            continue
        if url in first_with_url:
            parent[root(i)] = root(first_with_url[url])
        else:
            first_with_url[url] = i
    for i in range(len(sources)):
        for j in range(i):
            if root(i) != root(j) and jaccard(grams[i], grams[j]) >= threshold:
                parent[root(i)] = root(j)

    groups: dict[int, list[int]] = {}
    for i in range(len(sources)):
        groups.setdefault(root(i), []).append(i)
    kept: list[Source] = []
    dropped: list[Duplicate] = []
    for members in sorted(groups.values(), key=min):
        keeper = min(members, key=lambda i: _keep_rank(sources[i], urls[i]))
        kept.append(sources[keeper])
        for i in members:
            if i != keeper:
                why = "url" if urls[i] is not None and urls[i] == urls[keeper] else "text"
                holder = (sources[keeper].provider, sources[keeper].id)
                dropped.append(Duplicate(sources[i], holder, why))
    return Deduplicated(tuple(kept), tuple(dropped))


def _keep_rank(source: Source, url: str | None) -> tuple[int, str, str, str]:
    return (-len(source.text), url or "", source.provider, source.id)
