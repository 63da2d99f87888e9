"""The offline synthesizer: picks evidence sentences from retrieved passages, numbers their
sources and writes a cited Markdown report with a short typed answer, with no model.

Rules:
- **Sources**: the report cites the pair of sources that answers the question best together
  (`selection.choose_sources`: question coverage, a link between the two, titles the question
  names), chosen among the passages' sources.
- **Candidates**: the chosen sources' passages cut into sentences (`text.split_sentences`), then
  the rest of each chosen source's sentences when it has them (the sentence holding an answer
  often shares no word with the query), each put on one line without the source's own bracketed
  footnote numbers ("[3]", which would read as citations); the same sentence of the same source
  counts once. The order of candidates is the order of the passages as given, then of the
  sentences inside them, and every tie is broken by that order, so the same input always gives
  the same report.
- **Relevance** of a sentence to a query (the question or a sub-question): the IDF-weighted share
  of the query's key terms found in the sentence or its source's title, with IDF taken over the
  candidate sentences; a term found only in the title counts half.
- **Entities**: the sub-question of a comparison entity ("When was A founded?") draws only on
  sentences that name the entity (a term of its own, in the sentence or its source's title).
- **Selection** per sub-question (the question itself when there are none), by maximal marginal
  relevance: the next sentence maximises `lambda * relevance - (1 - lambda) * redundancy`, where
  redundancy is the highest Jaccard overlap of key terms with a sentence already chosen (for any
  sub-question); sentences with no relevance are never chosen. A sentence is chosen once.
- **Every chosen source is cited** when it is relevant: one no sub-question drew on gives its
  sentence most relevant to the question, under the last sub-question.
- **Citations**: sources are numbered 1, 2, ... in the order the findings first cite them; a
  sentence carries the number of its source, `[n]`, and the sources list closes the report, so
  every `[n]` resolves.
- **Answer**: typed by the question word (`bastion.research.answer`), taken from the chosen
  evidence, best first. A comparison ("Which is older, A or B?") answers with one of its entities:
  the one with the earlier date for older/first/earlier, the later for younger/later/newer, the
  larger number for larger/taller/more/... (the smaller for smaller/shorter/fewer/...), else the
  entity whose own evidence holds more of the question's other key terms (then: the more relevant
  evidence). A yes/no comparison ("Are A and B both X?") says yes when each entity's own evidence
  holds every other key term of the question, or, for "the same <noun>", when the places their
  evidence names are the same. Otherwise the evidence of the last sub-question (a bridge's second
  step) is tried first, then the rest, each by relevance. The answer line cites the source of the
  sentence it came from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bastion.research.answer import answer_type, extract_answer, extract_span, years
from bastion.research.plan import SIZE_COMPARATIVES, comparison_entities
from bastion.research.selection import choose_sources
from bastion.research.sources import Passage, Source
from bastion.research.text import jaccard, key_terms, split_sentences, words

__all__ = ["Evidence", "Report", "render_markdown", "synthesize"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """A chosen sentence: `n` is its source's citation number, `sub_question` the query it was
    chosen for, `relevance` its relevance to that query."""

    sentence: str
    source: Source
    n: int
    sub_question: str
    relevance: float


@dataclass(frozen=True, slots=True)
class Report:
    """The synthesized result: `sources[n - 1]` is the source cited as `[n]`."""

    question: str
    answer: str | None
    markdown: str
    evidence: tuple[Evidence, ...]
    sources: tuple[Source, ...]


@dataclass(frozen=True, slots=True)
class _Candidate:
    sentence: str
    source: Source
    terms: frozenset[str]
    title_terms: frozenset[str]


_BRACKETED_NUMBER_RE = re.compile(r"\[\d+\]")


def _one_line(text: str) -> str:
    """`text` on one line, without bracketed numbers (a source's own footnote marks would read
    as our citations)."""
    return " ".join(_BRACKETED_NUMBER_RE.sub("", text).split())


def _texts(question: str, passages: Sequence[Passage]) -> list[tuple[Source, list[str]]]:
    """The sentences each cited source offers, for the sources `choose_sources` picks: its
    passages' sentences, then the rest of the source when its sentences are known (the sentence
    holding an answer often shares no word with the query)."""
    chosen = {(s.provider, s.id) for s in choose_sources(question, [p.source for p in passages])}
    kept = [p for p in passages if (p.source.provider, p.source.id) in chosen]
    out = [(p.source, split_sentences(p.text)) for p in kept]
    whole = {(p.source.provider, p.source.id): p.source for p in kept if p.source.sentences}
    out += [(source, list(source.sentences)) for source in whole.values()]
    return out


def _candidates(texts: Sequence[tuple[Source, list[str]]]) -> list[_Candidate]:
    seen: set[tuple[str, str]] = set()
    out: list[_Candidate] = []
    for source, sentences in texts:
        title_terms = frozenset(key_terms(source.title))
        for raw in sentences:
            sentence = _one_line(raw)
            if not sentence:
                continue
            key = (source.id, sentence)
            if key in seen:
                continue
            seen.add(key)
            out.append(_Candidate(sentence, source, frozenset(key_terms(sentence)),
                                  title_terms))  # fmt: skip
    return out


def _idf(candidates: Sequence[_Candidate]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for candidate in candidates:
        for term in candidate.terms | candidate.title_terms:
            counts[term] = counts.get(term, 0) + 1
    total = len(candidates)
    return {term: math.log(1 + total / count) for term, count in counts.items()}


def _weights(query: Sequence[str], idf: dict[str, float]) -> dict[str, float]:
    """Each query term's weight: its idf, or more than any seen term's when no candidate has it."""
    return {term: idf.get(term, math.log(1 + len(idf) + 1)) for term in query}


def _relevance(weights: dict[str, float], total: float, candidate: _Candidate) -> float:
    if not weights:
        return 0.0
    found = 0.0
    for term, weight in weights.items():
        if term in candidate.terms:
            found += weight
        elif term in candidate.title_terms:
            found += weight / 2
    return found / total


def _about(
    query: str, entities: tuple[str, str] | None, candidates: Sequence[_Candidate]
) -> Sequence[_Candidate]:
    """For a comparison entity's sub-question, only the candidates naming that entity (a term of
    its own, not shared with the other entity, in the sentence or its source's title)."""
    if entities is None:
        return candidates
    for entity, other in (entities, entities[::-1]):
        if entity and entity in query:
            own = set(key_terms(entity)) - set(key_terms(other))
            return [c for c in candidates if own & (c.terms | c.title_terms)]
    return candidates


