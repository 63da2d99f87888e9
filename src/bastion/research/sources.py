"""What a search brings back: a `Source` (one document or page, with the metadata a report cites)
and its `Passage`s (the sentences or chunks that matched), and the `SearchProvider` protocol
every provider (the local corpus, the archive, a web search API) implements.

Sources are captured by the tool that fetched them, never parsed out of model text, and they are
untrusted input: the guardrails scan every snippet before a model or the synthesizer sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Passage", "SearchProvider", "Source"]


@dataclass(frozen=True, slots=True)
class Source:
    """One document or page: `id` is the provider's own id (a corpus document's id when it has
    one), `provider` the provider's name (`corpus`, `archive`, `tavily`), `retrieved_at` a Unix
    time, `snippet` a short excerpt for display, `text` all the text the provider gave."""

    id: str
    title: str
    provider: str
    retrieved_at: float
    snippet: str
    text: str
    url: str | None = None
    published_at: float | None = None  # when the provider knows it (recency of credibility)
    sentences: tuple[str, ...] = field(default=())  # the text split into sentences, in order


@dataclass(frozen=True, slots=True)
class Passage:
    """A part of a source that matched a query: `index` is its position among the source's
    sentences (or chunks), `score` the provider's relevance score (higher is better)."""

    source: Source
    index: int
    text: str
    score: float


class SearchProvider(Protocol):
    """A search tool. `search` returns at most `limit` passages, best first, deterministic for
    the same query on the same data."""

    @property
    def name(self) -> str: ...

    async def search(self, query: str, limit: int) -> list[Passage]: ...
