"""The bundled sample documents: present, small, readable, reproducible byte for byte, and
ending with the outcomes the demo expects."""

from __future__ import annotations

import zlib
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from bastion.config import PipelineSettings
from bastion.demos.pipeline import EXPECTED
from bastion.pipeline.extract import extract_document
from bastion.pipeline.extract.preflight import preflight
from bastion.pipeline.model import DuplicateClaim, ExtractionError
from bastion.pipeline.samples import (
    GENERATED_WITH,
    SAMPLES,
    Sample,
    bundled_dir,
    bundled_paths,
    main,
    render_samples,
    write_samples,
)
from bastion.pipeline.validator import ClaimInvoice, InvoiceKey, load_rules, validate


def _text(data: bytes) -> str:
    pdf = pdfium.PdfDocument(data)
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in pdf)
    finally:
        pdf.close()


def test_the_bundled_files_are_exactly_the_described_samples() -> None:
    names = sorted(path.name for path in bundled_dir().iterdir())
    assert names == sorted(sample.name for sample in SAMPLES)
    assert all(path.is_file() for path in bundled_paths())
    assert sum(path.stat().st_size for path in bundled_paths()) < 200 * 1024


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_each_sample_passes_preflight_or_fails_with_its_reason(sample: Sample) -> None:
    data = (bundled_dir() / sample.name).read_bytes()
    if sample.reason is not None:
        with pytest.raises(ExtractionError) as caught:
            preflight(data)
        assert caught.value.reason == sample.reason
        return
    report = preflight(data)
    assert report.pages >= 1
    assert report.warnings == ()
    text = _text(data)
    for phrase in sample.texts:
        assert phrase in text, (sample.name, phrase)


def test_invoice_facts_are_consistent() -> None:
    invoices = {s.name: s.fields for s in SAMPLES if s.document_type == "invoice"}
    for name, fields in invoices.items():
        adds_up = round(fields["subtotal"] + fields["tax"], 2) == fields["total"]
        assert adds_up == (name != "invoice_en_wrong_total.pdf"), name
    items = invoices["invoice_en_line_items.pdf"]["line_items"]
    assert (
        sum(item["amount"] for item in items) == invoices["invoice_en_line_items.pdf"]["subtotal"]
    )
    original, resent = invoices["invoice_de.pdf"], invoices["invoice_de_duplicate.pdf"]
    assert (original["issuer"], original["invoice_number"]) == (
        resent["issuer"],
        resent["invoice_number"],
    )
    first, second = (bundled_dir() / "invoice_de.pdf"), (bundled_dir() / "invoice_de_duplicate.pdf")
    assert first.read_bytes() != second.read_bytes()
    assert _text(first.read_bytes()) == _text(second.read_bytes())
    languages = {s.language for s in SAMPLES if s.document_type == "invoice"}
    assert languages == {"en", "de", "fr"}


def _same_generator() -> bool:
    reportlab = pytest.importorskip("reportlab")
    return (
        reportlab.Version == GENERATED_WITH["reportlab"]
        and GENERATED_WITH["zlib"] == zlib.ZLIB_RUNTIME_VERSION
    )


def test_regeneration_reproduces_the_committed_bytes() -> None:
    if not _same_generator():
        pytest.skip(f"committed files were made with {GENERATED_WITH}")
    rendered = render_samples()
    for path in bundled_paths():
        assert rendered[path.name] == path.read_bytes(), path.name


def test_write_samples_and_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("reportlab")
    written = write_samples(tmp_path / "a")
    assert [p.name for p in written] == [s.name for s in SAMPLES]
    assert main([str(tmp_path / "b")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(SAMPLES)
    for path in written:
        assert (tmp_path / "b" / path.name).read_bytes() == path.read_bytes()
    assert main([]) == 2


async def test_the_samples_keep_their_outcomes_with_the_default_review_confidence() -> None:
    """Extracted and validated with the shipped rules and `pipeline.review_confidence` left at
    its default, each sample ends as the demo expects; a threshold just above a sample's
    least confident field sends it to review instead."""
    settings = PipelineSettings()
    rules = load_rules()
    held: dict[tuple[str, str], str] = {}
    lowest: dict[str, float] = {}

    def claims(name: str) -> ClaimInvoice:
        async def claim(key: InvoiceKey) -> DuplicateClaim:
            holder = held.setdefault((key.issuer, key.invoice_number), name)
            return DuplicateClaim(duplicate=holder != name, other_id=None)

        return claim

    for sample in SAMPLES:
        if sample.reason is not None:
            assert EXPECTED[sample.name] == f"rejected: {sample.reason}"
            continue
        result = extract_document((bundled_dir() / sample.name).read_bytes())
        outcome = await validate(
            result,
            rules,
            claim_invoice=claims(sample.name),
            review_confidence=settings.review_confidence,
        )
        assert outcome.outcome == EXPECTED[sample.name], (sample.name, outcome.findings)
        assert not [f for f in outcome.findings if f.rule_id == "review.low_confidence"]
        lowest[sample.name] = min(f.confidence for f in result.fields.values())
    name = "invoice_de.pdf"
    result = extract_document((bundled_dir() / name).read_bytes())
    held.clear()
    above = await validate(
        result, rules, claim_invoice=claims(name), review_confidence=lowest[name] + 0.001
    )
    assert above.outcome == "needs_review"
    assert any(f.rule_id == "review.low_confidence" for f in above.findings)
