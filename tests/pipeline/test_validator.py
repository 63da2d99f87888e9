"""The Validator's rule engine: each built-in rule type, outcome aggregation, rules files."""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bastion.config import load_settings
from bastion.pipeline.agents.validator import definition as validator_definition
from bastion.pipeline.model import (
    DuplicateClaim,
    ExtractedField,
    ExtractionResult,
    Finding,
    ValidationResult,
)
from bastion.pipeline.validator import (
    BUILTIN_RULE_TYPES,
    InvoiceKey,
    Rule,
    RulesError,
    RuleSet,
    load_rules,
    outcome_of,
    validate,
)
from bastion.pipeline.validator.builtin import Check, Emission, Params, RuleContext, RuleType
from bastion.project import init_project

TODAY = date(2024, 6, 1)
DEFAULT = load_rules()


def fields(values: dict[str, Any], confidence: float = 0.95) -> dict[str, ExtractedField]:
    return {k: ExtractedField(value=v, confidence=confidence, page=1) for k, v in values.items()}


def invoice(**overrides: Any) -> ExtractionResult:
    """A consistent invoice; keyword arguments replace (or, with None, remove) fields."""
    values: dict[str, Any] = {
        "invoice_number": "INV-2024-001",
        "issue_date": "2024-05-02",
        "due_date": "2024-06-01",
        "issuer": "ACME GmbH",
        "customer": "Globex SA",
        "currency": "EUR",
        "subtotal": 100.0,
        "tax": 19.0,
        "total": 119.0,
        "vat_id": "DE136695976",
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
        "line_items": [
            {"description": "Widget", "quantity": 3, "unit_price": 10.0, "amount": 30.0},
            {"description": "Service", "quantity": 1, "unit_price": 70.0, "amount": 70.0},
        ],
    }
    for key, value in overrides.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return ExtractionResult(document_type="invoice", confidence=0.97, fields=fields(values))


async def run(
    result: ExtractionResult, rules: RuleSet = DEFAULT, **kwargs: Any
) -> ValidationResult:
    kwargs.setdefault("today", TODAY)
    return await validate(result, rules, **kwargs)


def only(result: ValidationResult, rule_id: str) -> list[Finding]:
    return [f for f in result.findings if f.rule_id == rule_id]


