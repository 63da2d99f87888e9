"""Each extracted field's evidence (page, box, label, rule), the candidates it beat, and its
calibrated confidence: on PDFs generated here with reportlab."""

from __future__ import annotations

import json

import pytest
from reportlab.pdfbase.pdfmetrics import stringWidth

from bastion.pipeline.extract import extract_document
from bastion.pipeline.extract.calibration import (
    Calibration,
    arithmetic_state,
    calibrate,
    calibration_path,
    parse_calibration,
    shipped_calibration,
    tally,
)
from bastion.pipeline.extract.einvoice import parse_einvoice
from bastion.pipeline.model import (
    MAX_ALTERNATIVES,
    Alternative,
    Evidence,
    ExtractedField,
    ExtractionResult,
)
from tests.cli.test_extract_cli import FACTUR_X
from tests.pipeline.test_extract_invoice import Sheet

TOTAL_RIGHT = 500.0  # where the total's amount ends, in points from the left
TOTAL_Y = 300.0  # its baseline, in points from the top
SIZE = 9.0


def _invoice(extra_number: str | None = None) -> bytes:
    s = Sheet()
    s.text(50, 50, "Lindqvist Tooling AB", 16, bold=True)
    s.text(50, 90, "Invoice No: LT-5521")
    s.text(50, 104, "Invoice date: 2025-04-02")
    if extra_number:
        s.text(50, 400, f"Invoice number: {extra_number}")
    s.text(300, TOTAL_Y - 40, "Subtotal")
    s.text(TOTAL_RIGHT, TOTAL_Y - 40, "1,000.00", align="right")
    s.text(300, TOTAL_Y - 20, "VAT 25%")
    s.text(TOTAL_RIGHT, TOTAL_Y - 20, "250.00", align="right")
    s.text(300, TOTAL_Y, "Total due")
    s.text(TOTAL_RIGHT, TOTAL_Y, "1,250.00 SEK", align="right")
    return s.pdf()


def test_evidence_round_trips_through_the_model() -> None:
    field = ExtractedField(
        value=1250.0,
        confidence=0.93,
        page=1,
        evidence=Evidence(
            page=1,
            bbox=(401.5, 292.0, 500.0, 302.5),
            label="Total due",
            rule="label_right",
            score=0.96,
            arithmetic="agrees",
        ),
        alternatives=[Alternative(value=1000.0, score=0.4, rule="label_right", page=1)],
    )
    result = ExtractionResult(document_type="invoice", confidence=0.9, fields={"total": field})
    again = ExtractionResult.model_validate_json(result.model_dump_json())
    assert again == result
    assert again.fields["total"].evidence == field.evidence
    # The public shape is today's; explained, it carries the evidence and the alternatives.
    assert result.to_public()["fields"]["total"] == {"value": 1250.0, "confidence": 0.93, "page": 1}
    explained = result.to_public(explain=True)["fields"]["total"]
    assert explained["evidence"]["bbox"] == (401.5, 292.0, 500.0, 302.5)
    assert explained["evidence"]["rule"] == "label_right"
    assert explained["alternatives"] == [
        {"value": 1000.0, "score": 0.4, "rule": "label_right", "page": 1}
    ]
    json.dumps(result.to_public(explain=True))  # JSON all the way down
    with pytest.raises(ValueError):
        ExtractedField(
            value=1,
            confidence=0.5,
            alternatives=[Alternative(value=k, score=0.1) for k in range(MAX_ALTERNATIVES + 1)],
        )


def test_the_box_of_the_total_is_where_it_was_drawn() -> None:
    result = extract_document(_invoice())
    total = result.fields["total"]
    assert total.value == 1250.0
    ev = total.evidence
    assert ev is not None and ev.bbox is not None
    x0, top, x1, bottom = ev.bbox
    width = stringWidth("1,250.00 SEK", "Helvetica", SIZE)
    assert x1 == pytest.approx(TOTAL_RIGHT, abs=1.0)
    assert x0 == pytest.approx(TOTAL_RIGHT - width, abs=1.0)
    # y down from the page top: the glyphs stand on the baseline, within one line of it.
    assert top < TOTAL_Y <= bottom + 0.5
    assert TOTAL_Y - top < SIZE and bottom - top < 1.5 * SIZE
    assert (ev.page, ev.label, ev.rule) == (1, "Total due", "label_right")
    assert ev.arithmetic == "agrees"
    # The invoice number's box is its label's line, near the top-left.
    number = result.fields["invoice_number"].evidence
    assert number is not None and number.bbox is not None
    assert number.label == "Invoice No" and number.rule.startswith("label_")
    assert number.bbox[0] == pytest.approx(50, abs=1) and number.bbox[1] < 90 <= number.bbox[3]