def _select(
    query: str,
    candidates: Sequence[_Candidate],
    idf: dict[str, float],
    chosen: list[_Candidate],
    limit: int,
    mmr_lambda: float,
) -> list[tuple[_Candidate, float]]:
    weights = _weights(key_terms(query), idf)
    total = sum(weights.values())  # once per query, not per candidate
    scored = [(c, _relevance(weights, total, c)) for c in candidates]
    pool = [(c, r) for c, r in scored if r > 0 and c not in chosen]
    picked: list[tuple[_Candidate, float]] = []
    while pool and len(picked) < limit:
        best_i, best_value = 0, -math.inf
        for i, (candidate, relevance) in enumerate(pool):
            redundancy = max((jaccard(candidate.terms, c.terms) for c in chosen), default=0.0)
            value = mmr_lambda * relevance - (1 - mmr_lambda) * redundancy
            if value > best_value:  # strict: the earlier candidate wins a tie
                best_i, best_value = i, value
        candidate, relevance = pool.pop(best_i)
        chosen.append(candidate)
        picked.append((candidate, relevance))
    return picked


_EARLIER = frozenset(["older", "oldest", "first", "earlier", "earliest"])
_LATER = frozenset(["younger", "youngest", "later", "latest", "last", "newer", "newest"])
_MEASURES = frozenset([*SIZE_COMPARATIVES, "more", "most", "fewer", "less", "least"])
_SMALLER = frozenset(["smaller", "smallest", "shorter", "shortest", "fewer", "less", "least"])
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")


def _number(text: str) -> float | None:
    match = _NUMBER_RE.search(text)
    return float(match.group(0).replace(",", "")) if match else None


def _compare(question: str, by_entity: dict[str, list[Evidence]]) -> str | None:
    entities = list(by_entity)
    question_words = set(words(question))
    if question_words & (_EARLIER | _LATER):
        dated: dict[str, int] = {}
        for entity, evidence in by_entity.items():
            found = [year for e in evidence for year in years(e.sentence)]
            if found:
                dated[entity] = min(found)
        if len(dated) == len(entities):
            pick = min if question_words & _EARLIER else max
            return pick(entities, key=lambda e: (dated[e], entities.index(e)))
    elif question_words & _MEASURES:
        numbers: dict[str, float] = {}
        for entity, evidence in by_entity.items():
            span = extract_span("number", question, [e.sentence for e in evidence])
            value = _number(span) if span else None
            if value is not None:
                numbers[entity] = value
        if len(numbers) == len(entities):
            pick = min if question_words & _SMALLER else max
            return pick(entities, key=lambda e: (numbers[e], -entities.index(e)))
    named = set(key_terms(" ".join(entities)))
    predicate = [t for t in key_terms(question) if t not in named]

    def support(entity: str) -> tuple[int, float, int]:
        found = set(key_terms(" ".join(x.sentence for x in by_entity[entity])))
        held = sum(term in found for term in predicate)
        return held, by_entity[entity][0].relevance, -entities.index(entity)

    return max(entities, key=support) if entities else None


_SAME_RE = re.compile(r"\bsame\s+(\w+)", re.I)


def _yes_no(question: str, entities: tuple[str, str], by_entity: dict[str, list[Evidence]]) -> str:
    """A yes/no comparison: "the same <noun>" compares the place each entity's evidence names;
    otherwise yes when each entity's own evidence holds every other key term of the question."""
    if _SAME_RE.search(question):
        places = [extract_span("place", e, [x.sentence for x in by_entity[e]]) for e in entities]
        if all(places):
            return "yes" if len({p.lower() for p in places if p}) == 1 else "no"
    named = set(key_terms(" ".join(entities)))
    predicate = {t for t in key_terms(question) if t not in named}
    for entity in entities:
        found = set(key_terms(" ".join(x.sentence for x in by_entity[entity])))
        if not predicate <= found:
            return "no"
    return "yes"


