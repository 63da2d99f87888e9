"""The data that moves through the document pipeline, shared by every stage.

A document's id names one archive record (one upload by one owner), never its bytes: new ids
are `doc_` + 26 random base32 characters (`new_document_id`); records migrated from before
0004 keep their old id, the SHA-256 of their bytes. `DOCUMENT_ID_PATTERN` is the one check of
that format, used wherever an id arrives (API paths, agent params, queue messages, events).

`bastion extract` prints `ExtractionResult.to_public()`:
`{"document_type": "invoice", "confidence": 0.97, "fields": {"invoice_number": {"value": "INV-1",
"confidence": 0.9, "page": 1}, ...}}`. Dates are ISO `YYYY-MM-DD`, amounts are numbers.
`to_public(explain=True)` adds each field's `evidence` (where and how it was read) and
`alternatives` (the candidates it beat).
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from bastion.storage import ID_TOKEN_PATTERN, random_token

DocumentType = Literal["invoice", "contract", "report", "other"]
Outcome = Literal["valid", "invalid", "needs_review"]
Severity = Literal["info", "warning", "error"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)

INVOICE_FIELDS = (
    "invoice_number", "issue_date", "due_date", "issuer", "customer", "currency",
    "subtotal", "tax", "total", "vat_id", "iban", "bic", "line_items",
)  # fmt: skip
CONTRACT_FIELDS = (
    "parties", "effective_date", "term", "expiry_date", "governing_law", "total_value",
    "currency", "signatories",
)  # fmt: skip
REPORT_FIELDS = ("title", "author", "organisation", "date", "headings", "summary")

# The grant that lets a principal read every owner's documents: `gateway.read_all_documents`.
READ_ALL_AGENT = "gateway"
READ_ALL_ACTION = "read_all_documents"
# The grant that lets a caller name, without a delegation, whose documents a read is for (the
# gateway, which has authorized its own caller): `archivist.choose_owner`. Any other reader
# must carry a delegation, and then sees what the delegation's subject may see.
CHOOSE_OWNER_AGENT = "archivist"
CHOOSE_OWNER_ACTION = "choose_owner"

DOCUMENT_ID_PREFIX = "doc_"
# A new id (`doc_` + 128 random bits in lowercase base32), or a pre-0004 id (a SHA-256).
DOCUMENT_ID_PATTERN = rf"^({DOCUMENT_ID_PREFIX}{ID_TOKEN_PATTERN}|[0-9a-f]{{64}})$"
_DOCUMENT_ID_RE = re.compile(DOCUMENT_ID_PATTERN)


def new_document_id() -> str:
    """A fresh, unguessable, URL-safe document id."""
    return DOCUMENT_ID_PREFIX + random_token()


def is_document_id(value: object) -> bool:
    """Whether `value` is a string in the document-id format (`DOCUMENT_ID_PATTERN`)."""
    return isinstance(value, str) and _DOCUMENT_ID_RE.fullmatch(value) is not None


# How much of a document's text travels with its extraction and is indexed for search.
TEXT_EXCERPT_CHARS = 20_000

# Why a document could not be processed: the reason code on a DLQ entry or a 4xx at upload.
REASON_CODES = {
    "not_pdf": "the file is not a PDF",
    "empty": "the file is empty",
    "truncated": "the PDF is truncated or damaged",
    "encrypted": "the PDF is encrypted",
    "too_many_pages": "the PDF has more pages than the limit",
    "decompression_limit": "a stream inflates past the decompression limit",
    "javascript": "the PDF embeds JavaScript",
    "timeout": "extraction took longer than the per-document time limit",
    "memory_limit": "extraction needed more memory than the per-document limit",
    "extract_failed": "the extractor failed on this file",
}


class ExtractionError(Exception):
    """A document that cannot be processed, with a reason code from REASON_CODES."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASON_CODES:
            raise ValueError(f"unknown reason code {reason!r}")
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail or REASON_CODES[reason]}")


# How many of the candidates a field beat travel with it.
MAX_ALTERNATIVES = 3


