"""The offline planner: sorts a message into `chat` or `research`, and splits a research question
into sub-questions by rules, with no model.

Chat or research (`classify`, for mode `auto`), first rule that matches:
1. an empty message, or one made only of small-talk words ("hi", "thanks", "good morning",
   "bye", ...) or a small-talk phrase ("how are you", "who are you", "what can you do") -> chat;
2. a question (ends with "?", or starts with a question word or an auxiliary verb) or a request
   to look something up ("find", "research", "explain", "compare", "tell me about", ...)
   -> research;
3. a message with at least three key terms -> research; anything shorter -> chat.

Decomposition (`plan`), first rule that matches:
1. **Comparison, "A or B"**: "Which is older, A or B?", "Which band was formed first, A or B?",
   "Who was born first, A or B?" -> one sub-question per entity, asking for the attribute being
   compared: older/first/earlier/... -> "When was A <verb>?" (the question's own verb, "born or
   founded" when there is none), larger/taller/longer/... -> "How large is A?", otherwise the
   question with the entity put in place of "which X" ("Which singer is American, A or B?" ->
   "Is A American?").
2. **Comparison, "A and B"**: "Are A and B both X?", "Are both A and B X?", "Are A and B in the
   same state?" -> "Is A X?" and "Is B X?", or "In which state is A?" and "In which state is
   B?" for "the same <noun>".
3. **Bridge, "the <role> of X"**: "When was the director of Jaws born?" -> first "Who directed
   Jaws?" (a role with a known verb: director -> directed, author/writer -> wrote, founder ->
   founded, ...; otherwise "Who is the <role> of X?"), then "When was {bridge} born?".
4. **Bridge, relative clause**: "In what year was the man that resigned as president born?"
   -> "Who resigned as president?", then "In what year was {bridge} born?".
5. Otherwise the question is its own single sub-question.

A bridge sub-question holds the placeholder `{bridge}`: `resolve_bridge` fills it with the
answer the evidence of the sub-question it depends on gives (typed answer extraction, see
`bastion.research.answer`); until then, retrieval uses `SubQuestion.search_text`, the
sub-question without the placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from bastion.research.answer import extract_answer
from bastion.research.text import AUXILIARIES, key_terms, words

__all__ = [
    "BRIDGE",
    "SIZE_COMPARATIVES",
    "Mode",
    "Plan",
    "PlanKind",
    "SubQuestion",
    "classify",
    "comparison_entities",
    "plan",
    "resolve_bridge",
]

BRIDGE = "{bridge}"

Mode = Literal["chat", "research"]
PlanKind = Literal["single", "comparison", "bridge"]


@dataclass(frozen=True, slots=True)
class SubQuestion:
    """One step of a plan. `depends_on` is the index of the sub-question whose answer fills
    `{bridge}` in `text`; `entity` is the entity a comparison sub-question is about."""

    text: str
    depends_on: int | None = None
    entity: str | None = None

    @property
    def needs_bridge(self) -> bool:
        return BRIDGE in self.text

    @property
    def search_text(self) -> str:
        """The text to search with: the sub-question without an unfilled placeholder."""
        return " ".join(self.text.replace(BRIDGE, " ").split())


@dataclass(frozen=True, slots=True)
class Plan:
    question: str
    kind: PlanKind
    sub_questions: tuple[SubQuestion, ...]

    @property
    def texts(self) -> list[str]:
        return [sub.text for sub in self.sub_questions]


# --------------------------------------------------------------------------- chat or research

_SMALL_TALK_WORDS = frozenset(
    [
        "hi",
        "hello",
        "hey",
        "hiya",
        "yo",
        "howdy",
        "greetings",
        "thanks",
        "thank",
        "thx",
        "ty",
        "cheers",
        "bye",
        "goodbye",
        "ok",
        "okay",
        "cool",
        "great",
        "nice",
        "good",
        "morning",
        "afternoon",
        "evening",
        "night",
        "please",
        "you",
        "so",
        "much",
        "lol",
        "yes",
        "no",
        "sure",
        "welcome",
        "there",
        "all",
        "bot",
        "assistant",
    ]
)
_SMALL_TALK_PHRASES = re.compile(
    r"\b(how are you|how's it going|how are things|who are you|what are you|what can you do"
    r"|what's up|whats up|nice to meet you|how do you do)\b",
    re.I,
)
# Words a question opens with: the question words and the verbs of a yes/no question.
_QUESTION_WORDS = (
    frozenset(re.findall(r"\w+", "who whom whose what when where which why how")) | AUXILIARIES
)
_RESEARCH_VERBS = re.compile(
    r"^\s*(please\s+)?(find|search|research|look up|investigate|explain|compare|summari[sz]e"
    r"|describe|list|tell me about|give me|show me|what about)\b",
    re.I,
)


def classify(message: str) -> Mode:
    """`chat` or `research` for `message` (see the module rules)."""
    tokens = words(message)
    if not tokens or all(token in _SMALL_TALK_WORDS for token in tokens):
        return "chat"
    if _SMALL_TALK_PHRASES.search(message) and len(key_terms(message)) <= 1:
        return "chat"
    if message.rstrip().endswith("?") or tokens[0] in _QUESTION_WORDS:
        return "research"
    if _RESEARCH_VERBS.search(message):
        return "research"
    return "research" if len(key_terms(message)) >= 3 else "chat"


# --------------------------------------------------------------------------- comparisons

_TIME_COMPARATIVES = frozenset(
    [
        "older",
        "oldest",
        "younger",
        "youngest",
        "first",
        "earlier",
        "earliest",
        "later",
        "latest",
        "last",
        "newer",
        "newest",
    ]
)
SIZE_COMPARATIVES = {  # a comparative of measure -> the adjective a sub-question asks with
    "larger": "large", "largest": "large", "bigger": "big", "biggest": "big",
    "smaller": "small", "smallest": "small", "taller": "tall", "tallest": "tall",
    "longer": "long", "longest": "long", "shorter": "short", "shortest": "short",
    "higher": "high", "highest": "high", "heavier": "heavy", "deeper": "deep",
    "wider": "wide", "faster": "fast",
}  # fmt: skip
_ENTITY = (
    r"[A-Z0-9\"\u201c][\w'\u2019.\"\u201d&-]*(?:\s+(?:(?:of|the|de|la|von|van|in|on)\s+)*"
    r"[A-Z0-9\"\u201c][\w'\u2019.\"\u201d&-]*)*"
)
_OR_COMPARISON = re.compile(
    rf"^(?P<left>(?:which|who|what)\b[^?]*?)\s+or\s+(?:the\s+)?(?P<b>{_ENTITY})\s*\??\s*$",
    re.I,
)
_AND_COMPARISON = re.compile(
    r"^(?i:are|were|is|was|do|did|does)\s+(?:both\s+)?(?:[a-z]+,\s+)?(?:the\s+)?(?P<a>.+?)\s+and\s+"
    rf"(?:the\s+)?(?P<b>{_ENTITY}),?\s+(?:both\s+)?(?P<rest>[^?]+?)\s*\?\s*$",
)
_COMPARATIVE_WORD = re.compile(r"\b(\w+er|\w+est|first|last|more|most|less|fewer)\b", re.I)
_SAME_NOUN = re.compile(r"\bsame\s+(\w+)", re.I)
_HEAD_VERB = re.compile(r"\b(?:was|were|is|are)\s+(\w+ed|born|built|made|written|founded)\b", re.I)
_WHICH_NOUN = re.compile(r"^(?:which|what)\s+(?:\w+\s+)?(?:\w+\s+)?(?=is|was|are|were)", re.I)


def comparison_entities(question: str) -> tuple[str, str] | None:
    """The two entities a comparison question compares, or None when it is not one."""
    found = _comparison(question.strip())
    return None if found is None else (found[0].entity or "", found[1].entity or "")


def _or_sub_questions(head: str, a: str, b: str) -> tuple[SubQuestion, SubQuestion]:
    head_words = words(head)
    verb_match = _HEAD_VERB.search(head)
    if any(word in _TIME_COMPARATIVES for word in head_words):
        verb = verb_match.group(1) if verb_match else "born or founded"
        template = "When was {e} " + verb + "?"
    elif size := next((SIZE_COMPARATIVES[w] for w in head_words if w in SIZE_COMPARATIVES), ""):
        template = "How " + size + " is {e}?"
    else:
        rest = _WHICH_NOUN.sub("", head).strip()
        auxiliary, _, predicate = rest.partition(" ")
        if auxiliary.lower() in ("is", "was", "are", "were") and predicate:
            template = auxiliary.capitalize() + " {e} " + predicate.rstrip(",") + "?"
        else:
            template = "{e}: " + head.rstrip(",") + "?"
    return (
        SubQuestion(template.format(e=a), entity=a),
        SubQuestion(template.format(e=b), entity=b),
    )


def _comparison(question: str) -> tuple[SubQuestion, SubQuestion] | None:
    if match := _OR_COMPARISON.match(question):
        left, b = match["left"], match["b"].strip()
        head, comma, a = left.rpartition(",")
        if not comma:
            comparatives = list(_COMPARATIVE_WORD.finditer(left))
            if not comparatives:
                return None
            head, a = left[: comparatives[-1].end()], left[comparatives[-1].end() :]
        a = re.sub(r"^the\s+", "", a.strip())
        if a and b and len(a.split()) <= 8:
            return _or_sub_questions(head.strip(), a, b)
    if match := _AND_COMPARISON.match(question):
        a, b, rest = match["a"].strip(), match["b"].strip(), match["rest"].strip()
        if same := _SAME_NOUN.search(rest):
            noun = same.group(1)
            return (
                SubQuestion(f"In which {noun} is {a}?", entity=a),
                SubQuestion(f"In which {noun} is {b}?", entity=b),
            )
        auxiliary = question.split(None, 1)[0].lower()
        verb = {"are": "Is", "were": "Was", "do": "Does", "did": "Did", "does": "Does"}.get(
            auxiliary, auxiliary.capitalize()
        )
        return (
            SubQuestion(f"{verb} {a} {rest}?", entity=a),
            SubQuestion(f"{verb} {b} {rest}?", entity=b),
        )
    return None


# --------------------------------------------------------------------------- bridges

_ROLE_VERBS = {
    "director": "directed", "author": "wrote", "writer": "wrote", "founder": "founded",
    "creator": "created", "producer": "produced", "composer": "composed", "designer": "designed",
    "architect": "designed", "inventor": "invented", "developer": "developed",
    "publisher": "published", "owner": "owns", "builder": "built", "painter": "painted",
    "singer": "sang", "performer": "performed", "discoverer": "discovered",
}  # fmt: skip
_ROLE_OF = re.compile(
    r"\b[Tt]he\s+(?P<role>[a-z]+(?:\s+[a-z]+)?)\s+of\s+(?P<x>(?:the\s+)?[A-Z0-9\"\u201c][^?,]*?)"
    r"(?=\s+(?:born|die|died|founded|located|based|released|made|built|located|is|was|were|"
    r"are|have|has|had|play|played|start|started|win|won)\b|\s*\?|\s*,|$)",
)
_RELATIVE = re.compile(
    r"^(?P<wh>(?:in\s+)?(?:what|which|when|where|how|who)\b[^?]*?\b(?:was|is|were|are|did|does))"
    r"\s+(?P<np>the\s+(?:[a-z]+\s+){0,2}?[a-z]+)\s+(?:that|who|which|whom)\s+(?P<clause>.+?)"
    r"\s+(?P<tail>born|die|died|founded|formed|established|located|based|live|lived|play|played)"
    r"\s*\?\s*$",
    re.I,
)
_WH_PERSON_ROLES = frozenset(
    [
        "director",
        "author",
        "writer",
        "founder",
        "creator",
        "producer",
        "composer",
        "designer",
        "architect",
        "inventor",
        "developer",
        "painter",
        "singer",
        "performer",
        "discoverer",
        "president",
        "leader",
        "ceo",
        "chairman",
        "king",
        "queen",
        "wife",
        "husband",
        "father",
        "mother",
        "son",
        "daughter",
        "brother",
        "sister",
        "actor",
        "actress",
        "star",
        "coach",
        "captain",
        "owner",
        "manager",
        "player",
        "member",
        "receiver",
        "winner",
        "recipient",
    ]
)


def _role_question(role: str, subject: str) -> str:
    head = role.split()[-1]
    if verb := _ROLE_VERBS.get(head):
        return f"Who {verb} {subject}?"
    asker = "Who" if head in _WH_PERSON_ROLES else "What"
    return f"{asker} is the {role} of {subject}?"


def _bridge(question: str) -> tuple[SubQuestion, SubQuestion] | None:
    if match := _RELATIVE.match(question):
        noun = match["np"].split()[-1].lower()
        asker = "Who" if noun in _WH_PERSON_ROLES or noun in ("man", "woman", "person") else "What"
        first = f"{asker} {match['clause'].strip()}?"
        second = f"{match['wh']} {BRIDGE} {match['tail']}?"
        return SubQuestion(first), SubQuestion(second[0].upper() + second[1:], depends_on=0)
    for match in _ROLE_OF.finditer(question):
        role = match["role"].lower()
        if role.split()[-1] not in _ROLE_VERBS and role.split()[-1] not in _WH_PERSON_ROLES:
            continue
        subject = match["x"].strip()
        first = _role_question(role, subject)
        second = question[: match.start()] + BRIDGE + question[match.end() :]
        if len(key_terms(second.replace(BRIDGE, ""))) < 1:
            continue  # "Who is the author of X?" asks the first step itself
        return SubQuestion(first), SubQuestion(" ".join(second.split()), depends_on=0)
    return None


def plan(question: str) -> Plan:
    """The sub-questions for `question` (see the module rules)."""
    question = " ".join(question.split())
    if pair := _comparison(question):
        return Plan(question, "comparison", pair)
    if pair := _bridge(question):
        return Plan(question, "bridge", pair)
    return Plan(question, "single", (SubQuestion(question),))


def resolve_bridge(current: Plan, index: int, evidence: Sequence[str]) -> Plan:
    """`current` with `{bridge}` filled in every sub-question that depends on sub-question
    `index`, from the answer its `evidence` (sentences, best first) gives; unchanged when the
    evidence holds no answer."""
    bridge = extract_answer(current.sub_questions[index].text, evidence)
    if bridge is None:
        return current
    subs = tuple(
        replace(sub, text=sub.text.replace(BRIDGE, bridge)) if sub.depends_on == index else sub
        for sub in current.sub_questions
    )
    return replace(current, sub_questions=subs)