def test_the_winner_keeps_the_candidates_it_beat() -> None:
    result = extract_document(_invoice(extra_number="LT-9999"))
    number = result.fields["invoice_number"]
    beaten = {a.value for a in number.alternatives}
    assert {number.value, *beaten} == {"LT-5521", "LT-9999"}
    assert all(a.rule.startswith("label_") and a.page == 1 for a in number.alternatives)
    # Amounts keep the other values labelled as the same amount, best first.
    assert all(a.value != result.value("total") for a in result.fields["total"].alternatives)


def test_embedded_xml_fields_say_so() -> None:
    fields = parse_einvoice(FACTUR_X)
    assert fields is not None
    ev = fields["invoice_number"].evidence
    assert ev is not None
    assert (ev.rule, ev.page, ev.bbox, ev.label) == ("einvoice_xml", None, None, None)


def test_arithmetic_state() -> None:
    def fields(**values: float) -> dict[str, ExtractedField]:
        return {k: ExtractedField(value=v, confidence=0.9) for k, v in values.items()}

    assert arithmetic_state(fields(subtotal=100.0, tax=19.0, total=119.0)) == "agrees"
    assert arithmetic_state(fields(subtotal=100.0, tax=19.0, total=120.0)) == "disagrees"
    assert arithmetic_state(fields(subtotal=100.0, total=119.0)) == "unknown"


def test_the_shipped_table_loads_and_maps_evidence_to_a_confidence() -> None:
    table = shipped_calibration()
    raw = json.loads(calibration_path().read_text(encoding="utf-8"))
    assert parse_calibration(raw) == table
    # The cell seen most often: its confidence is pulled from any score toward its accuracy.
    key, (right, seen) = max(table.counts.items(), key=lambda kv: kv[1][1])
    field, rule, arithmetic = key.split("|")
    assert seen >= 20
    accuracy = right / seen
    low = table.confidence(field, rule, "agrees" if arithmetic == "*" else arithmetic, 0.3)
    high = table.confidence(field, rule, "agrees" if arithmetic == "*" else arithmetic, 1.0)
    assert 0.3 < low <= high <= 1.0
    assert abs(high - accuracy) < abs(1.0 - accuracy) or accuracy == 1.0
    # A rule the table has never seen keeps the extractor's score.
    assert table.confidence("total", "no_such_rule", "agrees", 0.42) == pytest.approx(0.42)


def test_calibration_follows_the_observed_accuracy() -> None:
    often_wrong = [("issue_date", "fallback_first_date", "agrees", k < 2) for k in range(20)]
    often_right = [("issue_date", "label_right", "agrees", k < 19) for k in range(20)]
    table = tally([*often_wrong, *often_right], prior_strength=4.0)
    wrong = table.confidence("issue_date", "fallback_first_date", "agrees", 0.8)
    right = table.confidence("issue_date", "label_right", "agrees", 0.8)
    assert wrong < 0.3 < 0.9 < right
    # Fields whose rule is known are set from the table; the arithmetic is recorded.
    fields = {
        "issue_date": ExtractedField(
            value="2025-01-01",
            confidence=0.8,
            evidence=Evidence(rule="fallback_first_date", score=0.8),
        ),
        "iban": ExtractedField(value="X", confidence=0.7),  # no evidence: left alone
    }
    calibrate(fields, table)
    # No amounts here: the arithmetic is unknown, a state this table has not seen for the rule.
    expected = table.confidence("issue_date", "fallback_first_date", "unknown", 0.8)
    assert fields["issue_date"].confidence == pytest.approx(expected, abs=1e-3)
    assert expected < 0.3
    assert fields["issue_date"].evidence is not None
    assert fields["issue_date"].evidence.arithmetic == "unknown"
    assert fields["iban"].confidence == 0.7


def test_a_bad_table_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        parse_calibration({"version": 99, "counts": {}})
    with pytest.raises(ValueError, match="not \\(right, seen\\)"):
        parse_calibration({"version": 1, "counts": {"total|label_right|*": [5, 3]}})
    assert Calibration({}).confidence("total", "label_right", "agrees", 0.61) == 0.61
