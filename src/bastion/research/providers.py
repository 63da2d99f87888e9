"""The search providers a researcher asks, built from the settings: `corpus` (BM25 over the
local corpus), `archive` (the document pipeline's archive, through an injected search function,
for the asking principal only) and `tavily` (web search, only with a key).

The archive is reached through a function (`ArchiveSearch`: owner, query, limit -> the
archivist's search results) so that the researcher agent calls `archivist.search` under its
own credential, and a test or the in-process baseline passes any function it likes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bastion.config import Settings
from bastion.research.retrieval import CorpusProvider
from bastion.research.sources import Passage, SearchProvider, Source
from bastion.research.tavily import TavilySearch
from bastion.research.text import key_terms

__all__ = ["ArchiveProvider", "ArchiveSearch", "ProviderSet", "archive_passage"]

# owner, query, limit -> the archivist's `search` results (document summaries, best first).
ArchiveSearch = Callable[[str, str, int], Awaitable[list[dict[str, Any]]]]

# Document fields that say what an archived document is about, in the order they are written.
_ARCHIVE_FIELDS = (
    ("document_type", "Document type"),
    ("issuer", "Issuer"),
    ("customer", "Customer"),
    ("invoice_number", "Invoice number"),
    ("filename", "File"),
)


def archive_passage(doc: dict[str, Any], rank: int, retrieved_at: float) -> Passage | None:
    """A passage for one archive search result (None when it has no id)."""
    document_id = doc.get("id")
    if not isinstance(document_id, str) or not document_id:
        return None
    facts = [
        f"{label}: {doc[key]}."
        for key, label in _ARCHIVE_FIELDS
        if isinstance(doc.get(key), str) and doc[key].strip()
    ]
    text = " ".join(facts) or f"Archived document {document_id}."
    title = str(doc.get("filename") or doc.get("issuer") or document_id)
    source = Source(
        id=document_id,
        title=title,
        provider="archive",
        retrieved_at=retrieved_at,
        snippet=text[:300],
        text=text,
        sentences=tuple(facts),
    )
    return Passage(source=source, index=0, text=text, score=1.0 / (rank + 1))


_SINGLE_TERM_SEARCHES = 3


def _distinctive(query: str) -> list[str]:
    """The query's content words, longest (most distinctive) first, ties in query order."""
    terms = list(dict.fromkeys(key_terms(query)))
    return sorted(terms, key=lambda t: -len(t)) if len(terms) > 1 else []


class ArchiveProvider:
    """The `archive` provider for one principal: the archivist's search over their documents."""

    def __init__(
        self, search: ArchiveSearch, owner: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._search = search
        self._owner = owner
        self._clock = clock

    @property
    def name(self) -> str:
        return "archive"

    async def search(self, query: str, limit: int) -> list[Passage]:
        # The archive matches documents holding every word it is given: a question's words
        # rarely all appear in one invoice, so its distinctive words are also tried alone.
        results = await self._search(self._owner, query, limit)
        seen = {doc.get("id") for doc in results}
        for term in _distinctive(query)[:_SINGLE_TERM_SEARCHES]:
            if len(results) >= limit:
                break
            for doc in await self._search(self._owner, term, limit):
                if doc.get("id") not in seen:
                    seen.add(doc.get("id"))
                    results.append(doc)
        retrieved_at = self._clock()
        found = [archive_passage(doc, i, retrieved_at) for i, doc in enumerate(results)]
        return [p for p in found if p is not None][:limit]


class ProviderSet:
    """The providers `settings.research` enables; `for_owner(owner)` gives them for one
    principal (the archive is searched for that principal only). `clock` stamps sources."""

    def __init__(
        self,
        settings: Settings,
        *,
        archive: ArchiveSearch | None = None,
        clock: Callable[[], float] = time.time,
        extra: Sequence[SearchProvider] = (),
    ) -> None:
        research = settings.research
        self._enabled = research.enabled_providers()
        self._clock = clock
        self._archive = archive
        self._corpus: CorpusProvider | None = None
        self._tavily: TavilySearch | None = None
        if "corpus" in self._enabled:
            if not research.corpus:
                raise ValueError(
                    "research.providers names corpus but research.corpus is not set: give the "
                    "corpus folder or file, or leave corpus out of research.providers"
                )
            self._corpus = CorpusProvider(settings.path(research.corpus), clock=clock)
        if "tavily" in self._enabled and research.tavily.api_key_ref:
            self._tavily = TavilySearch(
                research.tavily, base_dir=settings.base_dir, secrets=settings.secrets, clock=clock
            )
        self._extra = list(extra)

    @property
    def enabled(self) -> list[str]:
        return list(self._enabled)

    def for_owner(self, owner: str) -> list[SearchProvider]:
        chosen: list[SearchProvider] = []
        for name in self._enabled:
            if name == "corpus" and self._corpus is not None:
                chosen.append(self._corpus)
            elif name == "archive" and self._archive is not None:
                chosen.append(ArchiveProvider(self._archive, owner, clock=self._clock))
            elif name == "tavily" and self._tavily is not None:
                chosen.append(self._tavily)
        return [*chosen, *self._extra]

    async def aclose(self) -> None:
        if self._tavily is not None:
            await self._tavily.aclose()
