"""The validation rule engine: load a declarative rules file, run its rules over an extraction.

A rules file (YAML) looks like::

    version: 1
    extends: default        # optional: start from the shipped rules, override them by id
    rules:
      - id: threshold.total
        type: threshold     # one of the built-in rule types (see builtin.py)
        severity: warning   # error -> invalid, warning -> needs_review, info -> recorded only
        applies_to: [invoice]
        params: {field: total, above: 10000}
        message: "{detail}; a second approver must sign off"   # optional template
        enabled: true       # optional; `enabled: false` (id alone) drops an inherited rule

Everything is checked at load time: YAML syntax, the schema of every rule, its params and its
message placeholders. A problem raises `RulesError` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bastion.config import DEFAULT_REVIEW_CONFIDENCE
from bastion.pipeline.model import (
    DocumentType,
    ExtractionResult,
    Finding,
    Outcome,
    Severity,
    ValidationResult,
)
from bastion.pipeline.validator.builtin import (
    BUILTIN_RULE_TYPES,
    SEVERITY_RANK,
    ClaimInvoice,
    Emission,
    RequiredParams,
    RuleContext,
    RuleType,
    template_fields,
)

__all__ = [
    "RULES_FILE_VERSION",
    "Rule",
    "RuleSet",
    "RulesError",
    "load_rules",
    "outcome_of",
    "validate",
]

RULES_FILE_VERSION = 1

log = structlog.get_logger("bastion.validator")

Loc = tuple[str | int, ...]


class RulesError(Exception):
    """A rules file that cannot be used. `problems` is a list of (line or None, problem)."""

    def __init__(self, source: str, problems: Sequence[tuple[int | None, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        self.line = self.problems[0][0] if self.problems else None
        self.problem = self.problems[0][1] if self.problems else ""
        super().__init__(
            "\n".join(
                f"{source}:{line}: {problem}" if line is not None else f"{source}: {problem}"
                for line, problem in self.problems
            )
        )


# --------------------------------------------------------------------------------------------
# Compiled rules


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _cap(severity: Severity, limit: Severity | None) -> Severity:
    if limit is not None and SEVERITY_RANK[limit] < SEVERITY_RANK[severity]:
        return limit
    return severity


@dataclass(frozen=True)
class Rule:
    """One loaded rule: its type, validated params and the message template per check."""

    id: str
    type: RuleType[Any]
    severity: Severity
    applies_to: frozenset[DocumentType]
    params: BaseModel
    messages: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def finding(self, emission: Emission, document_type: str) -> Finding:
        values = _Values(rule_id=self.id, document_type=document_type, field=emission.field or "")
        values.update(emission.values)
        check = self.type.checks[emission.check]
        values["detail"] = check.default.format_map(values)
        message = self.messages.get(emission.check, check.default).format_map(values)
        return Finding(
            rule_id=self.id + check.rule_suffix,
            severity=_cap(self.severity, emission.max_severity),
            message=message,
            field=emission.field,
        )


@dataclass(frozen=True)
class RuleSet:
    """The rules to run, in file order, and where they came from."""

    rules: tuple[Rule, ...]
    source: str
    version: int = RULES_FILE_VERSION

    def get(self, rule_id: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)

    def for_document(self, document_type: str) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if document_type in rule.applies_to)

    def required_fields(self, document_type: str) -> tuple[str, ...]:
        """The fields the `required` rules for this document type name, in order."""
        names: dict[str, None] = {}
        for rule in self.for_document(document_type):
            if isinstance(rule.params, RequiredParams):
                names.update(dict.fromkeys(rule.params.fields))
        return tuple(names)


# --------------------------------------------------------------------------------------------
# File schema


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    extends: Literal["default"] | None = None
    rules: list[Any]


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=100)
    type: str | None = None
    severity: Severity | None = None
    applies_to: list[DocumentType] | None = Field(None, min_length=1)
    params: dict[str, Any] | None = None
    message: str | dict[str, str] | None = None
    enabled: bool = True
    description: str = ""

    @field_validator("applies_to", mode="before")
    @classmethod
    def _one_type(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


def _loc_text(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _node_at(root: yaml.Node, loc: Loc) -> yaml.Node:
    """The deepest node along `loc` that exists in the document."""
    node = root
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child = value
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node = child
    return node


def _duplicate_keys(node: yaml.Node, seen: set[int] | None = None) -> list[tuple[int, str]]:
    """(line, problem) for each mapping key that appears twice (YAML would keep the last)."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return []
    seen.add(id(node))
    out: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in keys:
                    out.append((key.start_mark.line + 1, f"duplicate key {key.value!r}"))
                keys.add(key.value)
            out.extend(_duplicate_keys(value, seen))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out.extend(_duplicate_keys(item, seen))
    return out


