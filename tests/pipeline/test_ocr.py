"""Scanned documents: invoices generated here, rendered to images and wrapped in PDFs without a
text layer, read by Tesseract in-process and through the sandbox; without OCR (turned off, or
no Tesseract program) they go to review with `no_text_layer`.

The tests that need Tesseract (with its deu and fra data) fail rather than skip in CI, where
`.ci/run` installs it."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from pydantic import ValidationError
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from bastion.config import PipelineSettings
from bastion.pipeline.extract import extract_document
from bastion.pipeline.extract.ocr import OcrOptions, OcrReport
from bastion.pipeline.extract.sandbox import ExtractionSandbox
from bastion.pipeline.model import ExtractedField, ExtractionError, ExtractionResult
from bastion.pipeline.validator import load_rules, validate
from bastion.project import init_project
from bastion.testing.pipeline_stack import assign_ports, pipeline_in_threads
from tests.e2e.test_pipeline_agents import Flow
from tests.pipeline.test_extract_invoice import LAYOUTS, check, german_din

REQUIRED = os.environ.get("BASTION_TEST_REQUIRE_SERVICES") == "1" or bool(os.environ.get("CI"))
SCAN_DPI = 200


@pytest.fixture(scope="module")
def tesseract() -> str:
    """The Tesseract program, with German and French data; required in CI."""
    program = shutil.which("tesseract")
    problem = "the tesseract program is not installed"
    if program is not None:
        listed = subprocess.run([program, "--list-langs"], capture_output=True, text=True)
        missing = {"deu", "fra"} - set(listed.stdout.split())
        problem = f"tesseract lacks the languages {sorted(missing)}" if missing else ""
    if problem:
        hint = "apt-get install tesseract-ocr tesseract-ocr-deu tesseract-ocr-fra"
        if REQUIRED:
            pytest.fail(f"{problem} (required in CI; {hint})")
        pytest.skip(f"{problem} ({hint})")
    assert program is not None
    return program


def scan_of(data: bytes, *, text_pages: frozenset[int] = frozenset()) -> bytes:
    """The PDF's pages as grayscale images in a PDF without a text layer; the pages numbered
    in `text_pages` (1-based) are kept as text instead."""
    source = pdfium.PdfDocument(data)
    out = pdfium.PdfDocument.new()
    try:
        for index in range(len(source)):
            if index + 1 in text_pages:
                out.import_pages(source, [index])
                continue
            image = source[index].render(scale=SCAN_DPI / 72, grayscale=True).to_pil()
            buffer = io.BytesIO()
            image.save(buffer, "PDF", resolution=SCAN_DPI)
            out.import_pages(pdfium.PdfDocument(buffer.getvalue()))
        written = io.BytesIO()
        out.save(written)
        return written.getvalue()
    finally:
        out.close()
        source.close()


def text_of(data: bytes) -> str:
    pdf = pdfium.PdfDocument(data)
    try:
        return "".join(page.get_textpage().get_text_bounded() for page in pdf)
    finally:
        pdf.close()


def rule_ids(result: ExtractionResult) -> list[str]:
    return [f.rule_id for f in result.findings]


async def outcome(result: ExtractionResult) -> tuple[str, list[str], str]:
    """The validator's outcome, its finding ids and the no_text_layer message (or "")."""
    validation = await validate(result, load_rules())
    message = next((f.message for f in validation.findings if f.rule_id == "no_text_layer"), "")
    return validation.outcome, [f.rule_id for f in validation.findings], message


# ------------------------------------------------------------------------------- with Tesseract


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_scanned_invoice_is_read_like_its_text(tesseract: str, layout: str) -> None:
    data, expected = LAYOUTS[layout]()
    scan = scan_of(data)
    assert not text_of(scan).strip()  # truly no text layer
    result = extract_document(scan, ocr=OcrOptions(command=tesseract))
    for name in ("invoice_number", "issue_date", "total"):
        assert result.value(name) == pytest.approx(expected[name]), name
    assert rule_ids(result)[0] == "ocr"
    assert "no_text_layer" not in rule_ids(result)
    assert all(f.confidence <= 0.85 for f in result.fields.values())
    assert result.text_chars > 100


def test_every_field_of_a_german_scan(tesseract: str) -> None:
    data, expected = german_din()
    result = extract_document(scan_of(data), ocr=OcrOptions(command=tesseract))
    check(result, expected)


