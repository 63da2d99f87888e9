"""Alarm rules: the model of one rule and the loading of a rules YAML file.

A rules file is `{rules: [...]}`; each rule reads one value from the scraped metrics and
compares it with a threshold:

    - name: GatewayErrorRatio          # a Prometheus alert name: letters, digits, _
      kind: ratio                      # rate | ratio | delta | gauge
      metric: bastion_http_responses_total
      labels: {status_class: 5xx}      # equality matchers
      denominator: {metric: bastion_http_responses_total}
      window: 5m                       # rate, ratio, delta: the range of the rate
      op: ">"                          # > >= < <= == !=
      threshold: 0.05
      for: 5m                          # held this long before firing (default 0s)
      severity: critical               # info | warning | critical
      summary: More than 5% of the gateway's responses are server errors

Kinds: `rate` is `aggregate(rate(metric{labels}[window]))` (a counter), `ratio` the sum of the
numerator's rates over the sum of the denominator's, `delta` `aggregate(delta(...))` (a
gauge's change over the window), `gauge` `aggregate(metric{labels})`. `aggregate` is `sum`
(default for rate and delta), `max` (default for gauge) or `min`. Every rule maps to one
PromQL expression (`bastion.alarms.promql`), so Prometheus can evaluate the same rules.

`load_rules` raises `RulesError` naming the file, the rule and the field to fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "AlarmRule",
    "Kind",
    "RulesError",
    "Selector",
    "format_duration",
    "load_rules",
    "parse_duration",
    "parse_rules",
    "shipped_rules_text",
]

SHIPPED_RULES = "alarms.yaml"
MAX_RULES = 200

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_METRIC_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_DURATION_RE = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNITS = (("h", 3600), ("m", 60), ("s", 1))


class RulesError(Exception):
    """A rules file that cannot be used; the message names the file, rule and field."""


class Kind(StrEnum):
    RATE = "rate"
    RATIO = "ratio"
    DELTA = "delta"
    GAUGE = "gauge"


Op = Literal[">", ">=", "<", "<=", "==", "!="]
Aggregate = Literal["sum", "max", "min"]
Severity = Literal["info", "warning", "critical"]


def parse_duration(text: str | int | float) -> int:
    """Seconds in a Prometheus duration (`30s`, `5m`, `1h30m`); a bare number is seconds."""
    if isinstance(text, bool):
        raise ValueError("a duration is written like 30s, 5m or 1h")
    if isinstance(text, int | float):
        if text < 0 or text != int(text):
            raise ValueError(f"a duration in seconds must be a whole number >= 0, not {text}")
        return int(text)
    match = _DURATION_RE.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"bad duration {text!r}: write it like 30s, 5m, 1h or 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: int) -> str:
    """`seconds` as Prometheus writes a duration (`0s`, `90s` -> `1m30s`)."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _metric_name(cls: Any, v: str) -> str:
    if not _METRIC_RE.fullmatch(v):
        raise ValueError(f"bad metric name {v!r}: letters, digits, _ and :")
    return v


def _label_names(cls: Any, v: dict[str, str]) -> dict[str, str]:
    for name in v:
        if not _LABEL_RE.fullmatch(name) or name.startswith("__"):
            raise ValueError(f"bad label name {name!r}: letters, digits and _")
    return v


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Selector(_Model):
    """A metric name and the label values its series must have."""

    metric: str
    labels: dict[str, str] = Field(default_factory=dict)

    _metric = field_validator("metric")(_metric_name)
    _labels = field_validator("labels")(_label_names)

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        """Whether a series (sample name, labels) is one of this selector's."""
        return name == self.metric and all(labels.get(k) == v for k, v in self.labels.items())


