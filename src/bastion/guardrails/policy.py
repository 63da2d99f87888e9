r"""Guardrail policies: versioned YAML files that say, per direction, what the engine blocks,
anonymizes or only reports.

A policy file looks like this (`policies/default.yaml` is the shipped default, `strict.yaml` a
fuller example)::

    version: "2026-11-24.1"          # required, a quoted string
    name: default
    blocked_messages: {input: "...", output: "..."}
    content_filters:                 # HATE, INSULTS, SEXUAL, VIOLENCE, MISCONDUCT, PROMPT_ATTACK
      HATE: MEDIUM                   # short form: this strength both ways, action BLOCK
      PROMPT_ATTACK: {input: HIGH, output: NONE, action: BLOCK}
    denied_topics:
      - name: investment_advice
        definition: Recommendations on buying or selling securities or other investments.
        examples: ["Which stocks should I buy?"]
        action: BLOCK                # or {input: BLOCK, output: NONE}; BLOCK when left out
    word_filters: {profanity: true, words: ["project nightingale"], action: BLOCK}
    sensitive_information:
      anonymize_with: type           # `{EMAIL}`; `token` writes a reversible token instead
      pii: {EMAIL: ANONYMIZE, CREDIT_DEBIT_CARD_NUMBER: {input: ANONYMIZE, output: BLOCK}}
      regexes: [{name: EMPLOYEE_ID, pattern: "EMP-\\d{6}", action: ANONYMIZE}]

Semantics follow Amazon Bedrock Guardrails. A content filter's strength is the reverse of the
confidence it acts on (`covers`): HIGH acts on LOW-confidence detections and above, MEDIUM on
MEDIUM and above, LOW only on HIGH, NONE turns the filter off; its action BLOCK blocks, NONE only
reports. A PII type or regex with action NONE is detected and reported; a PII type the file does
not name is not looked for.

Everything is checked when the file is loaded, never at scan time: YAML syntax, duplicate keys,
unknown keys and values, types, PII types and categories, regexes (compiled, and rejected when
they match the empty string), duplicate topic and regex names. A problem raises `PolicyError`
with the file and line (`strict.yaml:14: content_filters.HATE.input: 'VERY_HIGH' is not one of
NONE, LOW, MEDIUM, HIGH`): the file is composed into YAML nodes first, and each pydantic error's
location is looked up among them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Generic, TypeVar, cast

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
)
from pydantic_core import ErrorDetails

from bastion.guardrails.anonymize import AnonymizeMode
from bastion.guardrails.types import CONTENT_CATEGORIES, PII_TYPES, Confidence, Direction

__all__ = [
    "ContentFilter",
    "CustomRegex",
    "PerDirection",
    "Policy",
    "PolicyAction",
    "PolicyError",
    "Topic",
    "covers",
    "default_policy",
    "load_policy",
    "parse_policy",
]

T = TypeVar("T")
Loc = tuple[str | int, ...]


class PolicyAction(StrEnum):
    BLOCK = "BLOCK"
    ANONYMIZE = "ANONYMIZE"  # sensitive information only
    NONE = "NONE"  # detect and report only


def covers(strength: Confidence, confidence: Confidence) -> bool:
    """Whether a filter of `strength` acts on a detection of `confidence`: HIGH acts on LOW and
    above, MEDIUM on MEDIUM and above, LOW only on HIGH; NONE (either side) never."""
    return confidence + strength > Confidence.HIGH


@dataclass(frozen=True, slots=True)
class PerDirection(Generic[T]):
    """One setting for text going in, one for text coming out."""

    input: T
    output: T

    def __getitem__(self, direction: Direction | str) -> T:
        return self.input if Direction(direction) is Direction.INPUT else self.output


@dataclass(frozen=True, slots=True)
class ContentFilter:
    category: str
    strength: PerDirection[Confidence]
    blocks: PerDirection[bool]  # False: detections are reported, not blocked


@dataclass(frozen=True, slots=True)
class Topic:
    """A denied topic, matched semantically against its definition and examples."""

    name: str
    definition: str
    examples: tuple[str, ...]
    action: PerDirection[PolicyAction]  # BLOCK or NONE


@dataclass(frozen=True, slots=True)
class CustomRegex:
    """A custom sensitive-information pattern; its findings have the type `name`."""

    name: str
    pattern: re.Pattern[str]
    description: str
    action: PerDirection[PolicyAction]


@dataclass(frozen=True, slots=True, eq=False)
class Policy:
    """A loaded, checked policy. Compared and hashed by identity."""

    version: str
    name: str
    description: str
    source: str
    blocked_messages: PerDirection[str]
    content_filters: Mapping[str, ContentFilter]  # every category, the unnamed ones off
    topics: tuple[Topic, ...]
    profanity: bool
    words: tuple[str, ...]
    word_action: PerDirection[PolicyAction]  # BLOCK or NONE
    anonymize_with: AnonymizeMode
    pii: Mapping[str, PerDirection[PolicyAction]]  # only the types the policy looks for
    regexes: tuple[CustomRegex, ...]

    def content_strength(self, category: str, direction: Direction | str) -> Confidence:
        """The filter strength of a content category (NONE: the filter is off)."""
        return self.content_filters[category].strength[direction]

    def content_action(self, category: str, direction: Direction | str) -> bool:
        """Whether the category's filter blocks (True) or only reports (False) what it covers."""
        return self.content_filters[category].blocks[direction]

    def content_covers(
        self, category: str, direction: Direction | str, confidence: Confidence
    ) -> bool:
        """Whether a detection of `confidence` in the category trips its filter."""
        return covers(self.content_strength(category, direction), confidence)

    @property
    def pii_types(self) -> frozenset[str]:
        """The PII types the policy looks for (whatever their action)."""
        return frozenset(self.pii)

    def pii_action(self, pii_type: str, direction: Direction | str) -> PolicyAction:
        """What to do with a PII finding; NONE for a type the policy does not look for."""
        actions = self.pii.get(pii_type)
        return PolicyAction.NONE if actions is None else actions[direction]

    def blocked_message(self, direction: Direction | str) -> str:
        return self.blocked_messages[direction]