async def test_a_scan_through_the_sandbox_and_the_validator(tesseract: str) -> None:
    data, expected = LAYOUTS["english_classic"]()
    with ExtractionSandbox(1, ocr=OcrOptions(command=tesseract)) as sandbox:
        result = sandbox.extract_sync(scan_of(data))
    assert result.document_type == "invoice"
    for name in ("invoice_number", "issue_date", "total", "customer"):
        assert result.value(name) == pytest.approx(expected[name]), name
    assert "ocr" in rule_ids(result)
    assert await outcome(result) == await outcome(extract_document(data)) == ("valid", [], "")


def test_only_pages_without_text_are_read_by_ocr(tesseract: str) -> None:
    data, expected = LAYOUTS["two_pages_inline"]()
    mixed = scan_of(data, text_pages=frozenset({1}))
    result = extract_document(mixed, ocr=OcrOptions(command=tesseract))
    ocr = next(f for f in result.findings if f.rule_id == "ocr")
    assert ocr.message.startswith("page 2 read by OCR")
    assert result.value("total") == pytest.approx(expected["total"])
    by_text = extract_document(data)
    for name, f in result.fields.items():
        if f.page == 1:  # read from the text layer: confidence untouched
            assert f.confidence == by_text.fields[name].confidence, name


def test_the_time_budget_leaves_pages_unread(tesseract: str) -> None:
    data, _ = german_din()
    result = extract_document(
        scan_of(data), ocr=OcrOptions(command=tesseract, time_budget_seconds=0.0)
    )
    finding = next(f for f in result.findings if f.rule_id == "no_text_layer")
    assert "ran out of time" in finding.message
    assert "pipeline.extraction_timeout_seconds" in finding.message


def test_languages_tesseract_lacks_are_named(tesseract: str) -> None:
    data, _ = german_din()
    result = extract_document(scan_of(data), ocr=OcrOptions(command=tesseract, languages=("qqq",)))
    finding = next(f for f in result.findings if f.rule_id == "no_text_layer")
    assert "none of the languages qqq" in finding.message
    assert "tesseract-ocr-deu" in finding.message


# ------------------------------------------------------------------------------ without OCR


async def test_without_tesseract_a_scan_goes_to_review(tmp_path: Path) -> None:
    data, _ = german_din()
    missing = OcrOptions(command=str(tmp_path / "no-tesseract"))
    with ExtractionSandbox(1, ocr=missing) as sandbox:
        result = sandbox.extract_sync(scan_of(data))
    assert result.fields == {}
    assert "ocr" not in rule_ids(result)
    verdict, ids, message = await outcome(result)
    assert verdict == "needs_review"
    assert ids == ["no_text_layer"]
    assert message.startswith("page 1 without a text layer (a scan) could not be read")
    assert "apt-get install tesseract-ocr tesseract-ocr-deu tesseract-ocr-fra" in message
    assert "pipeline.tesseract_command" in message


def test_a_scan_without_tesseract_is_archived_for_review(tmp_path: Path) -> None:
    """The whole pipeline, configured with a Tesseract that is not there."""
    result = init_project(tmp_path)
    assign_ports(
        result.config,
        pipeline={"tesseract_command": str(tmp_path / "no-tesseract")},
        audit={"flush_interval_seconds": 0.05},
    )
    data, _ = german_din()
    with pipeline_in_threads(result.config, gateway=False) as settings:
        flow = Flow(settings, result.admin_key)
        doc_id, _ = flow.submit(scan_of(data), "scan.pdf")
        doc = flow.wait(doc_id, {"archived", "failed"})
    assert doc["status"] == "archived" and doc["outcome"] == "needs_review"
    found = {f["source"]: f for f in doc["findings"] if f["rule_id"] == "no_text_layer"}
    assert set(found) == {"guardrail", "validation"}  # the extractor's and the validator's
    assert "pipeline.tesseract_command" in found["validation"]["message"]


async def test_ocr_turned_off_sends_a_scan_to_review() -> None:
    data, _ = LAYOUTS["two_pages_inline"]()
    result = extract_document(
        scan_of(data, text_pages=frozenset({1})), ocr=OcrOptions(enabled=False)
    )
    _, ids, message = await outcome(result)  # invalid anyway: the layout's VAT id is fake
    assert "no_text_layer" in ids
    assert message.startswith("page 2 without a text layer")  # page 1 has its text
    assert "pipeline.ocr" in message