def write_rules(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> RulesError:
    path = write_rules(tmp_path, text)
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert str(path) in str(info.value)
    return info.value


# --------------------------------------------------------------------------------------------
# Default rules


def test_default_rules_ship_as_package_data() -> None:
    resource = resources.files("bastion").joinpath("data", "rules.yaml")
    assert resource.is_file()
    assert resource.read_text(encoding="utf-8").find("version: 1") >= 0
    assert DEFAULT.version == 1
    assert DEFAULT.source.endswith("rules.yaml")
    assert {rule.type.name for rule in DEFAULT.rules} == set(BUILTIN_RULE_TYPES)
    assert load_rules() is DEFAULT  # parsed once


def test_default_required_fields() -> None:
    assert DEFAULT.required_fields("invoice") == (
        "invoice_number",
        "issue_date",
        "issuer",
        "total",
        "currency",
    )
    assert DEFAULT.required_fields("contract") == ("parties", "effective_date")
    assert DEFAULT.required_fields("report") == ("title",)
    assert DEFAULT.required_fields("other") == ()


async def test_consistent_invoice_is_valid() -> None:
    result = await run(invoice())
    assert result.findings == []
    assert result.outcome == "valid"


async def test_other_documents_only_get_the_rules_on_extraction_findings() -> None:
    doc = ExtractionResult(document_type="other", confidence=0.2)
    assert (await run(doc)).outcome == "valid"
    types = [r.type.name for r in DEFAULT.for_document("other")]
    assert types == ["guardrail", "extraction_finding"]


# --------------------------------------------------------------------------------------------
# required


@pytest.mark.parametrize("name", ["invoice_number", "issue_date", "issuer", "total", "currency"])
async def test_required_invoice_field_missing(name: str) -> None:
    result = await run(invoice(**{name: None}))
    assert result.outcome == "invalid"
    [finding] = only(result, "required.invoice")
    assert finding.severity == "error"
    assert finding.field == name
    assert finding.message == f"required field {name} is missing"


async def test_required_blank_values_count_as_missing() -> None:
    result = await run(invoice(issuer="   "))
    assert [f.field for f in only(result, "required.invoice")] == ["issuer"]


async def test_required_optional_fields_may_be_absent() -> None:
    result = await run(invoice(customer=None, bic=None, vat_id=None, iban=None, due_date=None))
    assert result.outcome == "valid"


async def test_required_contract_and_report() -> None:
    contract = ExtractionResult(
        document_type="contract",
        confidence=0.9,
        fields=fields({"parties": [], "effective_date": "2024-01-01"}),
    )
    result = await run(contract)
    assert result.outcome == "invalid"
    assert [f.message for f in only(result, "required.contract")] == [
        "required field parties is missing"
    ]
    contract.fields.update(fields({"parties": ["ACME GmbH", "Globex SA"]}))
    assert (await run(contract)).outcome == "valid"

    report = ExtractionResult(document_type="report", confidence=0.9)
    assert [f.field for f in (await run(report)).findings] == ["title"]
    report.fields.update(fields({"title": "Annual report 2023"}))
    assert (await run(report)).outcome == "valid"


async def test_required_fields_are_configurable(tmp_path: Path) -> None:
    rules = load_rules(
        write_rules(
            tmp_path,
            """
            version: 1
            extends: default
            rules:
              - id: required.invoice
                type: required
                severity: error
                applies_to: [invoice]
                params: {fields: [invoice_number, customer]}
            """,
        )
    )
    result = await run(invoice(customer=None, issuer=None), rules)
    assert [f.field for f in result.findings] == ["customer"]
    assert rules.required_fields("invoice") == ("invoice_number", "customer")


# --------------------------------------------------------------------------------------------
# arithmetic


async def test_total_mismatch_message() -> None:
    result = await run(invoice(total=120.0))
    assert result.outcome == "invalid"
    [finding] = only(result, "arithmetic.invoice")
    assert finding.field == "total"
    assert finding.message == "subtotal 100.00 + tax 19.00 = 119.00, but total is 120.00"


async def test_line_items_must_sum_to_subtotal() -> None:
    result = await run(invoice(subtotal=101.0, total=120.0))
    [finding] = only(result, "arithmetic.invoice")
    assert finding.field == "subtotal"
    assert finding.message == (
        "line items sum to 100.00, but subtotal is 101.00 (difference 1.00, tolerance 0.02)"
    )


async def test_line_amount_must_match_quantity_times_price() -> None:
    items = [
        {"description": "Widget", "quantity": 3, "unit_price": 10.0, "amount": 31.0},
        {"description": "Service", "quantity": 1, "unit_price": 69.0, "amount": 69.0},
    ]
    [finding] = only(await run(invoice(line_items=items)), "arithmetic.invoice")
    assert finding.field == "line_items"
    assert finding.message == (
        "line item 1 ('Widget'): quantity 3 x unit price 10.00 = 30.00, but amount is 31.00"
    )


async def test_line_amount_derived_from_quantity_and_price() -> None:
    items = [
        {"description": "Widget", "quantity": 3, "unit_price": 10.0},
        {"description": "Service", "quantity": 1, "unit_price": 70.0, "amount": None},
    ]
    assert (await run(invoice(line_items=items))).outcome == "valid"
    items[1]["unit_price"] = 80.0
    assert only(await run(invoice(line_items=items)), "arithmetic.invoice")


async def test_line_sum_against_total_without_subtotal_and_tax() -> None:
    assert (await run(invoice(subtotal=None, tax=None, total=100.0))).outcome == "valid"
    [finding] = only(await run(invoice(subtotal=None, tax=None)), "arithmetic.invoice")
    assert finding.field == "total"
    assert "line items sum to 100.00, but total is 119.00" in finding.message


@pytest.mark.parametrize(
    ("total", "ok"),
    [(119.01, True), (118.99, True), (119.011, False), (118.989, False), (119.02, False)],
)
async def test_absolute_tolerance_edges(total: float, ok: bool) -> None:
    result = await run(invoice(total=total, line_items=None))
    assert (result.outcome == "valid") is ok, result.findings


def _arith_rules(tmp_path: Path, params: str) -> RuleSet:
    return load_rules(
        write_rules(
            tmp_path,
            f"""
            version: 1
            rules:
              - id: arith
                type: arithmetic
                severity: error
                applies_to: [invoice]
                params: {params}
            """,
        )
    )


@pytest.mark.parametrize(
    ("total", "ok"),
    [(1001.0, True), (1000.0, True), (1002.0, True), (999.9, False), (1002.1, False)],
)
async def test_relative_tolerance_edges(tmp_path: Path, total: float, ok: bool) -> None:
    # subtotal + tax = 1001.00; tolerance = max(0.01, 0.001 * |total|): exactly 1.00 at 1000.00
    rules = _arith_rules(tmp_path, "{abs_tolerance: 0.01, rel_tolerance: 0.001}")
    doc = invoice(subtotal=900.0, tax=101.0, total=total, line_items=None)
    assert ((await run(doc, rules)).outcome == "valid") is ok


async def test_rounded_line_amounts(tmp_path: Path) -> None:
    # Three thirds of 1.00, each shown as 0.33: the lines sum to 0.99.
    items = [{"description": "third", "quantity": 1, "unit_price": 1 / 3, "amount": 0.33}] * 3
    doc = invoice(subtotal=1.0, tax=0.19, total=1.19, line_items=items)
    rounding = _arith_rules(tmp_path, "{abs_tolerance: 0, line_rounding: true}")
    assert (await run(doc, rounding)).outcome == "valid"
    strict = _arith_rules(tmp_path, "{abs_tolerance: 0, line_rounding: false}")
    messages = [f.message for f in (await run(doc, strict)).findings]
    assert any("line items sum to 0.99, but subtotal is 1.00" in m for m in messages)


async def test_amounts_use_currency_minor_units() -> None:
    doc = invoice(currency="JPY", subtotal=1000, tax=100, total=1200, line_items=None)
    [finding] = only(await run(doc), "arithmetic.invoice")
    assert finding.message == "subtotal 1000 + tax 100 = 1100, but total is 1200"


async def test_decimal_arithmetic_no_float_noise() -> None:
    doc = invoice(subtotal=0.1, tax=0.2, total=0.3, line_items=None)
    assert (await run(doc)).outcome == "valid"


async def test_amounts_as_numeric_strings_and_non_numbers() -> None:
    assert (await run(invoice(subtotal="100.00", tax="19", total="119.00"))).outcome == "valid"
    result = await run(invoice(tax="nineteen"))
    [finding] = only(result, "arithmetic.invoice")
    assert finding.message == "tax is not a number: 'nineteen'"
    items = [{"description": "Widget", "quantity": 1, "unit_price": 100.0, "amount": "lots"}]
    [finding] = only(await run(invoice(line_items=items)), "arithmetic.invoice")
    assert finding.message == "line item 1 amount is not a number: 'lots'"


@pytest.mark.parametrize("value", ["1e999999999", "1e-999999999", "NaN", float("inf"), True])
async def test_absurd_amounts_are_not_numbers(value: Any) -> None:
    [finding] = only(await run(invoice(tax=value)), "arithmetic.invoice")
    assert finding.message.startswith("tax is not a number: ")
    assert len(finding.message) < 100


async def test_malformed_line_items_do_not_crash() -> None:
    for items in ("three widgets", [1, 2], [{"description": "x"}]):
        result = await run(invoice(line_items=items))
        assert result.outcome == "valid", (items, result.findings)


# --------------------------------------------------------------------------------------------
# dates


async def test_due_date_before_issue_date() -> None:
    result = await run(invoice(issue_date="2024-05-02", due_date="2024-05-01"))
    assert result.outcome == "invalid"
    [finding] = only(result, "dates.invoice")
    assert finding.field == "due_date"
    assert finding.message == "due_date 2024-05-01 is before issue_date 2024-05-02"


async def test_due_date_on_issue_date_is_fine() -> None:
    assert (await run(invoice(due_date="2024-05-02"))).outcome == "valid"


async def test_issue_date_in_the_future() -> None:
    doc = invoice(issue_date="2024-06-02", due_date="2024-07-01")
    [finding] = only(await run(doc), "dates.invoice")
    assert finding.message == "issue_date 2024-06-02 is in the future (today is 2024-06-01)"
    assert (await run(doc, today=date(2024, 6, 2))).outcome == "valid"


async def test_today_defaults_to_the_current_utc_date() -> None:
    today = datetime.now(UTC).date()
    doc = invoice(issue_date=today.isoformat(), due_date=today.isoformat())
    assert (await validate(doc, DEFAULT)).outcome == "valid"
    future = invoice(issue_date="2999-01-01", due_date="2999-01-01")
    assert (await validate(future, DEFAULT)).outcome == "invalid"


async def test_unparseable_date() -> None:
    [finding] = only(await run(invoice(issue_date="2 May 2024")), "dates.invoice")
    assert finding.message == "issue_date is not a date: '2 May 2024'"


async def test_contract_expiry_before_effective_date() -> None:
    contract = ExtractionResult(
        document_type="contract",
        confidence=0.9,
        fields=fields(
            {"parties": ["A", "B"], "effective_date": "2030-01-01", "expiry_date": "2029-12-31"}
        ),
    )
    [finding] = (await run(contract)).findings  # a future effective date is fine
    assert finding.message == "expiry_date 2029-12-31 is before effective_date 2030-01-01"


# --------------------------------------------------------------------------------------------
# currency


async def test_currency_must_be_iso4217() -> None:
    result = await run(invoice(currency="EUX"))
    assert result.outcome == "invalid"
    [finding] = only(result, "currency.iso4217")
    assert finding.message == "currency 'EUX' is not an ISO 4217 currency code"
    assert (await run(invoice(currency="eur"))).outcome == "valid"
    assert (await run(invoice(currency=978))).outcome == "invalid"


async def test_withdrawn_currency_goes_to_review() -> None:
    result = await run(invoice(currency="HRK"))
    assert result.outcome == "needs_review"
    [finding] = only(result, "currency.iso4217")
    assert finding.severity == "warning"
    assert finding.message == "currency 'HRK' has been withdrawn from ISO 4217"


async def test_currency_allowed_list(tmp_path: Path) -> None:
    rules = load_rules(
        write_rules(
            tmp_path,
            """
            version: 1
            rules:
              - id: currency.accepted
                type: currency
                severity: error
                applies_to: [invoice]
                params: {allowed: [eur, CHF]}
            """,
        )
    )
    assert (await run(invoice(currency="CHF"), rules)).outcome == "valid"
    [finding] = (await run(invoice(currency="USD"), rules)).findings
    assert finding.message == "currency 'USD' is not an accepted currency (EUR, CHF)"


# --------------------------------------------------------------------------------------------
# iban, bic, vat_id


@pytest.mark.parametrize(
    "iban", ["DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606"]
)
async def test_valid_iban(iban: str) -> None:
    assert (await run(invoice(iban=iban))).outcome == "valid"


async def test_corrupted_iban() -> None:
    result = await run(invoice(iban="DE89370400440532013001"))
    assert result.outcome == "invalid"
    [finding] = only(result, "iban.checksum")
    assert finding.field == "iban"
    assert finding.message == (
        "iban 'DE89370400440532013001' is not a valid IBAN: the check digits (mod 97) do not match"
    )


async def test_iban_wrong_length_and_lists() -> None:
    result = await run(invoice(iban=["GB82WEST12345698765432", "DE8937040044053201300"]))
    [finding] = only(result, "iban.checksum")
    assert "DE IBANs have 22 characters, this one has 21" in finding.message
    assert only(await run(invoice(iban=12345)), "iban.checksum")


async def test_bic_format_is_a_warning() -> None:
    result = await run(invoice(bic="COBADEF"))
    assert result.outcome == "needs_review"
    [finding] = only(result, "bic.format")
    assert "8 or 11 characters" in finding.message


async def test_vat_id() -> None:
    assert (await run(invoice(vat_id="FR40303265045"))).outcome == "valid"
    result = await run(invoice(vat_id="DE136695978"))
    assert result.outcome == "invalid"
    [finding] = only(result, "vat_id.format")
    assert finding.message == (
        "vat_id 'DE136695978' is not a valid VAT id: the DE check digits do not match"
    )
    [finding] = only(await run(invoice(vat_id="NL12345678B01")), "vat_id.format")
    assert "NL VAT ids are NL followed by 9 digits, B and 2 digits" in finding.message


async def test_vat_id_from_unknown_country_goes_to_review() -> None:
    result = await run(invoice(vat_id="US123456789"))
    assert result.outcome == "needs_review"
    [finding] = only(result, "vat_id.format")
    assert finding.severity == "warning"
    assert finding.message == (
        "vat_id 'US123456789' cannot be checked: US is not a supported VAT country prefix"
    )


# --------------------------------------------------------------------------------------------
# duplicate


class Archive:
    """A stand-in for the archivist's claim: records the keys, answers `answer`."""

    def __init__(
        self, answer: DuplicateClaim | Exception = DuplicateClaim(duplicate=False)
    ) -> None:
        self.answer = answer
        self.keys: list[InvoiceKey] = []

    async def __call__(self, key: InvoiceKey) -> DuplicateClaim:
        self.keys.append(key)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_duplicate_is_invalid_and_names_the_other_document() -> None:
    archive = Archive(DuplicateClaim(duplicate=True, other_id="doc-0042"))
    result = await run(invoice(), claim_invoice=archive)
    assert archive.keys == [InvoiceKey("ACME GmbH", "INV-2024-001", 119.0, "EUR", eligible=True)]
    assert result.outcome == "invalid"
    [finding] = only(result, "duplicate.invoice")
    assert finding.severity == "error"
    assert finding.field == "invoice_number"
    assert finding.message == (
        "invoice_number 'INV-2024-001' from 'ACME GmbH' is already held by document doc-0042:"
        " a duplicate invoice"
    )


async def test_a_holder_the_uploader_may_not_read_is_not_named() -> None:
    archive = Archive(DuplicateClaim(duplicate=True, other_id=None))
    result = await run(invoice(), claim_invoice=archive)
    assert result.outcome == "invalid"
    [finding] = only(result, "duplicate.invoice")
    assert "is already held by a document of another uploader" in finding.message
    assert "document None" not in finding.message


async def test_the_same_number_with_another_amount_is_its_own_finding() -> None:
    archive = Archive(DuplicateClaim(duplicate=True, other_id="doc-7", same_amount=False))
    result = await run(invoice(), claim_invoice=archive)
    assert result.outcome == "invalid"
    assert not only(result, "duplicate.invoice")
    [finding] = only(result, "duplicate.invoice.amount_differs")
    assert finding.severity == "error"
    assert finding.message == (
        "invoice_number 'INV-2024-001' from 'ACME GmbH' is already held by document doc-7 with a"
        " different amount (here '119.0 EUR'): a reused invoice number or an altered copy"
    )


async def test_only_a_document_not_invalid_otherwise_claims() -> None:
    # The duplicate rule runs after the others, whatever its place in the file.
    archive = Archive()
    result = await run(invoice(iban="DE00370400440532013000"), claim_invoice=archive)
    assert result.outcome == "invalid"
    assert [key.eligible for key in archive.keys] == [False]
    # A document that only goes to review claims: a second copy must not pass review too.
    review = Archive()
    big = [{"description": "Fleet", "quantity": 1, "unit_price": 10000.0, "amount": 10000.0}]
    result = await run(
        invoice(line_items=big, subtotal=10000.0, tax=1900.0, total=11900.0),
        claim_invoice=review,
    )
    assert result.outcome == "needs_review"
    assert [key.eligible for key in review.keys] == [True]


async def test_no_duplicate() -> None:
    assert (await run(invoice(), claim_invoice=Archive())).outcome == "valid"
    assert (await run(invoice())).outcome == "valid"  # no archive wired: nothing to report


async def test_duplicate_lookup_failure_goes_to_review() -> None:
    result = await run(invoice(), claim_invoice=Archive(ConnectionError("archivist unreachable")))
    assert result.outcome == "needs_review"
    [finding] = only(result, "duplicate.invoice")
    assert finding.severity == "warning"
    assert "ConnectionError: archivist unreachable" in finding.message


async def test_duplicate_not_checked_without_number() -> None:
    archive = Archive()
    result = await run(invoice(invoice_number=None), claim_invoice=archive)
    assert not only(result, "duplicate.invoice")
    assert archive.keys == []


# --------------------------------------------------------------------------------------------
# threshold


@pytest.mark.parametrize(("total", "outcome"), [(10000.0, "valid"), (10000.01, "needs_review")])
async def test_total_above_threshold_needs_review(total: float, outcome: str) -> None:
    doc = invoice(subtotal=total, tax=0.0, total=total, line_items=None)
    result = await run(doc)
    assert result.outcome == outcome
    if outcome == "needs_review":
        [finding] = only(result, "threshold.invoice_total")
        assert finding.severity == "warning"
        assert finding.message == (
            "total 10000.01 EUR is above the review threshold of 10000.00 EUR"
        )


async def test_custom_rules_file_overrides_thresholds(tmp_path: Path) -> None:
    rules = load_rules(
        write_rules(
            tmp_path,
            """
            version: 1
            extends: default
            rules:
              - id: threshold.invoice_total
                type: threshold
                severity: warning
                applies_to: [invoice]
                params:
                  above: 5000
                  per_currency: {EUR: 50000, JPY: 2000000}
            """,
        )
    )
    assert [r.id for r in rules.rules] == [r.id for r in DEFAULT.rules]

    def doc(total: float, currency: str) -> ExtractionResult:
        return invoice(subtotal=total, tax=0, total=total, currency=currency, line_items=None)

    assert (await run(doc(20000, "EUR"), rules)).outcome == "valid"
    assert (await run(doc(20000, "EUR"))).outcome == "needs_review"  # the default is unchanged
    assert (await run(doc(1500000, "JPY"), rules)).outcome == "valid"
    [finding] = (await run(doc(6000, "USD"), rules)).findings
    assert finding.message == "total 6000.00 USD is above the review threshold of 5000.00 USD"


async def test_standalone_rules_file(tmp_path: Path) -> None:
    rules = load_rules(
        write_rules(
            tmp_path,
            """
            version: 1
            rules:
              - id: big
                type: threshold
                severity: warning
                applies_to: invoice
                params: {per_currency: {CHF: 100}}
            """,
        )
    )
    assert [r.id for r in rules.rules] == ["big"]
    assert (await run(invoice(invoice_number=None), rules)).outcome == "valid"  # EUR: no limit
    assert (await run(invoice(currency="CHF"), rules)).outcome == "needs_review"


# --------------------------------------------------------------------------------------------
# low_confidence, guardrail


def low_confidence_rules(tmp_path: Path, params: str) -> RuleSet:
    """The default rules with `review.low_confidence` given `params` (YAML flow mapping body)."""
    text = f"""
        version: 1
        extends: default
        rules:
          - id: review.low_confidence
            type: low_confidence
            severity: warning
            applies_to: [invoice]
            params: {{{params}}}
        """
    return load_rules(write_rules(tmp_path, text))


async def test_low_confidence_field() -> None:
    doc = invoice()
    doc.fields["total"] = ExtractedField(value=119.0, confidence=0.42, page=1)
    result = await run(doc)
    assert result.outcome == "needs_review"
    [finding] = only(result, "review.low_confidence")
    assert finding.field == "total"
    assert finding.message == (
        "total was extracted with confidence 0.42, below 0.5: check it against the page "
        "(its evidence says where it was read) and correct it"
    )


async def test_low_confidence_edges_and_optional_fields(tmp_path: Path) -> None:
    doc = invoice()
    doc.fields["total"] = ExtractedField(value=119.0, confidence=0.5, page=1)  # not under
    assert (await run(doc)).outcome == "valid"
    doc.fields["customer"] = ExtractedField(value="Globex", confidence=0.1, page=1)  # optional
    [finding] = only(await run(doc), "review.low_confidence")
    assert finding.field == "customer"
    # A rule that lists its fields checks only those.
    listed = low_confidence_rules(tmp_path, "fields: [total]")
    assert (await run(doc, listed)).outcome == "valid"


async def test_review_confidence_is_the_threshold(tmp_path: Path) -> None:
    doc = invoice()
    doc.fields["issue_date"] = ExtractedField(value="2024-05-02", confidence=0.8, page=1)
    assert (await run(doc, review_confidence=0.8)).outcome == "valid"  # not under
    result = await run(doc, review_confidence=0.85)
    assert result.outcome == "needs_review"
    [finding] = only(result, "review.low_confidence")
    assert (finding.field, finding.severity) == ("issue_date", "warning")
    assert "confidence 0.8, below 0.85" in finding.message
    # A threshold in the rules file wins over the setting.
    fixed = low_confidence_rules(tmp_path, "threshold: 0.7")
    assert (await run(doc, fixed, review_confidence=0.85)).outcome == "valid"


async def test_the_validator_agent_reads_the_threshold_from_the_settings(tmp_path: Path) -> None:
    settings = load_settings(init_project(tmp_path / "project").config)
    report = ExtractionResult(
        document_type="report", confidence=0.9, fields=fields({"title": "Q1"}, confidence=0.8)
    )
    outcomes = {}
    for threshold in (0.8, 0.85):
        settings.pipeline.review_confidence = threshold
        spec = validator_definition(settings).registry.get("validate")
        assert spec is not None
        params = {"document_id": "doc_" + "a" * 26, "result": report.model_dump(mode="json")}
        answer = await spec.handler(spec.params_model.model_validate(params))
        outcomes[threshold] = answer["outcome"]
    assert outcomes == {0.8: "valid", 0.85: "needs_review"}


async def test_low_document_confidence() -> None:
    doc = invoice()
    doc.confidence = 0.4
    [finding] = only(await run(doc), "review.low_confidence")
    assert finding.field is None
    assert finding.message == (
        "the document was classified as invoice with confidence 0.4, below 0.5"
    )


async def test_guardrail_findings_go_to_review() -> None:
    doc = invoice()
    doc.findings = [
        Finding(
            rule_id="guardrail.prompt_injection",
            severity="error",
            message="text tells the model to ignore its instructions",
            field="customer",
        ),
        Finding(rule_id="extract.ocr", severity="warning", message="low quality scan"),
    ]
    result = await run(doc)
    assert result.outcome == "needs_review"
    [finding] = result.findings
    assert finding.rule_id == "review.guardrail"
    assert finding.severity == "warning"
    assert finding.field == "customer"
    assert finding.message == (
        "guardrail.prompt_injection flagged the document: "
        "'text tells the model to ignore its instructions'"
    )
    other = ExtractionResult(document_type="other", confidence=0.1, findings=doc.findings)
    assert (await run(other)).outcome == "needs_review"


# --------------------------------------------------------------------------------------------
# Outcome, messages, engine


@pytest.mark.parametrize(
    ("severities", "outcome"),
    [
        ([], "valid"),
        (["info"], "valid"),
        (["info", "warning"], "needs_review"),
        (["warning", "error", "info"], "invalid"),
        (["error"], "invalid"),
    ],
)
def test_outcome_of(severities: list[Any], outcome: str) -> None:
    findings = [Finding(rule_id="r", severity=s, message="m") for s in severities]
    assert outcome_of(findings) == outcome


async def test_outcome_aggregates_across_rules() -> None:
    doc = invoice(total=20000.0, currency="EUR")  # arithmetic error + threshold warning
    result = await run(doc)
    assert {f.severity for f in result.findings} == {"error", "warning"}
    assert result.outcome == "invalid"


async def test_info_findings_do_not_change_the_outcome(tmp_path: Path) -> None:
    rules = load_rules(
        write_rules(
            tmp_path,
            """
            version: 1
            rules:
              - id: big
                type: threshold
                severity: info
                applies_to: [invoice]
                params: {above: 100}
              - id: vat
                type: vat_id
                severity: info
                applies_to: [invoice]
            """,
        )
    )
    result = await run(invoice(vat_id="US1"), rules)
    assert [f.severity for f in result.findings] == ["info", "info"]  # capped, never raised
    assert result.outcome == "valid"


async def test_message_templates(tmp_path: Path) -> None:
    rules = load_rules(
        write_rules(
            tmp_path,
            """
            version: 1
            rules:
              - id: big
                type: threshold
                severity: warning
                applies_to: [invoice]
                params: {above: 100}
                message: "{detail}; ask finance ({rule_id}, {document_type}, {amount})"
              - id: arith
                type: arithmetic
                severity: error
                applies_to: [invoice]
                message:
                  total: "Totals disagree: {computed} vs {expected}"
            """,
        )
    )
    result = await run(invoice(total=120.0), rules)
    assert [f.message for f in result.findings] == [
        "total 120.00 EUR is above the review threshold of 100.00 EUR; "
        "ask finance (big, invoice, 120.00 EUR)",
        "Totals disagree: 119.00 vs 120.00",
    ]


class _Boom(RuleType[Params]):
    name = "boom"
    params_model = Params
    checks: ClassVar[dict[str, Check]] = {"x": Check("x")}

    async def evaluate(self, params: Params, ctx: RuleContext) -> list[Emission]:
        raise RuntimeError("kaput")


async def test_a_failing_rule_sends_the_document_to_review() -> None:
    rule = Rule(
        id="boom",
        type=_Boom(),
        severity="error",
        applies_to=frozenset({"invoice"}),
        params=Params(),
    )
    result = await run(invoice(), RuleSet((rule,), "test"))
    assert result.outcome == "needs_review"
    assert result.findings[0].message == "rule boom could not be evaluated: RuntimeError: kaput"


def test_every_check_fills_its_default_placeholders() -> None:
    for rule_type in BUILTIN_RULE_TYPES.values():
        for check in rule_type.checks.values():
            assert {"field", "detail", "rule_id", "document_type"} <= check.placeholders


# --------------------------------------------------------------------------------------------
# extends / enabled


async def test_disable_an_inherited_rule(tmp_path: Path) -> None:
    rules = load_rules(
        write_rules(
            tmp_path,
            """
            version: 1
            extends: default
            rules:
              - {id: threshold.invoice_total, enabled: false}
              - id: extra.bic
                type: bic
                severity: error
                applies_to: [invoice]
            """,
        )
    )
    assert rules.get("threshold.invoice_total") is None
    assert rules.rules[-1].id == "extra.bic"
    doc = invoice(subtotal=50000.0, tax=0.0, total=50000.0, line_items=None)
    assert (await run(doc, rules)).outcome == "valid"


# --------------------------------------------------------------------------------------------
# Malformed rules files


def test_bad_yaml_reports_file_and_line(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        version: 1
        rules:
          - id: a
            type: required
            severity: error
            applies_to: [invoice
            params: {fields: [x]}
        """,
    )
    assert error.line == 7
    assert "invalid YAML" in error.problem
    assert "(from line 6)" in error.problem
    assert str(error).startswith(f"{tmp_path / 'rules.yaml'}:7: ")


def test_unknown_rule_type(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        version: 1
        rules:
          - id: a
            type: required
            severity: error
            applies_to: [invoice]
            params: {fields: [x]}
          - id: b
            type: telepathy
            severity: error
            applies_to: [invoice]
        """,
    )
    assert error.line == 9
    assert error.problem.startswith("rules[1] (id 'b'): unknown rule type 'telepathy' (known: ")


def test_missing_id(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        version: 1
        rules:
          - type: required
            severity: error
            applies_to: [invoice]
            params: {fields: [x]}
        """,
    )
    assert error.line == 3
    assert error.problem == "rules[0]: id: Field required"


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        ("version: 2\nrules: []\n", 1, "unsupported rules file version 2"),
        ("rules: []\n", 1, "version: Field required"),
        ("version: 1\nrules: []\nextra: 1\n", 3, "extra: Extra inputs are not permitted"),
        ("- a\n- b\n", 1, "the top level must be a mapping"),
        ("version: 1\nrules:\n  - just a string\n", 3, "rules[0]: a rule must be a mapping"),
        (
            "version: 1\nrules:\n  - id: a\n    type: required\n    severity: fatal\n"
            "    applies_to: [invoice]\n",
            5,
            "rules[0] (id 'a'): severity: Input should be 'info', 'warning' or 'error'",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: required\n    severity: error\n"
            "    applies_to: [invoices]\n",
            6,
            "rules[0] (id 'a'): applies_to[0]: Input should be",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: threshold\n    severity: error\n"
            "    applies_to: [invoice]\n    params:\n      field: total\n      abvoe: 5\n",
            9,
            "rules[0] (id 'a'): params.abvoe: Extra inputs are not permitted",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: threshold\n    severity: error\n"
            "    applies_to: [invoice]\n    params:\n      above: lots\n",
            8,
            "rules[0] (id 'a'): params.above: Input should be a valid number",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: threshold\n    severity: error\n"
            "    applies_to: [invoice]\n",
            3,
            "rules[0] (id 'a'): params: set `above` or `per_currency`",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: threshold\n    severity: error\n"
            "    applies_to: [invoice]\n    params: {per_currency: {EUX: 1}}\n",
            7,
            "params.per_currency: not ISO 4217 currency codes: EUX",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: vat_id\n    severity: error\n"
            "    applies_to: [invoice]\n    params: {countries: [DE, US]}\n",
            7,
            "params.countries: unsupported VAT country prefixes US",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: required\n    severity: error\n"
            "    applies_to: [invoice]\n    params: {fields: [x]}\n"
            "    message: '{detail} {nope}'\n",
            8,
            "rules[0] (id 'a'): message: unknown placeholder {nope}",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: required\n    severity: error\n"
            "    applies_to: [invoice]\n    params: {fields: [x]}\n    message: '{field!r}'\n",
            8,
            "must not have a format spec or conversion",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: required\n    severity: error\n"
            "    applies_to: [invoice]\n    params: {fields: [x]}\n    message: '{field'\n",
            8,
            "rules[0] (id 'a'): message: ",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: required\n    severity: error\n"
            "    applies_to: [invoice]\n    params: {fields: [x]}\n    message: {gone: x}\n",
            8,
            "message.gone: 'required' has no check 'gone' (checks: missing)",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: required\n    applies_to: [invoice]\n"
            "    params: {fields: [x]}\n",
            3,
            "rules[0] (id 'a'): severity: Field required",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: guardrail\n    severity: warning\n"
            "    applies_to: [invoice]\n  - id: a\n    type: guardrail\n    severity: warning\n"
            "    applies_to: [report]\n",
            7,
            "rules[1]: duplicate id 'a'",
        ),
        (
            "version: 1\nrules:\n  - id: a\n    type: guardrail\n    severity: warning\n"
            "    severity: error\n    applies_to: [invoice]\n",
            6,
            "duplicate key 'severity'",
        ),
        ("version: 1\nextends: base\nrules: []\n", 2, "extends: Input should be 'default'"),
        ("", None, "the file is empty"),
    ],
)
def test_schema_errors_name_the_line(
    tmp_path: Path, body: str, line: int | None, problem: str
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    error = info.value
    assert (error.line, str(path)) == (line, error.source)
    assert problem in error.problem, error.problem


def test_every_problem_is_reported(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        version: 1
        rules:
          - id: a
            type: nope
            severity: error
            applies_to: [invoice]
          - id: b
            type: required
            severity: error
            applies_to: [invoice]
        """,
    )
    assert [line for line, _ in error.problems] == [4, 7]
    assert "params.fields: Field required" in error.problems[1][1]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read the rules file"):
        load_rules(tmp_path / "missing.yaml")


async def test_rules_evaluate_on_empty_documents() -> None:
    """Every shipped rule copes with a document that has no fields at all."""
    for doc_type in ("invoice", "contract", "report", "other"):
        doc = ExtractionResult.model_validate({"document_type": doc_type, "confidence": 0.0})
        result = await run(doc)
        assert all("could not be evaluated" not in f.message for f in result.findings)
        assert all(f.rule_id.startswith(("required.", "review.")) for f in result.findings)
