"""Guardrail policies: a full policy and the shipped ones load with their settings; strength
semantics; and every malformed file fails at load with its line and a helpful problem."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from bastion.guardrails.policy import (
    Policy,
    PolicyAction,
    PolicyError,
    covers,
    default_policy,
    load_policy,
    parse_policy,
)
from bastion.guardrails.types import CONTENT_CATEGORIES, PII_TYPES, Confidence, Direction

POLICIES = Path(__file__).parents[2] / "src" / "bastion" / "guardrails" / "policies"

FULL = """\
version: "2026-11-24.1"
name: full
description: every setting once
blocked_messages: {input: "No, thank you.", output: "Withheld."}
content_filters:
  PROMPT_ATTACK: {input: HIGH, output: NONE, action: BLOCK}
  HATE: MEDIUM
  INSULTS: {input: LOW, output: HIGH, action: {input: NONE, output: BLOCK}}
denied_topics:
  - name: investment_advice
    definition: Recommendations on buying or selling investments.
    examples: ["Which stocks should I buy?", "Is gold a good bet?"]
  - name: legal advice
    definition: How the law applies to someone's case.
    action: {input: NONE, output: BLOCK}
word_filters: {profanity: true, words: ["project nightingale", bluebird], action: NONE}
sensitive_information:
  anonymize_with: token
  pii:
    EMAIL: ANONYMIZE
    CREDIT_DEBIT_CARD_NUMBER: {input: ANONYMIZE, output: BLOCK}
    URL: NONE
  regexes:
    - name: EMPLOYEE_ID
      pattern: "EMP-\\\\d{6}"
      description: HR staff numbers
      action: ANONYMIZE