async def test_a_page_without_text_or_images_is_no_scan(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    sheet = canvas.Canvas(buffer, pagesize=A4)
    sheet.rect(50, 50, 300, 300, fill=1)
    sheet.showPage()
    sheet.save()
    missing = OcrOptions(command=str(tmp_path / "no-tesseract"))
    result = extract_document(buffer.getvalue(), ocr=missing)
    assert rule_ids(result) == ["no_text"]
    verdict, _, _ = await outcome(result)
    assert verdict == "valid"


def slow_tesseract(tmp_path: Path) -> tuple[str, Path]:
    """A stand-in Tesseract that knows deu and fra and never finishes a page; it writes its pid
    to the file returned."""
    pid_file = tmp_path / "tesseract.pid"
    program = tmp_path / "tesseract"
    program.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--list-langs" ]; then printf "Languages:\\ndeu\\nfra\\n"; exit 0; fi\n'
        f"echo $$ > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}\n"
        "exec sleep 300\n"
    )
    program.chmod(0o755)
    return str(program), pid_file


def gone(pid: int) -> bool:
    """The process has ended (or is a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_a_slow_ocr_stops_within_the_document_time(tmp_path: Path) -> None:
    program, pid_file = slow_tesseract(tmp_path)
    data, _ = german_din()
    # A short OCR budget well inside the document's time: rendering the page and starting
    # Tesseract take longer when other tests share the cores.
    sandbox = ExtractionSandbox(1, timeout_seconds=20.0, ocr=OcrOptions(command=program))
    sandbox.ocr = dataclasses.replace(sandbox.ocr, time_budget_seconds=1.5)
    with sandbox:
        worker = sandbox.pids
        result = sandbox.extract_sync(scan_of(data))  # answers: no "timeout" refusal
        assert sandbox.pids == worker  # the worker was not killed
    finding = next(f for f in result.findings if f.rule_id == "no_text_layer")
    assert "ran out of time" in finding.message
    assert gone(int(pid_file.read_text()))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_tesseract_dies_with_a_worker_killed_at_the_time_limit(tmp_path: Path) -> None:
    program, pid_file = slow_tesseract(tmp_path)
    data, _ = german_din()
    sandbox = ExtractionSandbox(1, timeout_seconds=2.0, ocr=OcrOptions(command=program))
    sandbox.ocr = dataclasses.replace(sandbox.ocr, time_budget_seconds=300.0)  # past the limit
    with sandbox, pytest.raises(ExtractionError) as refused:
        sandbox.extract_sync(scan_of(data))
    assert refused.value.reason == "timeout"
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # the kernel's SIGKILL to an orphan has no event to wait on
    assert gone(pid)


def test_the_sandbox_gives_ocr_part_of_the_document_time() -> None:
    sandbox = ExtractionSandbox(1, timeout_seconds=20.0)
    assert sandbox.ocr.time_budget_seconds == pytest.approx(15.0)
    tight = ExtractionSandbox(1, timeout_seconds=20.0, ocr=OcrOptions(time_budget_seconds=5.0))
    assert tight.ocr.time_budget_seconds == pytest.approx(5.0)


def test_a_poor_scan_lowers_its_fields_below_the_review_threshold() -> None:
    report = OcrReport(read={1: 0.95, 2: 0.5})
    fields = {
        "total": ExtractedField(value=10.0, confidence=0.9, page=1),
        "iban": ExtractedField(value="DE...", confidence=0.9, page=2),
        "currency": ExtractedField(value="EUR", confidence=0.9, page=None),
        "issuer": ExtractedField(value="A", confidence=0.9, page=3),  # a page with text
    }
    lowered = report.discount(fields)
    assert lowered["total"].confidence == pytest.approx(0.9 * 0.85)
    assert lowered["iban"].confidence == pytest.approx(0.45)  # below review.low_confidence
    assert lowered["currency"].confidence == pytest.approx(0.45)  # no page: the worst one
    assert lowered["issuer"].confidence == 0.9


def test_options_refuse_odd_language_names() -> None:
    with pytest.raises(ValueError, match="Tesseract language names"):
        OcrOptions(languages=("deu", "-c tessedit=1"))
    with pytest.raises(ValidationError, match="not Tesseract language names"):
        PipelineSettings(ocr_languages=["deu", "fra eng"])
    assert OcrOptions.from_json(OcrOptions(languages=("fra",)).to_json()).languages == ("fra",)