class Evidence(BaseModel):
    """Where and how a field's value was read.

    `bbox` is `[x0, top, x1, bottom]` of the text the value was read from, in PDF points with
    y measured down from the top of the page (None where the value has no place on a page: an
    embedded e-invoice XML, a sum). `label` is the label text matched ("Invoice No:"), None
    when no label was. `rule` is a short stable id of the reading rule (`label_right`,
    `label_below`, `title_line`, `form_key`, `arithmetic`, `fallback_first_date`,
    `einvoice_xml`, ...; docs/extraction.md lists them). `score` is the extractor's
    own score of the candidate before calibration, `arithmetic` whether net + tax = total
    held on the document ("agrees", "disagrees", "unknown"): with the rule, what the
    calibrated confidence was looked up from.
    """

    page: int | None = None  # 1-based
    bbox: tuple[float, float, float, float] | None = None
    label: str | None = None
    rule: str = Field(default="unknown", max_length=64)
    score: float | None = None
    arithmetic: Literal["agrees", "disagrees", "unknown"] | None = None


class Alternative(BaseModel):
    """A candidate a field's value beat: its value, score, rule and page."""

    value: Any
    score: float
    rule: str = Field(default="unknown", max_length=64)
    page: int | None = None


class ExtractedField(BaseModel):
    value: Any
    confidence: float = Field(ge=0.0, le=1.0)
    page: int | None = None  # 1-based page the value came from
    evidence: Evidence | None = None
    # The best of the candidates it beat (at most MAX_ALTERNATIVES), best first.
    alternatives: list[Alternative] = Field(default_factory=list, max_length=MAX_ALTERNATIVES)

    def public(self, explain: bool = False) -> dict[str, Any]:
        """`{"value", "confidence", "page"}`; with `explain`, `evidence` and `alternatives`."""
        out: dict[str, Any] = {
            "value": self.value,
            "confidence": round(self.confidence, 3),
            "page": self.page,
        }
        if explain:
            out["evidence"] = None if self.evidence is None else self.evidence.model_dump()
            out["alternatives"] = [a.model_dump() for a in self.alternatives]
        return out


def read_field(
    value: Any, confidence: float, page: int | None, rule: str, label: str | None = None
) -> ExtractedField:
    """A field read from the page text by `rule`, its evidence the page (no box) and rule."""
    evidence = Evidence(page=page, label=label, rule=rule, score=round(confidence, 3))
    return ExtractedField(value=value, confidence=confidence, page=page, evidence=evidence)


class LineItem(BaseModel):
    description: str
    quantity: float | None = None
    unit_price: float | None = None
    amount: float | None = None


class Finding(BaseModel):
    """A validation or guardrail finding recorded on a document."""

    rule_id: str
    severity: Severity
    message: str
    field: str | None = None


class ExtractionResult(BaseModel):
    document_type: DocumentType
    confidence: float = Field(ge=0.0, le=1.0)
    fields: dict[str, ExtractedField] = Field(default_factory=dict)
    pages: int = 0
    # "text": read from the PDF's text; "einvoice": from embedded Factur-X/ZUGFeRD/XRechnung XML.
    source: Literal["text", "einvoice"] = "text"
    text_chars: int = 0
    # The start of the document's text, for full-text search in the archive.
    text_excerpt: str = ""
    findings: list[Finding] = Field(default_factory=list)

    def value(self, name: str) -> Any:
        f = self.fields.get(name)
        return None if f is None else f.value

    def to_public(self, explain: bool = False) -> dict[str, Any]:
        """The JSON shape `bastion extract` prints (`--explain`: with each field's evidence)."""
        return {
            "document_type": self.document_type,
            "confidence": round(self.confidence, 3),
            "fields": {name: f.public(explain) for name, f in self.fields.items()},
        }


class ValidationResult(BaseModel):
    outcome: Outcome
    findings: list[Finding] = Field(default_factory=list)


class DuplicateClaim(BaseModel):
    """The archive's answer when a document claims its issuer and invoice number.

    `duplicate`: another document holds them. `other_id`: that document, only when the asking
    document's uploader may read it. `same_amount`: the holder's total and currency match (or
    either is unknown); False is the more suspicious case, a reused number with another amount.
    """

    # Required, so that a malformed answer fails (the rule then sends the document to review);
    # other keys (the RPC server's `metadata`) are ignored.
    model_config = {"extra": "ignore"}

    duplicate: bool
    other_id: str | None = Field(default=None, max_length=128)
    same_amount: bool = True
