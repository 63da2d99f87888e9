"""The word-level text rules the research modules share (corpus, retrieval, credibility, the
offline planner, synthesizer and critic).

- `words`: lower-cased word tokens (letters and digits; an apostrophe-s is dropped, so
  "Spielberg's" is "spielberg").
- `key_terms`: the words of a text that carry its meaning, in first-seen order: stop words, question
  words and one-letter words are dropped, and a plural's final "s" is cut ("films" -> "film",
  never for words of four letters or fewer), so "film" matches "films".
- `content_words`: the words without the stop words (what the corpus index and the credibility
  claims compare).
- `split_sentences`: a sentence ends at ".", "!" or "?" (with any closing quotes or brackets)
  followed by white space and a capital letter, a digit or a quote, or at a blank line; a dot
  after an initial ("J. Smith") or a common abbreviation ("Dr.", "St.", "Inc.") is not an end.
- `normalize_answer`: the HotpotQA answer normalisation (lower case, no punctuation, no articles
  "a", "an", "the", single spaces), and `answer_scores`, HotpotQA's exact match and token F1 on
  normalised answers (a yes/no answer scores F1 0 against any other answer).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Hashable

__all__ = [
    "AUXILIARIES",
    "CITATION_RE",
    "STOPWORDS",
    "answer_scores",
    "content_words",
    "jaccard",
    "key_terms",
    "normalize_answer",
    "split_sentences",
    "stem",
    "words",
]

# A citation in a report: `[n]`, n the source's number.
CITATION_RE = re.compile(r"\[(\d+)\]")

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "either",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "neither",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "s",
        "t",
        "much",
        "many",
        "one",
        "two",
        "whether",
        "wa",
        "ha",
    ]
)

# The verbs a yes/no question opens with ("Is ...", "Did ...", "Can ..."); the rarer modals
# ("shall", "may", "might") are left to the caller, as they open small talk too.
AUXILIARIES = frozenset(
    re.findall(r"\w+", "is are was were do does did can could has have had will would should")
)
_WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_POSSESSIVE_RE = re.compile(r"['\u2019]s$")
# A sentence ends at . ! or ? (with closing quotes or brackets) before whitespace and a capital,
# digit or opening quote; or at a blank line. Common abbreviations and initials do not end one.
_SENTENCE_END_RE = re.compile(
    r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(]?[A-Z0-9])|\n\s*\n"
)
_ABBREVIATIONS = frozenset(
    re.findall(
        r"\S+",
        """mr mrs ms dr st jr sr prof inc ltd co corp vs etc no gen col lt sgt capt rev mt ft fig
        al e.g i.e u.s""",
    )
)


def words(text: str) -> list[str]:
    """The lower-cased word tokens of `text`, in order."""
    return [_POSSESSIVE_RE.sub("", w) for w in _WORD_RE.findall(text.lower())]


def stem(word: str) -> str:
    """A light plural stem: "films" -> "film", "studies" -> "study"; short words stay."""
    if len(word) <= 4 or not word.endswith("s") or word.endswith("ss") or word.endswith("us"):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1]


def key_terms(text: str) -> list[str]:
    """The meaning-carrying terms of `text`, stemmed, each once, in first-seen order."""
    seen: dict[str, None] = {}
    for word in words(text):
        if len(word) > 1 and word not in STOPWORDS:
            seen.setdefault(stem(word), None)
    return list(seen)


def content_words(text: str) -> list[str]:
    """The words of `text` (see `words`), in order, stop words left out."""
    return [word for word in words(text) if word not in STOPWORDS]


def split_sentences(text: str) -> list[str]:
    """`text` cut into sentences (see the module rules), each with its white space collapsed to
    single spaces, none empty."""
    sentences: list[str] = []
    start = 0
    for boundary in _SENTENCE_END_RE.finditer(text):
        piece = text[start : boundary.start()]
        last_word = piece.rsplit(None, 1)[-1].lower().rstrip(".") if piece.strip() else ""
        if boundary.group().count("\n") < 2 and _is_abbreviation(last_word):
            continue  # "Dr. Smith", "J. Smith": the sentence goes on
        sentences.extend(_clean(text[start : boundary.end()]))
        start = boundary.end()
    sentences.extend(_clean(text[start:]))
    return sentences


def _is_abbreviation(word: str) -> bool:
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _clean(piece: str) -> list[str]:
    sentence = " ".join(piece.split())
    return [sentence] if sentence else []


_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """HotpotQA's answer normalisation: lower case, punctuation and articles removed."""
    return " ".join(_ARTICLES_RE.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def answer_scores(prediction: str, gold: str) -> tuple[float, float]:
    """HotpotQA's exact match (0 or 1) and token F1 of `prediction` against `gold`."""
    predicted, expected = normalize_answer(prediction), normalize_answer(gold)
    exact = float(predicted == expected)
    special = {"yes", "no", "noanswer"}
    if (predicted in special or expected in special) and predicted != expected:
        return exact, 0.0
    common = Counter(predicted.split()) & Counter(expected.split())
    same = sum(common.values())
    if same == 0:
        return exact, 0.0
    precision, recall = same / len(predicted.split()), same / len(expected.split())
    return exact, 2 * precision * recall / (precision + recall)


def jaccard(a: frozenset[Hashable], b: frozenset[Hashable]) -> float:
    """Shared items over all items of either set (words, shingles); 0 when both are empty."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0