"""


def _error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(dedent(text), "strict.yaml")
    return caught.value


# --------------------------------------------------------------------------------------------
# Valid policies


def test_full_policy_loads_every_setting() -> None:
    policy = parse_policy(FULL, "full.yaml")
    assert (policy.version, policy.name, policy.source) == ("2026-11-24.1", "full", "full.yaml")
    assert policy.blocked_message(Direction.INPUT) == "No, thank you."
    assert policy.blocked_message("output") == "Withheld."

    assert policy.content_strength("PROMPT_ATTACK", Direction.INPUT) is Confidence.HIGH
    assert policy.content_strength("PROMPT_ATTACK", Direction.OUTPUT) is Confidence.NONE
    assert policy.content_strength("HATE", "input") is Confidence.MEDIUM
    assert policy.content_strength("HATE", "output") is Confidence.MEDIUM
    assert policy.content_action("HATE", "output") is True  # BLOCK when left out
    assert policy.content_action("INSULTS", "input") is False
    assert policy.content_action("INSULTS", "output") is True
    assert policy.content_strength("INSULTS", "output") is Confidence.HIGH
    # Categories the file does not name are off.
    assert set(policy.content_filters) == set(CONTENT_CATEGORIES)
    assert policy.content_strength("VIOLENCE", "input") is Confidence.NONE

    first, second = policy.topics
    assert first.name == "investment_advice"
    assert first.examples == ("Which stocks should I buy?", "Is gold a good bet?")
    assert (first.action.input, first.action.output) == (PolicyAction.BLOCK, PolicyAction.BLOCK)
    assert second.name == "legal advice" and second.examples == ()
    assert second.action[Direction.INPUT] is PolicyAction.NONE
    assert second.action[Direction.OUTPUT] is PolicyAction.BLOCK

    assert policy.profanity is True
    assert policy.words == ("project nightingale", "bluebird")
    assert policy.word_action.input is PolicyAction.NONE

    assert policy.anonymize_with == "token"
    assert policy.pii_types == {"EMAIL", "CREDIT_DEBIT_CARD_NUMBER", "URL"}
    assert policy.pii_action("EMAIL", "output") is PolicyAction.ANONYMIZE
    assert policy.pii_action("CREDIT_DEBIT_CARD_NUMBER", "input") is PolicyAction.ANONYMIZE
    assert policy.pii_action("CREDIT_DEBIT_CARD_NUMBER", "output") is PolicyAction.BLOCK
    assert policy.pii_action("URL", "input") is PolicyAction.NONE
    assert policy.pii_action("NAME", "input") is PolicyAction.NONE  # not looked for

    (regex,) = policy.regexes
    assert regex.name == "EMPLOYEE_ID" and regex.description == "HR staff numbers"
    assert regex.pattern.search("staff EMP-123456 ok").group() == "EMP-123456"  # compiled
    assert regex.action.output is PolicyAction.ANONYMIZE


def test_minimal_policy_has_safe_defaults() -> None:
    policy = parse_policy('version: "1"\nname: minimal\n')
    assert all(policy.content_strength(c, "input") is Confidence.NONE for c in CONTENT_CATEGORIES)
    assert policy.topics == () and policy.words == () and policy.profanity is False
    assert policy.pii_types == frozenset() and policy.regexes == ()
    assert policy.anonymize_with == "type"
    assert "content policy" in policy.blocked_message("input")


def test_default_policy_has_the_documented_settings() -> None:
    policy = default_policy()
    assert isinstance(policy, Policy) and policy.name == "default"
    assert policy.version == "2026-11-24.1"
    # Prompt injection inside documents: any confidence blocks on the way in.
    assert policy.content_strength("PROMPT_ATTACK", "input") is Confidence.HIGH
    assert policy.content_action("PROMPT_ATTACK", "input") is True
    assert policy.content_covers("PROMPT_ATTACK", "input", Confidence.LOW)
    assert policy.content_strength("PROMPT_ATTACK", "output") is Confidence.NONE
    # Moderate content filters.
    for category in ("HATE", "INSULTS", "SEXUAL", "VIOLENCE"):
        for direction in Direction:
            assert policy.content_strength(category, direction) is Confidence.MEDIUM
            assert policy.content_action(category, direction) is True
    assert policy.content_strength("MISCONDUCT", "input") is Confidence.LOW
    # Personal data anonymized both ways; secrets and card numbers blocked in answers.
    for pii in ("NAME", "EMAIL", "PHONE", "ADDRESS", "IP_ADDRESS", "IBAN"):
        for direction in Direction:
            assert policy.pii_action(pii, direction) is PolicyAction.ANONYMIZE
    for secret in ("AWS_ACCESS_KEY", "AWS_SECRET_KEY", "PASSWORD", "CREDIT_DEBIT_CARD_NUMBER"):
        assert policy.pii_action(secret, "input") is PolicyAction.ANONYMIZE
        assert policy.pii_action(secret, "output") is PolicyAction.BLOCK
    assert policy.pii_types == set(PII_TYPES)  # every type is at least reported
    assert policy.anonymize_with == "type"
    assert policy.profanity is True
    assert policy.word_action.input is PolicyAction.NONE
    assert policy.word_action.output is PolicyAction.BLOCK
    assert default_policy() is policy  # loaded once


def test_shipped_files_load_from_disk() -> None:
    default = load_policy(POLICIES / "default.yaml")
    assert default.version == default_policy().version
    strict = load_policy(POLICIES / "strict.yaml")
    assert strict.source.endswith("strict.yaml")
    assert strict.anonymize_with == "token"
    assert {topic.name for topic in strict.topics} == {"investment_advice", "legal_advice"}
    assert all(strict.content_strength(c, "output") is Confidence.HIGH for c in ("HATE", "SEXUAL"))
    assert [regex.name for regex in strict.regexes] == ["EMPLOYEE_ID", "CONTRACT_NUMBER"]


# --------------------------------------------------------------------------------------------
# Strength semantics


@pytest.mark.parametrize(
    ("strength", "acts_on"),
    [
        (Confidence.HIGH, {Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH}),
        (Confidence.MEDIUM, {Confidence.MEDIUM, Confidence.HIGH}),
        (Confidence.LOW, {Confidence.HIGH}),
        (Confidence.NONE, set()),
    ],
)
def test_strength_acts_on_confidence_at_or_above_its_reverse(
    strength: Confidence, acts_on: set[Confidence]
) -> None:
    assert {level for level in Confidence if covers(strength, level)} == acts_on


def test_policy_applies_strength_per_direction() -> None:
    policy = parse_policy('version: "1"\nname: x\ncontent_filters: {HATE: {input: LOW}}\n')
    assert policy.content_covers("HATE", "input", Confidence.HIGH)
    assert not policy.content_covers("HATE", "input", Confidence.MEDIUM)
    assert not policy.content_covers("HATE", "output", Confidence.HIGH)  # NONE: off


# --------------------------------------------------------------------------------------------
# Malformed files: the file, the line and the problem


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        pytest.param(
            """\
            version: "1"
            name: x
            content_filters:
              HATE:
                input: VERY_HIGH
            """,
            5,
            "content_filters.HATE.input: 'VERY_HIGH' is not one of NONE, LOW, MEDIUM, HIGH",
            id="strength",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            content_filters:
              VIOLENCE: MEDIUM
              HATE: VERY_HIGH
            """,
            5,
            "content_filters.HATE: 'VERY_HIGH' is not one of NONE, LOW, MEDIUM, HIGH",
            id="strength-short-form",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            content_filters:
              HATE: {input: LOW, action: ANONYMIZE}
            """,
            4,
            "content_filters.HATE.action: 'ANONYMIZE' is not one of BLOCK, NONE",
            id="filter-action",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            content_filters:
              HATRED: HIGH
            """,
            4,
            "content_filters.HATRED: unknown content filter category 'HATRED' "
            "(did you mean 'HATE'?); known: HATE, INSULTS, SEXUAL, VIOLENCE, MISCONDUCT, "
            "PROMPT_ATTACK",
            id="unknown-category",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            sensitive_information:
              pii:
                EMAIL: ANONYMIZE
                EMAILS: BLOCK
            """,
            6,
            "sensitive_information.pii.EMAILS: unknown PII type 'EMAILS' (did you mean 'EMAIL'?)",
            id="unknown-pii-type",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            sensitive_information:
              pii: {EMAIL: {input: ANONYMISE, output: BLOCK}}
            """,
            4,
            "sensitive_information.pii.EMAIL.input: 'ANONYMISE' is not one of BLOCK, "
            "ANONYMIZE, NONE",
            id="pii-action",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            word_filters:
              profanity: true
              wrods: [a]
            """,
            5,
            "word_filters: unknown key 'wrods' (did you mean 'words'?)",
            id="unknown-key",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            enabled: true
            """,
            3,
            "unknown key 'enabled'",
            id="unknown-top-level-key",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            word_filters:
              profanity: "yes"
            """,
            4,
            "word_filters.profanity: expected true or false, got 'yes' (str)",
            id="wrong-type-bool",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            denied_topics:
              - name: a
                definition: d
                examples: "one example"
            """,
            6,
            "denied_topics[0].examples: expected a list, got 'one example' (str)",
            id="wrong-type-list",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            sensitive_information:
              pii: [EMAIL]
            """,
            4,
            "sensitive_information.pii: expected a mapping, got a list",
            id="wrong-type-mapping",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            word_filters:
              words: [ok, 3]
            """,
            4,
            "word_filters.words[1]: expected a string, got 3 (int)",
            id="wrong-type-word",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            word_filters:
              words:
                - ok
                - "   "
            """,
            6,
            "word_filters.words[1]: must not be blank",
            id="blank-word",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            sensitive_information:
              regexes:
                - name: EMPLOYEE_ID
                  pattern: "EMP-(\\\\d{6}"
                  action: ANONYMIZE
            """,
            6,
            "sensitive_information.regexes[0].pattern: invalid regular expression "
            "'EMP-(\\\\d{6}': missing ), unterminated subpattern at position 4",
            id="invalid-regex",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            sensitive_information:
              regexes:
                - {name: CODE, pattern: "[A-Z]*", action: BLOCK}
            """,
            5,
            "sensitive_information.regexes[0].pattern: the regular expression '[A-Z]*' "
            "matches the empty string",
            id="regex-matches-empty",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            sensitive_information:
              regexes:
                - {name: EMAIL, pattern: "x@y", action: BLOCK}
            """,
            5,
            "sensitive_information.regexes[0].name: 'EMAIL' is a built-in PII type",
            id="regex-named-like-pii",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            sensitive_information:
              regexes:
                - {name: employee id, pattern: "x", action: BLOCK}
            """,
            5,
            "sensitive_information.regexes[0].name: 'employee id' is not an upper-case name",
            id="regex-name",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            sensitive_information:
              regexes:
                - {name: CODE, pattern: "x"}
            """,
            5,
            "sensitive_information.regexes[0]: missing required key 'action'",
            id="regex-without-action",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            denied_topics:
              - name: investment_advice
                definition: Buying or selling investments.
              - name: crypto
                definition: Cryptocurrencies.
              - name: investment_advice
                definition: Again.
            """,
            8,
            "denied_topics[2].name: duplicate topic name 'investment_advice'",
            id="duplicate-topic",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            sensitive_information:
              regexes:
                - {name: CODE, pattern: "A\\\\d", action: BLOCK}
                - {name: CODE, pattern: "B\\\\d", action: BLOCK}
            """,
            6,
            "sensitive_information.regexes[1].name: duplicate regex name 'CODE'",
            id="duplicate-regex",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            denied_topics:
              - name: crypto
                examples: [Should I buy Bitcoin]
            """,
            4,
            "denied_topics[0]: missing required key 'definition'",
            id="topic-without-definition",
        ),
        pytest.param(
            """\
            name: x
            content_filters: {HATE: HIGH}
            """,
            1,
            "missing required key 'version'",
            id="missing-version",
        ),
        pytest.param(
            """\
            # the policy
            version: 2026-11-24
            name: x
            """,
            2,
            'version: must be a quoted string such as "2026-11-24.1", got 2026-11-24 (date)',
            id="unquoted-version",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            content_filters: {HATE: HIGH
            word_filters: {}
            """,
            4,
            "invalid YAML: while parsing a flow mapping (from line 3); expected ',' or '}'",
            id="yaml-syntax",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
              description: indented
            """,
            3,
            "invalid YAML: mapping values are not allowed here",
            id="yaml-indentation",
        ),
        pytest.param(
            """\
            version: "1"
            name: x
            word_filters: {profanity: true}
            word_filters: {profanity: false}
            """,
            4,
            "duplicate key 'word_filters'",
            id="duplicate-key",
        ),
        pytest.param(
            """\
            - version: "1"
            """,
            1,
            "the policy must be a mapping of settings",
            id="not-a-mapping",
        ),
    ],
)
def test_malformed_policy_fails_at_load_with_line_and_problem(
    text: str, line: int, problem: str
) -> None:
    error = _error(text)
    assert error.source == "strict.yaml"
    assert error.line == line
    assert error.problem.startswith(problem), error.problem
    assert str(error).startswith(f"strict.yaml:{line}: {problem}")


def test_every_problem_is_reported_in_line_order() -> None:
    error = _error(
        """\
        version: "1"
        name: x
        content_filters:
          HATE: EXTREME
        word_filters:
          profanity: maybe
        """
    )
    assert [line for line, _ in error.problems] == [4, 6]
    assert str(error).splitlines() == [
        "strict.yaml:4: content_filters.HATE: 'EXTREME' is not one of NONE, LOW, MEDIUM, HIGH",
        "strict.yaml:6: word_filters.profanity: expected true or false, got 'maybe' (str)",
    ]


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"empty\.yaml: the file is empty"):
        load_policy(empty)
    with pytest.raises(PolicyError, match=r"missing\.yaml: cannot read the policy"):
        load_policy(tmp_path / "missing.yaml")


def test_load_policy_names_the_file_it_read(tmp_path: Path) -> None:
    path = tmp_path / "strict.yaml"
    path.write_text('version: "1"\nname: x\ncontent_filters: {HATE: {input: VERY_HIGH}}\n')
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.source == str(path)
    assert str(caught.value).startswith(f"{path}:3: content_filters.HATE.input:")
    assert isinstance(caught.value, ValueError)