class PolicyError(ValueError):
    """A policy file that cannot be used: `file:line: problem`, one line per problem found
    (`line`, `problem` are the first one's; `problems` holds them all)."""

    def __init__(self, source: str, problems: Sequence[tuple[int | None, str]]) -> None:
        self.source = source
        self.problems = tuple(problems)
        self.line, self.problem = self.problems[0]
        super().__init__("\n".join(_located(source, line, text) for line, text in self.problems))


def _located(source: str, line: int | None, problem: str) -> str:
    return f"{source}:{line}: {problem}" if line is not None else f"{source}: {problem}"


# --------------------------------------------------------------------------------------------
# File schema

_STRENGTHS = tuple(level.name for level in Confidence)
_BLOCK_OR_NONE = (PolicyAction.BLOCK.value, PolicyAction.NONE.value)
_PII_ACTIONS = tuple(action.value for action in PolicyAction)
_DEFAULT_MESSAGES = {
    "input": "Sorry, this request cannot be processed: it conflicts with the content policy.",
    "output": "Sorry, the answer was withheld: it conflicts with the content policy.",
}


def _one_of(choices: Sequence[str], what: str = "") -> AfterValidator:
    """A check that a string is one of `choices` (listed in the message, with a suggestion)."""

    def check(value: str) -> str:
        if value in choices:
            return value
        if not what:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        close = difflib.get_close_matches(value.upper(), choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown {what} {value!r}{hint}; known: {', '.join(choices)}")

    return AfterValidator(check)


def _matching(pattern: str, description: str) -> AfterValidator:
    """A check that a string matches `pattern`, explained by `description` when it does not."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if compiled.fullmatch(value) is None:
            raise ValueError(f"{value!r} is not {description}")
        return value

    return AfterValidator(check)


def _both_directions(value: Any) -> Any:
    """The short form `KEY: VALUE` means the same value for input and output."""
    return {"input": value, "output": value} if isinstance(value, str) else value


def _quoted_version(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f'must be a quoted string such as "2026-11-24.1", got {_describe(value)}')
    return value


def _compiles(pattern: str) -> str:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    if compiled.search("") is not None:
        raise ValueError(f"the regular expression {pattern!r} matches the empty string")
    return pattern


def _non_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


def _not_a_pii_type(name: str) -> str:
    if name in PII_TYPES:
        raise ValueError(f"{name!r} is a built-in PII type; give the regex another name")
    return name


_Text = Annotated[str, AfterValidator(_non_blank)]
_Strength = Annotated[str, _one_of(_STRENGTHS)]
_BlockAction = Annotated[str, _one_of(_BLOCK_OR_NONE)]
_PiiAction = Annotated[str, _one_of(_PII_ACTIONS)]
_Category = Annotated[str, _one_of(CONTENT_CATEGORIES, "content filter category")]
_PiiType = Annotated[str, _one_of(PII_TYPES, "PII type")]
_PolicyName = Annotated[
    str, _matching(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", "a name of letters, digits and _.-")
]
_TopicName = Annotated[
    str,
    _matching(r"[A-Za-z0-9][A-Za-z0-9 _.!?-]{0,99}", "a name of letters, digits, spaces and _.!?-"),
]
_RegexName = Annotated[
    str,
    _matching(r"[A-Z][A-Z0-9_]{0,99}", "an upper-case name such as EMPLOYEE_ID"),
    AfterValidator(_not_a_pii_type),
]


class _Spec(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _BlockActions(_Spec):
    input: _BlockAction
    output: _BlockAction


class _PiiActions(_Spec):
    input: _PiiAction
    output: _PiiAction


_BLOCK_BOTH = _BlockActions(input="BLOCK", output="BLOCK")
_BlockActionsSpec = Annotated[_BlockActions, BeforeValidator(_both_directions)]
_PiiActionsSpec = Annotated[_PiiActions, BeforeValidator(_both_directions)]


class _ContentFilterSpec(_Spec):
    input: _Strength = "NONE"
    output: _Strength = "NONE"
    action: _BlockActionsSpec = _BLOCK_BOTH


class _TopicSpec(_Spec):
    name: _TopicName
    definition: _Text
    examples: list[_Text] = []
    action: _BlockActionsSpec = _BLOCK_BOTH


class _WordFiltersSpec(_Spec):
    profanity: bool = False
    words: list[_Text] = []
    action: _BlockActionsSpec = _BLOCK_BOTH


class _RegexSpec(_Spec):
    name: _RegexName
    pattern: Annotated[str, AfterValidator(_compiles)]
    description: str = ""
    action: _PiiActionsSpec


class _SensitiveSpec(_Spec):
    anonymize_with: Annotated[str, _one_of(("type", "token"))] = "type"
    pii: dict[_PiiType, _PiiActionsSpec] = {}
    regexes: list[_RegexSpec] = []


class _MessagesSpec(_Spec):
    input: _Text = _DEFAULT_MESSAGES["input"]
    output: _Text = _DEFAULT_MESSAGES["output"]


class _PolicySpec(_Spec):
    version: Annotated[str, BeforeValidator(_quoted_version), _matching(r"\S+", "a version")]
    name: _PolicyName
    description: str = ""
    blocked_messages: _MessagesSpec = _MessagesSpec()
    content_filters: dict[
        _Category, Annotated[_ContentFilterSpec, BeforeValidator(_both_directions)]
    ] = {}
    denied_topics: list[_TopicSpec] = []
    word_filters: _WordFiltersSpec = _WordFiltersSpec()
    sensitive_information: _SensitiveSpec = _SensitiveSpec()


# --------------------------------------------------------------------------------------------
# Problems and their lines

_EXPECTED = {
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def _known_keys() -> list[str]:
    specs: list[type[BaseModel]] = [
        _PolicySpec,
        _MessagesSpec,
        _ContentFilterSpec,
        _TopicSpec,
        _WordFiltersSpec,
        _SensitiveSpec,
        _RegexSpec,
    ]
    return sorted({name for spec in specs for name in spec.model_fields})


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    shown = repr(value) if isinstance(value, str) else str(value)
    return f"{shown} ({type(value).__name__})"


def _message(error: ErrorDetails) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _known_keys(), n=1)
        return f"unknown key {loc[-1]!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_describe(error['input'])}"
    return str(error["msg"]).removeprefix("Value error, ")


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """(the node that starts the entry, its value) of a mapping key or sequence index."""
    if isinstance(node, yaml.MappingNode):
        found = None
        for key, value in node.value:  # the last of duplicate keys wins, as in the data
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                found = (key, value)
        return found
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part], node.value[part]
    return None


def _locate(root: yaml.Node, loc: Loc) -> tuple[int, Loc]:
    """The 1-based line of the deepest entry along `loc` in the document, and its path."""
    node, line, depth = root, root.start_mark.line, 0
    for part in loc:
        entry = _child(node, part)
        if entry is None:
            break
        line, node, depth = entry[0].start_mark.line, entry[1], depth + 1
    return line + 1, loc[:depth]


def _path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problem(root: yaml.Node, loc: Loc, message: str, *, parent: bool = False) -> tuple[int, str]:
    """(line, `path: message`) of the entry at `loc`; `parent`: the message names the entry's
    key, so the path stops before it."""
    line, found = _locate(root, loc)
    where = _path(found[: len(loc) - 1] if parent else found)
    return line, f"{where}: {message}" if where else message


def _validation_problems(root: yaml.Node, exc: ValidationError) -> Iterator[tuple[int, str]]:
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if part != "[key]")
        parent = error["type"] in ("missing", "extra_forbidden")
        yield _problem(root, loc, _message(error), parent=parent)


def _duplicate_keys(node: yaml.Node) -> Iterator[tuple[int, str]]:
    """A key given twice in one mapping (YAML would silently keep the last)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    yield key.start_mark.line + 1, f"duplicate key {key.value!r}"
                seen.add(key.value)
            yield from _duplicate_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item)


