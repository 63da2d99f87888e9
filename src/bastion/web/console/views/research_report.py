"""A research report as the console shows it: blocks of text with its `[n]` citations resolved.

A report is Markdown with inline `[n]` citations (`bastion.research.model`). The console renders
no Markdown HTML: `report_blocks` splits the report into headings and paragraphs, each a list of
segments, plain text or a citation, and the template escapes every piece. A citation of a web
source links to the source's address (only `http`/`https`: any other scheme stays text); any
other citation, and a citation of a number that is not among the sources, links to the
source's entry on the page (`#<prefix>-source-<n>`), where its title and id are shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bastion.research.text import CITATION_RE

__all__ = ["Block", "Citation", "ShownSource", "report_blocks", "shown_sources", "web_url"]

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*)$")
# Report headings sit below the page's h1 and the turn's h2.
_TOP_HEADING = 3


def web_url(value: object) -> str | None:
    """`value` when it is an absolute http(s) address with a host, else None (never a link to
    `javascript:`, `data:` or a relative path)."""
    if not isinstance(value, str) or len(value) > 2048:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


@dataclass(frozen=True, slots=True)
class ShownSource:
    """A cited source on the page: its number, title, id, provider, credibility and address
    (None unless it is a web address)."""

    n: int
    id: str
    title: str
    provider: str
    credibility: float
    url: str | None
    snippet: str

    @property
    def credibility_label(self) -> str:
        if self.credibility >= 0.75:
            return "high"
        if self.credibility >= 0.45:
            return "medium"
        return "low"


@dataclass(frozen=True, slots=True)
class Citation:
    """`[n]` in the report: `href` is the web source's address or the page anchor of its entry."""

    n: int
    href: str
    external: bool
    title: str


@dataclass(frozen=True, slots=True)
class Block:
    """A heading (`level` 3-6) or a paragraph (`level` 0), as text and citations in order."""

    level: int
    segments: tuple[str | Citation, ...]


def shown_sources(sources: Iterable[Mapping[str, Any]]) -> list[ShownSource]:
    """The result's sources (`ResultSource` as JSON), in their numbers' order."""
    shown = [
        ShownSource(
            n=int(source.get("n", 0)),
            id=str(source.get("id", "")),
            title=str(source.get("title", "")),
            provider=str(source.get("provider", "")),
            credibility=float(source.get("credibility", 0.0)),
            url=web_url(source.get("url")),
            snippet=str(source.get("snippet", "")),
        )
        for source in sources
    ]
    return sorted(shown, key=lambda source: source.n)


def _segments(
    text: str, by_number: Mapping[int, ShownSource], prefix: str
) -> tuple[str | Citation, ...]:
    out: list[str | Citation] = []
    at = 0
    for match in CITATION_RE.finditer(text):
        if match.start() > at:
            out.append(text[at : match.start()])
        n = int(match.group(1))
        source = by_number.get(n)
        if source is not None and source.url is not None:
            out.append(Citation(n, source.url, True, source.title))
        else:
            title = source.title if source is not None else "not among the sources"
            out.append(Citation(n, f"#{prefix}-source-{n}", False, title))
        at = match.end()
    if at < len(text):
        out.append(text[at:])
    return tuple(out)


def report_blocks(report: str, sources: Iterable[ShownSource], prefix: str) -> list[Block]:
    """`report` as headings and paragraphs with resolved citations; `prefix` names the turn's
    anchors on the page."""
    by_number = {source.n: source for source in sources}
    blocks: list[Block] = []
    lines: list[str] = []

    def paragraph() -> None:
        text = "\n".join(lines).strip("\n")
        if text.strip():
            blocks.append(Block(0, _segments(text, by_number, prefix)))
        lines.clear()

    for line in report.splitlines():
        heading = _HEADING_RE.match(line.strip())
        if heading is not None:
            paragraph()
            level = min(6, _TOP_HEADING - 1 + len(heading.group(1)))
            blocks.append(Block(level, _segments(heading.group(2).strip(), by_number, prefix)))
        elif not line.strip():
            paragraph()
        else:
            lines.append(line)
    paragraph()
    return blocks
