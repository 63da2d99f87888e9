"""Report fields from page text: title, author, organisation, date, section headings and a
short extractive summary (the highest-scoring sentences by term frequency, in document order).

Layout carries most of it: the title is the largest text near the top of page 1, headings are
short numbered or larger-than-body lines; labels ("Prepared by", "Autor", "Auteur") give the
author and organisation.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from bastion.pipeline.extract.invoice import LEGAL_FORM
from bastion.pipeline.extract.locale import (
    detect_language,
    find_dates,
    guess_dayfirst,
    parse_month_year,
)
from bastion.pipeline.extract.text import Page, Row, find_labels, values_near
from bastion.pipeline.model import ExtractedField
from bastion.pipeline.model import read_field as _field

__all__ = ["extract_report", "summarise"]

_I = re.IGNORECASE

_AUTHOR = re.compile(
    r"(?<![^\t])(?:authors?|prepared\s+by|written\s+by|by|compiled\s+by|verfasst\s+von|erstellt\s+von|"
    r"autor(?:en|in)?|auteurs?|r[ée]dig[ée]\s+par|pr[ée]par[ée]\s+par|elaborado\s+por|"
    r"autores?)\b\s*:?",
    _I,
)
_ORGANISATION = re.compile(
    r"(?<![^\t])(?:organi[sz]ation|company|institution|department|prepared\s+for|on\s+behalf\s+of|"
    r"published\s+by|publisher|herausgeber|auftraggeber|organisme|[ée]diteur|entidad|"
    r"organizaci[óo]n)\b\s*:?",
    _I,
)
_ORG_WORDS = re.compile(
    rf"\b(?:University|Universit[äé]t?|Institute|Institut|Ministry|Minist[eè]re|Ministerium|"
    rf"Agency|Agence|Agentur|Bundesamt|Foundation|Stiftung|Fondation|Association|Verband|"
    rf"Council|Department|Commission|Kommission|Bank|Office|Authority|Beh[öo]rde|Group|"
    rf"Laboratory|Labor|Centre|Center|Zentrum)\b|(?:\s(?:{LEGAL_FORM}))$"
)
_DATE_LABEL = re.compile(
    r"(?<![^\t])(?:date|datum|published|publication\s+date|ver[öo]ffentlicht|stand|as\s+of|version\s+date|"
    r"date\s+de\s+publication|fecha)\b\s*:?",
    _I,
)
_NUMBERED = re.compile(r"^(?:(?:\d{1,2}(?:\.\d{1,2}){0,3})\.?|[IVX]{1,5}\.|[A-H]\.)\s+\S")
_SECTION_WORDS = re.compile(
    r"^(?:(?:\d{1,2}(?:\.\d{1,2})*\.?)\s+)?(?:executive\s+summary|management\s+summary|summary|"
    r"abstract|introduction|background|methodology|methods|findings|results|discussion|"
    r"conclusions?|recommendations|outlook|appendix|references|zusammenfassung|einleitung|"
    r"hintergrund|methodik|ergebnisse|diskussion|fazit|empfehlungen|ausblick|anhang|"
    r"r[ée]sum[ée]|synth[èe]se|contexte|m[ée]thodologie|r[ée]sultats|conclusion|"
    r"recommandations|annexe|perspectives)\b",
    _I,
)
_SUMMARY_SECTION = re.compile(
    r"(?:executive\s+summary|management\s+summary|summary|abstract|zusammenfassung|"
    r"r[ée]sum[ée]|synth[èe]se)",
    _I,
)
_DOT_LEADER = re.compile(r"(?:\s*\.{3,}|\s{2,}|\t)\s*\d{1,3}$")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜÉÈ\"“(])")
_WORD = re.compile(r"[^\W\d_]{3,}")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "that",
        "with",
        "this",
        "from",
        "are",
        "was",
        "were",
        "have",
        "has",
        "had",
        "not",
        "but",
        "its",
        "their",
        "our",
        "which",
        "will",
        "would",
        "can",
        "could",
        "should",
        "been",
        "being",
        "into",
        "also",
        "than",
        "then",
        "there",
        "these",
        "those",
        "such",
        "more",
        "most",
        "other",
        "some",
        "any",
        "each",
        "all",
        "only",
        "over",
        "under",
        "about",
        "between",
        "after",
        "before",
        "while",
        "where",
        "when",
        "what",
        "who",
        "how",
        "per",
        "via",
        "der",
        "die",
        "das",
        "und",
        "mit",
        "für",
        "von",
        "den",
        "dem",
        "des",
        "ein",
        "eine",
        "einer",
        "eines",
        "ist",
        "sind",
        "war",
        "wurden",
        "wird",
        "werden",
        "auch",
        "nicht",
        "sich",
        "auf",
        "bei",
        "aus",
        "nach",
        "als",
        "zum",
        "zur",
        "über",
        "unter",
        "les",
        "des",
        "une",
        "pour",
        "dans",
        "par",
        "sur",
        "avec",
        "est",
        "sont",
        "été",
        "qui",
        "que",
        "aux",
        "ces",
        "cette",
        "son",
        "ses",
        "leur",
        "plus",
        "ont",
        "pas",
    ]
)


def _median_height(pages: list[Page]) -> float:
    heights = sorted(r.height for p in pages[:5] for r in p.rows if len(r.text) > 40)
    if not heights:
        heights = sorted(r.height for p in pages[:5] for r in p.rows)
    return heights[len(heights) // 2] if heights else 8.0


def _title(page: Page, body: float) -> tuple[str, float, list[int]] | None:
    top = [(ri, r) for ri, r in enumerate(page.rows[:15]) if r.top < 0.5 * (page.height or 842)]
    candidates = [
        (ri, r) for ri, r in top
        if len(r.text) <= 150 and not find_dates(r.text) and any(ch.isalpha() for ch in r.text)
    ]  # fmt: skip
    if not candidates:
        return None
    candidates = [(ri, r) for ri, r in candidates if not _SECTION_WORDS.match(r.text)] or candidates
    tallest = max(r.height for _ri, r in candidates)
    # The first line set (about) as large as the largest: glyph boxes vary a little with the
    # letters ("Summary" has a descender), so near-ties go to the upper line.
    ri, row = next((ri, r) for ri, r in candidates if r.height >= 0.85 * tallest)
    used = [ri]
    parts = [row.text.replace("\t", " ")]
    # A title set on two lines: the next row in the same size, right below.
    if ri + 1 < len(page.rows):
        nxt = page.rows[ri + 1]
        if abs(nxt.height - row.height) < 0.6 and nxt.top - row.bottom < row.height:
            parts.append(nxt.text.replace("\t", " "))
            used.append(ri + 1)
    confidence = 0.85 if row.height > 1.25 * body else 0.5
    return " ".join(parts), confidence, used


def _labelled(pages: list[Page], pattern: re.Pattern[str]) -> tuple[str, int] | None:
    for hit in find_labels(pages[:2], pattern, first=True):
        for text, _score, _where in values_near(pages, hit, below=1):
            value = text.strip(" :;,")
            if 2 <= len(value) <= 120 and any(ch.isalpha() for ch in value):
                return value, hit.page + 1
    return None


def _headings(pages: list[Page], body: float, skip: set[tuple[int, int]]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for pi, page in enumerate(pages):
        for ri, row in enumerate(page.rows):
            if (pi, ri) in skip:
                continue
            text = _DOT_LEADER.sub("", row.text.replace("\t", "  ")).strip()
            text = " ".join(text.split())
            if not 3 <= len(text) <= 90 or text.endswith((".", ",", ";", ":")):
                continue
            if not any(ch.isalpha() for ch in text) or not (text[0].isupper() or text[0].isdigit()):
                continue
            numbered = bool(_NUMBERED.match(text)) and len(text.split()) <= 12
            known = bool(_SECTION_WORDS.match(text)) and len(text.split()) <= 8
            larger = row.height > 1.15 * body and len(text.split()) <= 12
            if numbered and re.match(r"^\d+(?:[.,]\d+)?\s", text) and not larger:
                # "2 apples ..." or a table row: a number then lower-case text is not a heading.
                words = text.split()
                if len(words) > 1 and not words[1][0].isupper():
                    continue
            if not (numbered or known or larger):
                continue
            key = text.lower()
            if key not in seen:
                seen.add(key)
                out.append(text)
            if len(out) >= 40:
                return out
    return out


def _paragraph_text(pages: list[Page], body: float) -> list[tuple[str, bool]]:
    """Body text as (paragraph, in a summary section) pairs."""
    paragraphs: list[tuple[str, bool]] = []
    current: list[str] = []
    in_summary = False
    last: Row | None = None

    def flush() -> None:
        if current:
            paragraphs.append((" ".join(current), in_summary))
            current.clear()

    for page in pages:
        for row in page.rows:
            text = row.text.replace("\t", " ").strip()
            short = len(text) < 60 and not text.endswith((".", "!", "?"))
            if short and (row.height > 1.1 * body or _SECTION_WORDS.match(text)):
                flush()
                in_summary = bool(_SUMMARY_SECTION.search(text))
                last = row
                continue
            if last is not None and row.top - last.bottom > 1.2 * max(row.height, 1.0):
                flush()
            if text.endswith("-") and len(text) > 1:
                current.append(text[:-1] + "\u0000")
            else:
                current.append(text)
            last = row
        flush()
    return [(p.replace("\u0000 ", ""), s) for p, s in paragraphs]


def summarise(paragraphs: list[tuple[str, bool]], n: int = 3) -> str | None:
    """The `n` best sentences by term frequency, in document order, joined."""
    sentences: list[tuple[int, str, bool]] = []
    for text, in_summary in paragraphs:
        for sentence in _SENTENCE_SPLIT.split(text):
            sentence = sentence.strip()
            words = sentence.split()
            if 6 <= len(words) <= 60 and sentence[-1:] in ".!?":
                sentences.append((len(sentences), sentence, in_summary))
    if not sentences:
        return None
    freq: Counter[str] = Counter()
    for _i, sentence, _s in sentences:
        freq.update(w for w in (x.lower() for x in _WORD.findall(sentence)) if w not in _STOP)
    if not freq:
        return None
    top = freq.most_common(1)[0][1]
    scored: list[tuple[float, int, str]] = []
    for i, sentence, in_summary in sentences:
        terms = [w.lower() for w in _WORD.findall(sentence)]
        content = [w for w in terms if w not in _STOP]
        if not content:
            continue
        score = sum(freq[w] / top for w in content) / math.sqrt(len(content))
        if in_summary:
            score *= 1.5
        if i < 3:
            score *= 1.1
        scored.append((score, i, sentence))
    best = sorted(scored, key=lambda s: (-s[0], s[1]))[:n]
    return " ".join(s for _score, _i, s in sorted(best, key=lambda s: s[1]))


def extract_report(pages: list[Page]) -> dict[str, ExtractedField]:
    """Report fields (names from REPORT_FIELDS) found in `pages`; absent ones left out."""
    fields: dict[str, ExtractedField] = {}
    if not pages:
        return fields
    text = "\n".join(p.text for p in pages)
    dayfirst = guess_dayfirst(text, detect_language(text))
    body = _median_height(pages)
    first = pages[0]

    skip: set[tuple[int, int]] = set()
    title = _title(first, body)
    if title:
        fields["title"] = _field(title[0], title[1], 1, "title_font")
        # The title and what stands above it (a logo line, an organisation) are not headings.
        skip.update((0, ri) for ri in range(max(title[2]) + 1))

    author = _labelled(pages, _AUTHOR)
    if author:
        # "Priya Raman, Head of Operations": the name, not the role.
        name = author[0].split(",")[0].split(" - ")[0].strip()
        fields["author"] = _field(name or author[0], 0.8, author[1], "label_right")
    organisation = _labelled(pages, _ORGANISATION)
    if organisation:
        fields["organisation"] = _field(organisation[0], 0.8, organisation[1], "label_right")
    else:
        title_rows = set(title[2]) if title else set()
        for ri, row in enumerate(first.rows[:25]):
            if ri in title_rows:
                continue
            for cell in row.cells:
                if len(cell.text) <= 80 and _ORG_WORDS.search(cell.text):
                    fields["organisation"] = _field(
                        cell.text.strip(), 0.55, 1, "organisation_words"
                    )
                    break
            if "organisation" in fields:
                break

    labelled_date = _labelled(pages, _DATE_LABEL)
    iso = find_dates(labelled_date[0], dayfirst) if labelled_date else []
    if labelled_date and iso:
        fields["date"] = _field(iso[0].iso, 0.85, labelled_date[1], "label_right")
    else:
        dates = find_dates(first.text, dayfirst)
        if dates:
            fields["date"] = _field(dates[0].iso, 0.6, 1, "fallback_first_date")
        else:
            month = parse_month_year(first.text)
            if month:
                fields["date"] = _field(month, 0.4, 1, "month_year")

    headings = _headings(pages, body, skip)
    if headings:
        fields["headings"] = _field(headings, 0.7, 1, "heading_font")
    summary = summarise(_paragraph_text(pages, body))
    if summary:
        fields["summary"] = _field(summary, 0.6, 1, "summary")
    return fields