def _answer(
    question: str, evidence: Sequence[Evidence], entities: tuple[str, str] | None
) -> tuple[str | None, Evidence | None]:
    if not evidence:
        return None, None
    if entities is not None:
        by_entity: dict[str, list[Evidence]] = {entity: [] for entity in entities}
        for item, entity in zip(evidence, _entity_of(evidence, entities), strict=True):
            if entity is not None:
                by_entity[entity].append(item)
        if all(by_entity.values()) and answer_type(question) == "yesno":
            return _yes_no(question, entities, by_entity), by_entity[entities[0]][0]
        if all(by_entity.values()) and words(question)[:1] in (["which"], ["who"], ["what"]):
            choice = _compare(question, by_entity)
            if choice is not None:
                return choice, by_entity[choice][0]
    last = evidence[-1].sub_question
    # the last sub-question asks what the question asks (a bridge's second step): its evidence
    # first, then by relevance; sorted() is stable, so ties keep the report's order
    ranked = sorted(evidence, key=lambda e: (e.sub_question != last, -e.relevance))
    for item in ranked:
        answer = extract_answer(question, [item.sentence])
        if answer is not None and answer not in ("yes", "no"):
            return answer, item
    answer = extract_answer(question, [item.sentence for item in ranked])
    return answer, ranked[0] if answer is not None else None


def _entity_of(evidence: Sequence[Evidence], entities: tuple[str, str]) -> list[str | None]:
    """The comparison entity each evidence sentence was chosen for (its sub-question names it)."""
    return [next((e for e in entities if e in item.sub_question), None) for item in evidence]


def render_markdown(question: str, answer: str | None, cite: int | None, groups: list[tuple[
        str, list[Evidence]]], sources: Sequence[Source]) -> str:  # fmt: skip
    """The report's Markdown: the question, the answer line citing `[cite]`, each group's
    evidence under its heading (when there are several), and the sources list."""
    lines = [f"# {question}", ""]
    if answer is not None and cite is not None:
        lines += [f"**Answer:** {answer} [{cite}]", ""]
    else:
        lines += ["**Answer:** not found in the sources.", ""]
    for heading, items in groups:
        if not items:
            continue
        if len(groups) > 1:
            lines += [f"## {_one_line(heading)}", ""]
        lines += [f"- {item.sentence} [{item.n}]" for item in items]
        lines.append("")
    if sources:
        lines += ["## Sources", ""]
        for n, source in enumerate(sources, start=1):
            where = f" <{source.url}>" if source.url else ""
            title = _one_line(source.title)
            lines.append(f"[{n}] {title} ({source.provider}: {_one_line(source.id)}){where}")
        lines.append("")
    return "\n".join(lines)


def synthesize(
    question: str,
    sub_questions: Sequence[str],
    passages: Sequence[Passage],
    *,
    per_sub_question: int = 4,
    mmr_lambda: float = 0.7,
) -> Report:
    """The cited report for `question` from `passages` (see the module rules)."""
    candidates = _candidates(_texts(question, passages))
    idf = _idf(candidates)
    queries = list(dict.fromkeys(sub_questions)) or [question]
    chosen: list[_Candidate] = []
    numbers: dict[str, int] = {}
    sources: list[Source] = []
    groups: list[tuple[str, list[Evidence]]] = []
    entities = comparison_entities(question)
    for query in queries:
        items: list[Evidence] = []
        pool = _about(query, entities, candidates)
        for candidate, relevance in _select(query, pool, idf, chosen, per_sub_question,
                                            mmr_lambda):  # fmt: skip
            if candidate.source.id not in numbers:
                numbers[candidate.source.id] = len(sources) + 1
                sources.append(candidate.source)
            n = numbers[candidate.source.id]
            items.append(Evidence(candidate.sentence, candidate.source, n, query, relevance))
        groups.append((query, items))
    # every chosen source relevant to the question is cited: one not drawn on yet gives its
    # sentence most relevant to the question, under the last sub-question
    last_query, last_items = groups[-1]
    for candidate in candidates:
        if candidate.source.id in numbers:
            continue
        own = [c for c in candidates if c.source.id == candidate.source.id]
        picked = _select(question, own, idf, chosen, 1, mmr_lambda)
        if not picked:
            continue
        best, relevance = picked[0]
        numbers[best.source.id] = len(sources) + 1
        sources.append(best.source)
        last_items.append(Evidence(best.sentence, best.source, numbers[best.source.id],
                                   last_query, relevance))  # fmt: skip
    evidence = tuple(item for _, items in groups for item in items)
    answer, origin = _answer(question, evidence, entities)
    markdown = render_markdown(question, answer, origin.n if origin else None, groups, sources)
    return Report(question, answer, markdown, evidence, tuple(sources))
