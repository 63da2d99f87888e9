"""One set of IBAN, BIC and VAT id rules: what the validator accepts, the extractor reads from an
invoice and the PII guardrails catch, for every country of the IBAN registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bastion.business_ids import IBAN_LENGTHS, check_bic, check_iban, check_vat_id, iban_valid
from bastion.guardrails.pii import detect_pii
from bastion.pipeline.extract.invoice import extract_invoice
from bastion.pipeline.extract.text import Cell, Page, build_rows
from bastion.pipeline.model import ExtractedField, ExtractionResult
from bastion.pipeline.validator import load_rules, validate

VATICAN_IBAN = "VA59001123000012345678"
RULES = load_rules()


def _invoice_page(*lines: str) -> Page:
    """A one-page invoice whose text is `lines`, one row each."""
    texts = ["INVOICE", "Invoice No: 2024-17", "Total: 119.00 EUR", *lines]
    cells = [
        Cell(text, 50, 50 + 6 * len(text), 100 + 15 * k, 108 + 15 * k)
        for k, text in enumerate(texts)
    ]
    rows = build_rows(cells)
    return Page(1, 595, 842, rows, "\n".join(r.text for r in rows))


def _extracted(*lines: str) -> dict[str, ExtractedField]:
    return extract_invoice([_invoice_page(*lines)])


async def _problems(field: str, value: str) -> list[str]:
    """The validator's findings about `field` when an invoice carries `value` there."""
    result = ExtractionResult(
        document_type="invoice",
        confidence=0.97,
        fields={field: ExtractedField(value=value, confidence=0.95, page=1)},
    )
    validation = await validate(result, RULES)
    return [f.message for f in validation.findings if f.field == field]


def _grouped(iban: str) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def _valid_iban(country: str) -> str:
    """A valid IBAN of `country`: digits for the account, the check digits computed."""
    bban = ("1234567890" * 4)[: IBAN_LENGTHS[country] - 4]
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


async def test_a_vatican_iban_is_extracted_validated_and_caught_as_pii() -> None:
    assert iban_valid(VATICAN_IBAN)
    fields = _extracted(f"Please pay to IBAN {_grouped(VATICAN_IBAN)}")
    assert fields["iban"].value == VATICAN_IBAN
    assert await _problems("iban", VATICAN_IBAN) == []
    text = f"Wire it to {_grouped(VATICAN_IBAN)} today"
    [finding] = [f for f in detect_pii(text) if f.type == "IBAN"]
    assert text[finding.start : finding.end] == _grouped(VATICAN_IBAN)


@pytest.mark.parametrize("country", sorted(IBAN_LENGTHS))
async def test_every_registry_country_is_known_to_all_three(country: str) -> None:
    iban = _valid_iban(country)
    assert check_iban(iban).ok
    assert _extracted(f"IBAN: {_grouped(iban)}")["iban"].value == iban
    assert await _problems("iban", iban) == []
    text = f"account {iban} please"
    assert [text[f.start : f.end] for f in detect_pii(text, types=["IBAN"])] == [iban]
    # One wrong digit: refused by all three.
    broken = iban[:-1] + str((int(iban[-1]) + 1) % 10)
    assert "iban" not in _extracted(f"IBAN: {_grouped(broken)}")
    assert await _problems("iban", broken)
    assert detect_pii(f"account {broken} please", types=["IBAN"]) == []


@pytest.mark.parametrize(
    ("written", "compact"),
    [
        ("IE 1234567AW", "IE1234567AW"),  # a second letter W: the Irish format since 2013
        ("IE 1234567FA", "IE1234567FA"),
        ("CHE-123.456.788 TPV", "CHE123456788TPV"),  # the Romansh suffix, besides MWST/TVA/IVA
        ("CHE-123.456.788 MWST", "CHE123456788MWST"),
    ],
)
async def test_irish_and_swiss_vat_ids_agree_across_extractor_and_validator(
    written: str, compact: str
) -> None:
    assert check_vat_id(written).ok
    assert await _problems("vat_id", compact) == []
    assert _extracted(f"VAT No: {written}")["vat_id"].value == compact
    # Without a label, found by the country formats alone.
    assert _extracted(f"ACME Ltd · {written} · Dublin")["vat_id"].value == compact


@pytest.mark.parametrize(("bic", "known"), [("DEUTDEFF500", True), ("DEUTXXFF500", False)])
async def test_a_bic_is_judged_by_the_same_country_codes(bic: str, known: bool) -> None:
    assert check_bic(bic).ok is known
    assert (await _problems("bic", bic) == []) is known
    text = f"SWIFT/BIC: {bic}"
    assert [text[f.start : f.end] for f in detect_pii(text, types=["SWIFT_CODE"])] == (
        [bic] if known else []
    )


def test_the_guardrails_do_not_load_the_document_pipeline() -> None:
    code = (
        "import sys, bastion.guardrails.pii, bastion.business_ids\n"
        "loaded = [m for m in sys.modules if m.startswith('bastion.')]\n"
        "print(sorted(m for m in loaded if m.startswith('bastion.pipeline')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
