"""Which sources a report cites: the pair of retrieved sources that best answers the question
together, with no model.

A multi-hop question is answered by two documents that are rarely the two a single search ranks
first: one names the question's subject, the other the entity it leads to (the bridge), or each
holds one entity of a comparison. So the candidates (the first `pool` distinct sources, in the
order the research found them) are scored in pairs, and the best pair is cited:

- **coverage**: the IDF-weighted share of the question's key terms found in the two sources
  (titles and texts) together, IDF taken over the candidates;
- **link**: `LINK_BONUS` when one source's title is named in the other's text (a hop from the
  subject to the bridge; a title is named when its words, without a trailing "(...)"
  qualifier, appear whole, case folded);
- **named**: `NAMED_BONUS` for each source whose title the question names.

Ties keep the earlier pair (the research order), so the choice is deterministic. Bonuses were
chosen on the even-indexed half of the HotpotQA sample only.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from functools import lru_cache

from bastion.research.sources import Source
from bastion.research.text import key_terms

__all__ = ["LINK_BONUS", "NAMED_BONUS", "choose_sources", "names_title"]

LINK_BONUS = 0.3
NAMED_BONUS = 0.3
POOL = 10  # candidate sources scored in pairs (45 pairs)
_MIN_TITLE_CHARS = 4  # shorter titles ("Alû", "Go") match too much text by chance
_QUALIFIER_RE = re.compile(r"\s*\([^()]*\)\s*$")


@lru_cache(maxsize=4096)
def _title_pattern(title: str) -> re.Pattern[str] | None:
    name = " ".join(_QUALIFIER_RE.sub("", html.unescape(title)).casefold().split())
    if len(name) < _MIN_TITLE_CHARS:
        return None
    return re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)")


def names_title(title: str, text: str) -> bool:
    """Whether `text` names the entity `title` is about (its words, without a trailing
    "(...)" qualifier, appear whole in `text`, case folded)."""
    pattern = _title_pattern(title)
    folded = " ".join(html.unescape(text).casefold().split())
    return pattern is not None and pattern.search(folded) is not None


def choose_sources(question: str, sources: Sequence[Source], *, pool: int = POOL) -> list[Source]:
    """The sources to cite for `question`: the best pair among the first `pool` of `sources`
    (see the module rules), in their given order; all of them when there are fewer than two."""
    distinct: dict[tuple[str, str], Source] = {}
    for source in sources:
        distinct.setdefault((source.provider, source.id), source)
    candidates = list(distinct.values())[:pool]
    if len(candidates) < 2:
        return candidates
    terms = list(dict.fromkeys(key_terms(question)))
    found = [frozenset(key_terms(f"{s.title} {s.text}")) for s in candidates]
    weights = {
        t: math.log(1 + (len(candidates) + 1) / (sum(t in f for f in found) + 0.5)) for t in terms
    }
    total = sum(weights.values()) or 1.0
    named = [NAMED_BONUS * names_title(s.title, question) for s in candidates]
    best: tuple[float, int, int] = (-math.inf, 0, 1)
    for i in range(len(candidates)):
        for j in range(i + 1, len(candidates)):
            both = found[i] | found[j]
            coverage = sum(w for t, w in weights.items() if t in both) / total
            linked = names_title(candidates[j].title, candidates[i].text) or names_title(
                candidates[i].title, candidates[j].text
            )
            value = coverage + LINK_BONUS * linked + named[i] + named[j]
            if value > best[0]:  # strict: the earlier pair wins a tie
                best = (value, i, j)
    return [candidates[best[1]], candidates[best[2]]]