def _duplicate_names(
    root: yaml.Node, base: Loc, names: Sequence[str], what: str
) -> Iterator[tuple[int, str]]:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            yield _problem(root, (*base, index, "name"), f"duplicate {what} name {name!r}")
        seen.add(name)


def _compose(text: str) -> tuple[yaml.Node, Any]:
    """The document's node tree and its data; YAML errors carry their line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise _Invalid([(None, "the file is empty")])
        return node, loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        line = _line_of(exc.problem_mark or exc.context_mark)
        context = exc.context or ""
        if context and _line_of(exc.context_mark) not in (None, line):
            context += f" (from line {_line_of(exc.context_mark)})"
        problem = "; ".join(part for part in (context, exc.problem) if part) or str(exc)
        raise _Invalid([(line, f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise _Invalid([(None, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()


def _line_of(mark: yaml.Mark | None) -> int | None:
    return None if mark is None else mark.line + 1


class _Invalid(Exception):
    def __init__(self, problems: Sequence[tuple[int | None, str]]) -> None:
        self.problems = problems


def _check(text: str) -> _PolicySpec:
    root, data = _compose(text)
    problems = list(_duplicate_keys(root))
    spec: _PolicySpec | None = None
    if not isinstance(data, dict):
        problems.append((root.start_mark.line + 1, "the policy must be a mapping of settings"))
    else:
        try:
            spec = _PolicySpec.model_validate(data)
        except ValidationError as exc:
            problems.extend(_validation_problems(root, exc))
    if spec is not None:
        topics = [topic.name for topic in spec.denied_topics]
        regexes = [regex.name for regex in spec.sensitive_information.regexes]
        problems.extend(_duplicate_names(root, ("denied_topics",), topics, "topic"))
        problems.extend(
            _duplicate_names(root, ("sensitive_information", "regexes"), regexes, "regex")
        )
    if problems or spec is None:
        unique = dict.fromkeys(problems)  # the short forms report a problem once per direction
        raise _Invalid(sorted(unique, key=lambda problem: problem[0] or 0))
    return spec


# --------------------------------------------------------------------------------------------
# Building the policy


def _directions(actions: _BlockActions | _PiiActions) -> PerDirection[PolicyAction]:
    return PerDirection(PolicyAction(actions.input), PolicyAction(actions.output))


def _content_filter(category: str, spec: _ContentFilterSpec | None) -> ContentFilter:
    spec = spec or _ContentFilterSpec()
    return ContentFilter(
        category,
        PerDirection(Confidence[spec.input], Confidence[spec.output]),
        PerDirection(spec.action.input == "BLOCK", spec.action.output == "BLOCK"),
    )


def _build(spec: _PolicySpec, source: str) -> Policy:
    sensitive = spec.sensitive_information
    return Policy(
        version=spec.version,
        name=spec.name,
        description=spec.description,
        source=source,
        blocked_messages=PerDirection(spec.blocked_messages.input, spec.blocked_messages.output),
        content_filters=MappingProxyType(
            {c: _content_filter(c, spec.content_filters.get(c)) for c in CONTENT_CATEGORIES}
        ),
        topics=tuple(
            Topic(t.name, t.definition, tuple(t.examples), _directions(t.action))
            for t in spec.denied_topics
        ),
        profanity=spec.word_filters.profanity,
        words=tuple(spec.word_filters.words),
        word_action=_directions(spec.word_filters.action),
        anonymize_with=cast(AnonymizeMode, sensitive.anonymize_with),
        pii=MappingProxyType({t: _directions(a) for t, a in sensitive.pii.items()}),
        regexes=tuple(
            CustomRegex(r.name, re.compile(r.pattern), r.description, _directions(r.action))
            for r in sensitive.regexes
        ),
    )


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Check and load a policy from YAML text; `source` names it in errors."""
    try:
        return _build(_check(text), source)
    except _Invalid as invalid:
        raise PolicyError(source, invalid.problems) from None


def load_policy(path: str | Path) -> Policy:
    """Check and load a policy file; any problem raises `PolicyError` naming file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(path), [(None, f"cannot read the policy: {exc}")]) from None
    return parse_policy(text, str(path))


def shipped_policy_names() -> list[str]:
    """The policies shipped in `bastion/guardrails/policies/`, by name (`default`, `strict`...)."""
    folder = resources.files("bastion.guardrails").joinpath("policies")
    names = (p.name for p in folder.iterdir())
    return sorted(name.removesuffix(".yaml") for name in names if name.endswith(".yaml"))


@cache
def shipped_policy(name: str) -> Policy:
    """A shipped policy by name (see `shipped_policy_names`); KeyError for any other name."""
    if name not in shipped_policy_names():
        raise KeyError(name)
    resource = resources.files("bastion.guardrails").joinpath("policies", f"{name}.yaml")
    return parse_policy(resource.read_text(encoding="utf-8"), f"{name}.yaml")


def default_policy() -> Policy:
    """The shipped default policy (`bastion/guardrails/policies/default.yaml`)."""
    return shipped_policy("default")
