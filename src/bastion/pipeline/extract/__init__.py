"""The document extractor: PDF bytes in, a classified document with typed fields out.

`extract_document` opens the PDF (pypdfium2), reads each page's text with its layout,
classifies the document (invoice, contract, report, other) and extracts the fields of its type.
An invoice that embeds Factur-X / ZUGFeRD / XRechnung XML is read from that XML instead
(authoritative: confidence 1.0, source "einvoice"), unless `text_only` is set. Unreadable input
raises ExtractionError with a reason code from REASON_CODES. Pages without a text layer (scans)
are read by Tesseract when it is installed (`ocr.py`), else reported as `no_text_layer`. The
sandbox and hostile-input preflight that run around this function live in `sandbox.py` and
`preflight.py`; the guardrail findings on every document's text (prompt injection, oversized
lines) come from `guard.py`.
"""

from __future__ import annotations

from bastion.pipeline.extract.classify import classify as _classify
from bastion.pipeline.extract.contract import extract_contract
from bastion.pipeline.extract.einvoice import find_einvoice_xml, parse_einvoice
from bastion.pipeline.extract.guard import guard_findings
from bastion.pipeline.extract.invoice import extract_invoice
from bastion.pipeline.extract.ocr import DEFAULT_OCR, OcrOptions, OcrReport, read_scans
from bastion.pipeline.extract.report import extract_report
from bastion.pipeline.extract.text import (
    Page,
    open_document,
    pdfium_lock,
    plumber_page,
    read_pages,
)
from bastion.pipeline.model import (
    TEXT_EXCERPT_CHARS,
    ExtractedField,
    ExtractionError,
    ExtractionResult,
    Finding,
)

__all__ = ["extract_document"]

_HEAD_ROWS = 8


def extract_document(
    data: bytes, *, text_only: bool = False, max_pages: int = 200, ocr: OcrOptions = DEFAULT_OCR
) -> ExtractionResult:
    """Extract a PDF's document type and fields.

    `text_only` ignores embedded e-invoice XML and reads the page text only. `max_pages` bounds
    the page count (more raises "too_many_pages"). `ocr` says how scan pages are read. Raises
    ExtractionError ("not_pdf", "empty", "truncated", "encrypted", "too_many_pages",
    "extract_failed") when the input is unreadable.
    """
    xml_fields: dict[str, ExtractedField] | None = None
    with pdfium_lock, open_document(data, max_pages) as pdf:
        try:
            if not text_only:
                xml = find_einvoice_xml(pdf)
                xml_fields = parse_einvoice(xml) if xml is not None else None
            pages = read_pages(pdf)
            scans = read_scans(pdf, pages, ocr)
        except ExtractionError:
            raise
        except Exception as exc:  # pdfium fails in many ways on damaged pages
            raise ExtractionError("extract_failed", f"reading the text: {exc}") from exc
    try:
        return _build(data, pages, xml_fields, scans)
    except ExtractionError:
        raise
    except Exception as exc:
        raise ExtractionError("extract_failed", f"{type(exc).__name__}: {exc}") from exc


def _build(
    data: bytes, pages: list[Page], xml_fields: dict[str, ExtractedField] | None, scans: OcrReport
) -> ExtractionResult:
    text = "\n".join(p.text for p in pages)
    text_chars = sum(len(p.text) for p in pages)
    head = "\n".join(r.text for r in pages[0].rows[:_HEAD_ROWS]) if pages else ""

    def plumber(number: int) -> Page | None:
        # An OCR page has no text for pdfplumber to read.
        return None if number in scans.read else plumber_page(data, number)

    if xml_fields:
        text_fields = scans.discount(extract_invoice(pages)) if text.strip() else {}
        fields = dict(xml_fields)
        findings: list[Finding] = []
        for name, f in text_fields.items():
            if name not in fields:
                fields[name] = f
            elif name in ("total", "invoice_number") and f.value != fields[name].value:
                findings.append(
                    Finding(
                        rule_id="einvoice_text_mismatch",
                        severity="warning",
                        message=f"the embedded XML and the page text disagree on {name}",
                        field=name,
                    )
                )
        findings += scans.findings()
        findings += guard_findings(pages)
        return ExtractionResult(
            document_type="invoice",
            confidence=1.0,
            fields=fields,
            pages=len(pages),
            source="einvoice",
            text_chars=text_chars,
            text_excerpt=text[:TEXT_EXCERPT_CHARS],
            findings=findings,
        )

    result = _classify(text, head)
    if result.document_type == "invoice":
        fields = extract_invoice(pages, plumber=plumber)
    elif result.document_type == "contract":
        fields = extract_contract(pages)
    elif result.document_type == "report":
        fields = extract_report(pages)
    else:
        fields = {}
    fields = scans.discount(fields)
    findings = scans.findings()
    if not text.strip() and not scans.unread:
        findings.append(
            Finding(
                rule_id="no_text",
                severity="warning",
                message="the PDF has no extractable text (scanned?)",
            )
        )
    findings += guard_findings(pages)
    return ExtractionResult(
        document_type=result.document_type,
        confidence=result.confidence,
        fields=fields,
        pages=len(pages),
        source="text",
        text_chars=text_chars,
        text_excerpt=text[:TEXT_EXCERPT_CHARS],
        findings=findings,
    )