class AlarmRule(_Model):
    """One alarm: a value read from the metrics, compared with `threshold`."""

    name: str
    kind: Kind
    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    denominator: Selector | None = None
    aggregate: Aggregate | None = None
    window: int | None = None
    op: Op = ">"
    threshold: float = Field(allow_inf_nan=False)
    hold: int = Field(default=0, alias="for")
    severity: Severity = "warning"
    summary: str

    _metric = field_validator("metric")(_metric_name)
    _labels = field_validator("labels")(_label_names)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.fullmatch(v):
            raise ValueError(f"bad name {v!r}: a letter, then letters, digits or _ (at most 64)")
        return v

    @field_validator("window", "hold", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @field_validator("summary")
    @classmethod
    def _summary(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v or len(v) > 300:
            raise ValueError("write a one-line summary of at most 300 characters")
        return v

    @model_validator(mode="after")
    def _fits_kind(self) -> Self:
        ranged = self.kind is not Kind.GAUGE
        if ranged and not self.window:
            raise ValueError(f"a {self.kind} rule needs a window (like 5m)")
        if not ranged and self.window is not None:
            raise ValueError("a gauge rule reads the latest value: remove window")
        if (self.kind is Kind.RATIO) != (self.denominator is not None):
            raise ValueError("a ratio rule needs a denominator, and only a ratio rule takes one")
        if self.kind is Kind.RATIO and self.aggregate not in (None, "sum"):
            raise ValueError("a ratio rule sums both rates: remove aggregate")
        return self

    @property
    def selector(self) -> Selector:
        return Selector(metric=self.metric, labels=self.labels)

    @property
    def how(self) -> Aggregate:
        """The aggregation over the matching series."""
        if self.aggregate is not None:
            return self.aggregate
        return "max" if self.kind is Kind.GAUGE else "sum"

    def selectors(self) -> list[Selector]:
        return [self.selector] + ([self.denominator] if self.denominator else [])

    def breached(self, value: float) -> bool:
        """Whether `value` meets the rule's condition."""
        return {
            ">": value > self.threshold,
            ">=": value >= self.threshold,
            "<": value < self.threshold,
            "<=": value <= self.threshold,
            "==": value == self.threshold,
            "!=": value != self.threshold,
        }[self.op]


def shipped_rules_text() -> str:
    """The shipped default rules file."""
    return (resources.files("bastion") / "data" / SHIPPED_RULES).read_text(encoding="utf-8")


def load_rules(path: Path | None = None) -> list[AlarmRule]:
    """The rules of `path`, or the shipped rules when None."""
    if path is None:
        return parse_rules(shipped_rules_text(), f"shipped {SHIPPED_RULES}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(
            f"{path}: cannot read the alarm rules ({exc.strerror or exc}); fix alarms.rules_file "
            "or leave it empty for the shipped rules"
        ) from None
    return parse_rules(text, str(path))


def parse_rules(text: str, source: str) -> list[AlarmRule]:
    """The rules of a rules YAML document; `source` names it in errors."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise RulesError(
            f"{source}{where}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    if not isinstance(document, dict) or set(document) != {"rules"}:
        raise RulesError(f"{source}: write a mapping with one key, rules: a list of rules")
    entries = document["rules"]
    if not isinstance(entries, list) or not entries:
        raise RulesError(f"{source}: rules must be a non-empty list")
    if len(entries) > MAX_RULES:
        raise RulesError(f"{source}: {len(entries)} rules, at most {MAX_RULES} are allowed")
    rules = [_rule(entry, index, source) for index, entry in enumerate(entries)]
    _unique(rules, source)
    return rules


def _rule(entry: Any, index: int, source: str) -> AlarmRule:
    name = entry.get("name") if isinstance(entry, dict) else None
    where = f"{source}: rules[{index}]" + (f" ({name})" if isinstance(name, str) else "")
    if not isinstance(entry, dict):
        raise RulesError(f"{where}: a rule is a mapping of name, kind, metric, ...")
    try:
        return AlarmRule.model_validate(entry)
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise RulesError(f"{where}: {problems}") from None


def _problem(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field (remove it)"
    return f"{field}: {message}" if field else message


def _unique(rules: Sequence[AlarmRule], source: str) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise RulesError(f"{source}: two rules are named {rule.name}: names must be unique")
        seen.add(rule.name)