def _parse_yaml(text: str, source: str) -> tuple[yaml.Node, Any]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise RulesError(source, [(None, "the file is empty")])
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = exc.context or ""
        if context and exc.context_mark is not None and exc.context_mark is not mark:
            context += f" (from line {exc.context_mark.line + 1})"
        problem = ": ".join(part for part in (context, exc.problem) if part)
        raise RulesError(
            source, [(mark.line + 1 if mark else None, f"invalid YAML: {problem or exc}")]
        ) from None
    except yaml.YAMLError as exc:
        raise RulesError(source, [(None, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return node, data


class _Compiler:
    """Turns one parsed file into rules, collecting every problem with its line."""

    def __init__(self, source: str, root: yaml.Node) -> None:
        self.source = source
        self.root = root
        self.problems: list[tuple[int | None, str]] = []

    def problem(self, loc: Loc, text: str) -> None:
        self.problems.append((_node_at(self.root, loc).start_mark.line + 1, text))

    def pydantic_problems(
        self, exc: ValidationError, base: Loc, label: str, shown: Loc = ()
    ) -> None:
        """One problem per pydantic error; `base` locates the node, `shown` prefixes the name."""
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = _loc_text(shown + loc)
            head = ": ".join(part for part in (label, where) if part)
            msg = str(err["msg"]).removeprefix("Value error, ")
            self.problem(base + loc, f"{head}: {msg}" if head else msg)

    def file(self, data: Any) -> tuple[_FileSpec | None, list[tuple[_RuleSpec, Rule | None]]]:
        if not isinstance(data, dict):
            self.problem((), "the top level must be a mapping with `version` and `rules`")
            return None, []
        try:
            spec = _FileSpec.model_validate(data)
        except ValidationError as exc:
            self.pydantic_problems(exc, (), "")
            return None, []
        if spec.version != RULES_FILE_VERSION:
            self.problem(
                ("version",),
                f"unsupported rules file version {spec.version} "
                f"(this engine reads version {RULES_FILE_VERSION})",
            )
            return None, []
        compiled: list[tuple[_RuleSpec, Rule | None]] = []
        ids: set[str] = set()
        for index, raw in enumerate(spec.rules):
            item = self.rule(index, raw)
            if item is None:
                continue
            if item[0].id in ids:
                self.problem(("rules", index, "id"), f"rules[{index}]: duplicate id {item[0].id!r}")
                continue
            ids.add(item[0].id)
            compiled.append(item)
        return spec, compiled

    def rule(self, index: int, raw: Any) -> tuple[_RuleSpec, Rule | None] | None:
        base: Loc = ("rules", index)
        if not isinstance(raw, dict):
            self.problem(base, f"rules[{index}]: a rule must be a mapping")
            return None
        label = f"rules[{index}]"
        if isinstance(raw.get("id"), str):
            label += f" (id {raw['id']!r})"
        try:
            spec = _RuleSpec.model_validate(raw)
        except ValidationError as exc:
            self.pydantic_problems(exc, base, label)
            return None
        if not spec.enabled:
            return spec, None
        missing = [name for name in ("type", "severity", "applies_to") if raw.get(name) is None]
        for name in missing:
            self.problem((*base, name), f"{label}: {name}: Field required")
        if missing or spec.type is None or spec.severity is None or spec.applies_to is None:
            return None
        rule_type = BUILTIN_RULE_TYPES.get(spec.type)
        if rule_type is None:
            known = ", ".join(sorted(BUILTIN_RULE_TYPES))
            self.problem(
                (*base, "type"), f"{label}: unknown rule type {spec.type!r} (known: {known})"
            )
            return None
        params: BaseModel | None = None
        try:
            params = rule_type.params_model.model_validate(spec.params or {})
        except ValidationError as exc:
            self.pydantic_problems(exc, (*base, "params"), label, ("params",))
        messages = self.messages(base, label, rule_type, spec.message)
        if params is None or messages is None:
            return None
        return spec, Rule(
            id=spec.id,
            type=rule_type,
            severity=spec.severity,
            applies_to=frozenset(spec.applies_to),
            params=params,
            messages=messages,
            description=spec.description,
        )

    def messages(
        self, base: Loc, label: str, rule_type: RuleType[Any], message: str | dict[str, str] | None
    ) -> dict[str, str] | None:
        checks = rule_type.checks
        if message is None:
            return {}
        if isinstance(message, str):
            available = frozenset.intersection(*(c.placeholders for c in checks.values()))
            ok = self.template((*base, "message"), f"{label}: message", message, available)
            return dict.fromkeys(checks, message) if ok else None
        out: dict[str, str] = {}
        good = True
        for check, template in message.items():
            loc = (*base, "message", check)
            if check not in checks:
                self.problem(
                    loc,
                    f"{label}: message.{check}: {rule_type.name!r} has no check {check!r} "
                    f"(checks: {', '.join(checks)})",
                )
                good = False
            elif self.template(
                loc, f"{label}: message.{check}", template, checks[check].placeholders
            ):
                out[check] = template
            else:
                good = False
        return out if good else None

    def template(self, loc: Loc, where: str, template: str, available: frozenset[str]) -> bool:
        try:
            names = template_fields(template)
        except ValueError as exc:
            self.problem(loc, f"{where}: {exc}")
            return False
        unknown = sorted(names - available)
        if unknown:
            self.problem(
                loc,
                f"{where}: unknown placeholder {', '.join('{' + n + '}' for n in unknown)} "
                f"(available: {', '.join('{' + n + '}' for n in sorted(available))})",
            )
            return False
        return True


def _compile(text: str, source: str) -> tuple[_FileSpec, list[tuple[_RuleSpec, Rule | None]]]:
    root, data = _parse_yaml(text, source)
    compiler = _Compiler(source, root)
    compiler.problems.extend(_duplicate_keys(root))
    spec, rules = compiler.file(data)
    if compiler.problems or spec is None:
        raise RulesError(source, sorted(compiler.problems, key=lambda p: p[0] or 0))
    return spec, rules


def _default_source() -> tuple[str, str]:
    resource = resources.files("bastion").joinpath("data", "rules.yaml")
    return resource.read_text(encoding="utf-8"), str(resource)


@cache
def _default_rules() -> RuleSet:
    text, source = _default_source()
    spec, compiled = _compile(text, source)
    if spec.extends is not None:
        raise RulesError(source, [(None, "the default rules cannot extend other rules")])
    return RuleSet(tuple(rule for _, rule in compiled if rule is not None), source)


def load_rules(path: Path | None = None) -> RuleSet:
    """Load and check a rules file; None loads the shipped default (`bastion/data/rules.yaml`).

    With `extends: default`, the file's rules replace shipped rules with the same id (in place),
    `enabled: false` drops one, and new ids are appended. Raises RulesError on any problem.
    """
    if path is None:
        return _default_rules()
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(source, [(None, f"cannot read the rules file: {exc}")]) from None
    spec, compiled = _compile(text, source)
    own = {rule_spec.id: rule for rule_spec, rule in compiled}
    if spec.extends is None:
        return RuleSet(tuple(rule for rule in own.values() if rule is not None), source)
    merged: list[Rule] = []
    for inherited in _default_rules().rules:
        if inherited.id not in own:
            merged.append(inherited)
            continue
        replacement = own.pop(inherited.id)
        if replacement is not None:
            merged.append(replacement)
    merged.extend(rule for rule in own.values() if rule is not None)
    return RuleSet(tuple(merged), source)


# --------------------------------------------------------------------------------------------
# Evaluation


def outcome_of(findings: Iterable[Finding]) -> Outcome:
    """invalid if any error, else needs_review if any warning, else valid."""
    severities = {finding.severity for finding in findings}
    if "error" in severities:
        return "invalid"
    if "warning" in severities:
        return "needs_review"
    return "valid"


async def validate(
    result: ExtractionResult,
    rules: RuleSet,
    *,
    claim_invoice: ClaimInvoice | None = None,
    today: date | None = None,
    review_confidence: float = DEFAULT_REVIEW_CONFIDENCE,
) -> ValidationResult:
    """Run every rule that applies to the document's type; aggregate the findings.

    Rules run in file order, except those whose type `runs_last` (the duplicate claim): they
    run after the others and see their outcome. `today` defaults to the current UTC date;
    `review_confidence` is the `low_confidence` rules' threshold where they set none. A rule
    that raises is reported as a finding of at most warning severity (the document goes to
    review), never as a silent pass.
    """
    ctx = RuleContext(
        result=result,
        today=today if today is not None else datetime.now(UTC).date(),
        required_fields=rules.required_fields(result.document_type),
        claim_invoice=claim_invoice,
        review_confidence=review_confidence,
    )
    applicable = rules.for_document(result.document_type)
    findings: list[Finding] = []
    for rule in applicable:
        if not rule.type.runs_last:
            findings.extend(await _evaluate(rule, ctx))
    last = [rule for rule in applicable if rule.type.runs_last]
    if last:
        ctx = replace(ctx, outcome_so_far=outcome_of(findings))
        for rule in last:
            findings.extend(await _evaluate(rule, ctx))
    return ValidationResult(outcome=outcome_of(findings), findings=findings)


async def _evaluate(rule: Rule, ctx: RuleContext) -> list[Finding]:
    """One rule's findings; a rule that raises is one finding of at most warning severity."""
    try:
        emissions = await rule.type.evaluate(rule.params, ctx)
    except Exception as exc:
        log.exception("validation rule failed", rule_id=rule.id)
        return [
            Finding(
                rule_id=rule.id,
                severity=_cap(rule.severity, "warning"),
                message=f"rule {rule.id} could not be evaluated: {type(exc).__name__}: {exc}",
            )
        ]
    return [rule.finding(emission, ctx.result.document_type) for emission in emissions]
