"""Extraction accuracy benchmark: field-level accuracy of the document extractor on the
invoice2data test corpus, and its speed next to raw pypdfium2 text extraction.

    .venv/bin/python bench/extraction.py [--dataset DIR] [--einvoices DIR] [--with-einvoice]
                                         [--details] [--json FILE] [--repeat N]
                                         [--generated-seeds N]

The corpus (`../shared/datasets/invoice2data/`, MIT, invoice-x/invoice2data tests/compare/):
one `<name>.json` of expected fields per input. The PDFs are scored; `Orlen.txt` is skipped
because it is already-extracted text, not a PDF, and the extractor reads PDFs.

Expected field -> extracted field: invoice_number; date -> issue_date; date_due -> due_date;
amount -> total; amount_untaxed -> subtotal; amount_tax -> tax; currency; vat -> vat_id; iban;
bic; issuer; lines / line_items -> line_items. Only the fields each JSON has are scored.

Matching: amounts within 0.01; dates as ISO; the invoice number ignoring case, spaces and a
leading "#"; other identifiers ignoring case, spaces, dots and dashes
(a VAT id also matches without its two-letter country prefix; a BIC with or without the "XXX"
branch code); the issuer ignoring case, punctuation and legal-form suffixes. Line items are
scored one expected item at a time: an item counts when one extracted item (each used once)
has a similar description (difflib ratio >= 0.75, or one contains the other) and every amount
the expected item gives (unit price, line amount) within 0.01. Expected entries without a
description (section headers, notes) are not items.

The held-out and in-sample figures are explained in NOTE, printed first.

Then the real-producer invoices (`../shared/datasets/einvoices/`: 41 Factur-X, ZUGFeRD and UBL
files, the truth read from each one's embedded XML), text only, as two fixed halves: odd file
numbers to tune on, even ones held out, and the whole set (target >= 90% of fields on the
held-out half and on the whole). Amounts within 0.01, dates as ISO dates, the issuer right when
one normalised name (lower case, letters and digits only) contains the other; a field whose
truth is null is not counted.

Then the generated invoices (`bastion.pipeline.generated`: 24 layout families in six
languages, `--generated-seeds` documents per family and language, 2 by default: 288 invoices),
text only, scored with the einvoices rules (the customer like the issuer) in three columns:
the tuned families, the held-out families (`HELD_OUT_FAMILIES`, never used for tuning) and all
(target >= 98% of fields on all, held-out families included). `--details` lists the misses of
the tuned families grouped by family, and of the held-out families only their counts per field,
so that nobody tunes on them by reading this output.

By default the page text is measured (`text_only=True`): embedded e-invoice XML, when a PDF
has it, would otherwise be read instead. `--with-einvoice` measures the full extractor.
"""

from __future__ import annotations

import argparse
import difflib
import json
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from bastion.pipeline.extract import extract_document  # noqa: E402
from bastion.pipeline.generated import FAMILIES, HELD_OUT_FAMILIES, LANGUAGES, corpus  # noqa: E402
from bastion.pipeline.model import ExtractionError, ExtractionResult  # noqa: E402

DEFAULT_DATASET = ROOT / ".." / "shared" / "datasets" / "invoice2data"
EINVOICES = ROOT / ".." / "shared" / "datasets" / "einvoices"
# The einvoices truth (read from each file's embedded XML), in the extractor's field names.
EINVOICE_FIELDS = (
    "invoice_number",
    "issue_date",
    "due_date",
    "currency",
    "issuer",
    "subtotal",
    "tax",
    "total",
)
HALVES = ("odd (tuned)", "even (held out)")
# The generated invoices' truth (`GeneratedInvoice.truth`), and the two groups of families.
GENERATED_FIELDS = (*EINVOICE_FIELDS[:5], "customer", *EINVOICE_FIELDS[5:], "vat_id", "iban")
GROUPS = ("tuned families", "held-out families")

NOTE = (
    "IN-SAMPLE FIGURE. The extraction rules were developed on invoices generated for the\n"
    "purpose (many layouts, languages, number and date formats). A first, held-out run on this\n"
    "corpus scored 47/112 (42.0%; without line items 45/79, 57.0%; 48/112 with the leading-'#'\n"
    "leniency added to the scorer later). The PDFs' text and\n"
    "the misses were then inspected and the extractor improved with generic fixes only (glyph-\n"
    "by-glyph text, multi-label total rows, table sections, vocabulary; later a number printed\n"
    "a few lines under the INVOICE title, and charges listed without a table header whose\n"
    "amounts add up to the total), no per-issuer rules: the figure below (88.4% before those\n"
    "two, 92.9% after) is in-sample and overstates accuracy on unseen layouts. Expected values\n"
    "come from invoice2data's per-issuer templates; the 8 remaining misses cannot be read from\n"
    "the PDF text (placeholder bank details, a company block drawn as an image, brand names or\n"
    "template titles for issuers)."
)

FIELD_MAP = {
    "invoice_number": "invoice_number",
    "date": "issue_date",
    "date_due": "due_date",
    "amount": "total",
    "amount_untaxed": "subtotal",
    "amount_tax": "tax",
    "currency": "currency",
    "vat": "vat_id",
    "iban": "iban",
    "bic": "bic",
    "issuer": "issuer",
}
ORDER = [*FIELD_MAP.values(), "line_items"]

_LEGAL = re.compile(
    r"\b(?:gmbh(?:\s*&\s*co\.?\s*kg)?|ag|kg|ohg|ug|inc|incorporated|llc|l\.l\.c|ltd|limited|plc|"
    r"llp|lp|corp|corporation|co|company|sarl|s\.a\.r\.l|sas|s\.a\.s|sasu|eurl|sa|s\.a|se|bv|b\.v|"
    r"nv|n\.v|sl|s\.l|srl|s\.r\.l|spa|s\.p\.a|sp\.?\s*z\s*o\.?\s*o|oy|ab|as|a/s|aps|pty|pvt|"
    r"private)\b\.?",
    re.IGNORECASE,
)
_NON_WORD = re.compile(r"[^\w]+")
_ID_SEPARATORS = re.compile(r"[\s.\-/]")


@dataclass
class FieldScore:
    correct: int = 0
    total: int = 0


Scores = dict[str, dict[str, FieldScore]]  # part of a corpus -> field -> score


@dataclass
class DocResult:
    name: str
    pages: int
    seconds: float
    raw_seconds: float
    document_type: str
    misses: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------ matching


def norm_name(text: str) -> str:
    text = _LEGAL.sub(" ", text.lower())
    return " ".join(_NON_WORD.sub(" ", text).split())


def norm_id(value: Any) -> str:
    return _ID_SEPARATORS.sub("", str(value)).upper()


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).replace(",", "."))
    except ValueError:
        return None


def same_amount(expected: Any, ours: Any) -> bool:
    a, b = as_float(expected), as_float(ours)
    return a is not None and b is not None and abs(a - b) <= 0.01 + 1e-9


def same_field(name: str, expected: Any, ours: Any) -> bool:
    if ours is None:
        return False
    if name in ("total", "subtotal", "tax"):
        return same_amount(expected, ours)
    if name in ("issue_date", "due_date"):
        return str(expected)[:10] == str(ours)[:10]
    if name == "currency":
        return str(expected).strip().upper() == str(ours).strip().upper()
    if name == "issuer":
        return norm_name(str(expected)) == norm_name(str(ours))
    if name == "invoice_number":
        a, b = ("".join(str(v).split()).lower().lstrip("#") for v in (expected, ours))
        return a == b
    a, b = norm_id(expected), norm_id(ours)
    if name == "vat_id":
        return a == b or a[2:] == b or a == b[2:] or (a[:2].isalpha() and a[2:] == b[2:])
    if name == "bic":
        return a == b or a == b + "XXX" or a + "XXX" == b
    return a == b


def _alnum(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def same_einvoice_field(name: str, expected: Any, ours: Any) -> bool:
    """The einvoices scoring: as `same_field`, except that the issuer (and the customer) is
    right when one normalised name (lower case, letters and digits only) contains the other."""
    if name in ("issuer", "customer"):
        a, b = _alnum(str(expected)), _alnum(str(ours or ""))
        return bool(a and b) and (a in b or b in a)
    return same_field(name, expected, ours)


def run_einvoices(dataset: Path) -> tuple[dict[str, dict[str, FieldScore]], list[DocResult]]:
    """Per-field scores of the text-only extractor on each half of the real-producer invoices
    (odd file numbers: the half tuned on; even: held out); a field whose truth is null is not
    counted."""
    scores = {half: {name: FieldScore() for name in EINVOICE_FIELDS} for half in HALVES}
    docs: list[DocResult] = []
    for json_path in sorted(dataset.glob("*.json"), key=lambda p: int(p.stem)):
        pdf_path = json_path.with_suffix(".pdf")
        if not pdf_path.exists():
            continue
        half = HALVES[0] if int(json_path.stem) % 2 else HALVES[1]
        expected = json.loads(json_path.read_text(encoding="utf-8"))
        name = f"{pdf_path.name} [{half.split()[0]}]"
        doc, outcome = score_document(pdf_path.read_bytes(), name, expected, EINVOICE_FIELDS)
        doc.pages = 0
        for field_name, ok in outcome.items():
            scores[half][field_name].total += 1
            scores[half][field_name].correct += ok
        docs.append(doc)
    return scores, docs


def print_split(
    title: str, fields: tuple[str, ...], scores: Scores, width: int = 18
) -> dict[str, Any]:
    """A table of each field on each part of a corpus (the keys of `scores`) and on the
    whole, `width` characters a column; returns the fields' totals per column."""
    print()
    print(title)
    parts = tuple(scores)
    columns = [*parts, "all"]
    print(f"{'field':<16}" + "".join(f"{c:>{width}}" for c in columns))
    print("-" * (16 + width * len(columns)))
    totals = {c: FieldScore() for c in columns}
    for name in fields:
        cells = []
        for column in columns:
            chosen = parts if column == "all" else (column,)
            c = sum(scores[h][name].correct for h in chosen)
            t = sum(scores[h][name].total for h in chosen)
            totals[column].correct += c
            totals[column].total += t
            cells.append(f"{c:>3}/{t:<3}{pct(c, t):>9}")
        print(f"{name:<16}" + "".join(f"{cell:>{width}}" for cell in cells))
    print("-" * (16 + width * len(columns)))
    overall = [f"{t.correct:>3}/{t.total:<3}{pct(t.correct, t.total):>9}" for t in totals.values()]
    print(f"{'fields':<16}" + "".join(f"{cell:>{width}}" for cell in overall))
    return {c: {"correct": t.correct, "total": t.total} for c, t in totals.items()}


def print_einvoices(scores: dict[str, dict[str, FieldScore]]) -> dict[str, Any]:
    """The einvoices table: each field on each half and on the whole set (target >= 90% of
    fields on the held-out half and on the whole set)."""
    title = "einvoices: 41 real-producer invoices, text only (target >= 90% held out and overall)"
    return print_split(title, EINVOICE_FIELDS, scores)


def score_document(
    data: bytes, name: str, truth: dict[str, Any], fields: tuple[str, ...]
) -> tuple[DocResult, dict[str, bool]]:
    """Extract one PDF's text and score each field whose truth is not null."""
    start = time.perf_counter()
    try:
        result: ExtractionResult | None = extract_document(data, text_only=True)
        kind = result.document_type if result else "?"
    except ExtractionError as exc:
        result, kind = None, f"error ({exc.reason})"
    doc = DocResult(name, result.pages if result else 0, time.perf_counter() - start, 0.0, kind)
    outcome = {}
    for field_name in fields:
        if truth.get(field_name) in (None, ""):
            continue
        ours = result.value(field_name) if result else None
        outcome[field_name] = ok = same_einvoice_field(field_name, truth[field_name], ours)
        if not ok:
            doc.misses.append(f"{field_name}: expected {truth[field_name]!r}, got {ours!r}")
    return doc, outcome


def run_generated(
    seeds: int,
) -> tuple[dict[str, dict[str, FieldScore]], dict[str, list[DocResult]]]:
    """Per-field scores on the generated invoices, tuned and held-out families apart, and
    each family's documents."""
    scores = {group: {name: FieldScore() for name in GENERATED_FIELDS} for group in GROUPS}
    by_family: dict[str, list[DocResult]] = {}
    for generated in corpus(range(seeds)):
        group = GROUPS[1] if generated.held_out else GROUPS[0]
        doc, outcome = score_document(
            generated.pdf, generated.name, generated.truth, GENERATED_FIELDS
        )
        for name, ok in outcome.items():
            scores[group][name].total += 1
            scores[group][name].correct += ok
        by_family.setdefault(generated.family, []).append(doc)
    return scores, by_family


def print_generated_details(by_family: dict[str, list[DocResult]]) -> None:
    """The tuned families' misses, family by family; for a held-out family only how many
    fields it missed, per field (its documents are not to be tuned on)."""
    print()
    print("generated: misses by family (held-out families: counts per field only)")
    for family, docs in by_family.items():
        misses = [(d.name, m) for d in docs for m in d.misses]
        held_out = family in HELD_OUT_FAMILIES
        print(f"{family}{' [held out]' if held_out else ''}: {len(misses)} miss(es) "
              f"in {len(docs)} documents")  # fmt: skip
        if held_out:
            counts: dict[str, int] = {}
            for _, miss in misses:
                counts[miss.split(":")[0]] = counts.get(miss.split(":")[0], 0) + 1
            if counts:
                print("    " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
            continue
        for name, miss in misses:
            print(f"    {name}: {miss}")


def expected_items(raw: list[Any]) -> list[dict[str, Any]]:
    items = []
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        desc = next(
            (entry[k] for k in ("name", "desc", "description", "product", "item") if entry.get(k)),
            None,
        )
        if not desc:
            continue  # a section header or a note, not an item
        items.append(
            {
                "description": str(desc),
                "unit_price": entry.get("price_unit"),
                "amount": entry.get("price_subtotal", entry.get("amount")),
                "price": entry.get("price"),  # unit price or line amount, the template says not
            }
        )
    return items


def similar(a: str, b: str) -> bool:
    a, b = " ".join(a.lower().split()), " ".join(b.lower().split())
    if not a or not b:
        return False
    if len(a) >= 5 and len(b) >= 5 and (a in b or b in a):
        return True
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.75


def item_matches(exp: dict[str, Any], got: dict[str, Any]) -> bool:
    if not similar(exp["description"], str(got.get("description") or "")):
        return False
    if exp["unit_price"] is not None and not same_amount(exp["unit_price"], got.get("unit_price")):
        return False
    if exp["amount"] is not None and not same_amount(exp["amount"], got.get("amount")):
        return False
    return exp["price"] is None or (
        same_amount(exp["price"], got.get("unit_price"))
        or same_amount(exp["price"], got.get("amount"))
    )


def score_items(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> list[bool]:
    free = list(got)
    out = []
    for exp in expected:
        hit = next((g for g in free if item_matches(exp, g)), None)
        if hit is not None:
            free.remove(hit)
        out.append(hit is not None)
    return out


# ---------------------------------------------------------------------------------------- run


def raw_text_seconds(data: bytes) -> float:
    start = time.perf_counter()
    pdf = pdfium.PdfDocument(data)
    try:
        for page in pdf:
            textpage = page.get_textpage()
            textpage.get_text_range()
            textpage.close()
            page.close()
    finally:
        pdf.close()
    return time.perf_counter() - start


def run(dataset: Path, text_only: bool, repeat: int) -> tuple[dict[str, FieldScore], list[Any]]:
    scores = {name: FieldScore() for name in ORDER}
    docs: list[DocResult] = []
    for json_path in sorted(dataset.glob("*.json")):
        pdf_path = json_path.with_suffix(".pdf")
        if not pdf_path.exists():
            continue
        expected = json.loads(json_path.read_text(encoding="utf-8"))
        expected = expected[0] if isinstance(expected, list) else expected
        data = pdf_path.read_bytes()
        seconds: list[float] = []
        raw: list[float] = []
        result: ExtractionResult | None = None
        error = ""
        for _ in range(repeat):
            raw.append(raw_text_seconds(data))
            start = time.perf_counter()
            try:
                result = extract_document(data, text_only=text_only)
            except ExtractionError as exc:
                error = f"{exc.reason}: {exc.detail}"
            seconds.append(time.perf_counter() - start)
        pages = result.pages if result else len(pdfium.PdfDocument(data))
        doc = DocResult(
            pdf_path.name,
            pages,
            statistics.median(seconds),
            statistics.median(raw),
            result.document_type if result else f"error ({error})",
        )
        for key, ours_name in FIELD_MAP.items():
            if key not in expected or expected[key] in (None, ""):
                continue
            ours = result.value(ours_name) if result else None
            ok = same_field(ours_name, expected[key], ours)
            scores[ours_name].total += 1
            scores[ours_name].correct += ok
            if not ok:
                doc.misses.append(f"{ours_name}: expected {expected[key]!r}, got {ours!r}")
        for key in ("lines", "line_items"):
            if isinstance(expected.get(key), list):
                items = expected_items(expected[key])
                got = (result.value("line_items") if result else None) or []
                for exp, ok in zip(items, score_items(items, got), strict=True):
                    scores["line_items"].total += 1
                    scores["line_items"].correct += ok
                    if not ok:
                        doc.misses.append(f"line item: {exp['description'][:40]!r} not found")
        docs.append(doc)
    return scores, docs


def pct(correct: int, total: int) -> str:
    return f"{100.0 * correct / total:5.1f}%" if total else "    -"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--einvoices", type=Path, default=EINVOICES)
    parser.add_argument(
        "--with-einvoice", action="store_true", help="read embedded e-invoice XML too"
    )
    parser.add_argument("--details", action="store_true", help="list the misses per document")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs per document")
    parser.add_argument(
        "--generated-seeds",
        type=int,
        default=2,
        help="generated invoices per family and language (0: skip the generated section)",
    )
    args = parser.parse_args()
    dataset = args.dataset.resolve()
    if not dataset.is_dir():
        print(f"dataset not found: {dataset}", file=sys.stderr)
        return 1

    print(NOTE)
    print()
    mode = "full extractor (e-invoice XML when embedded)" if args.with_einvoice else "text only"
    print(f"dataset: {dataset}  mode: {mode}")
    skipped = sorted(p.name for p in dataset.glob("*.txt") if p.name != "README.txt")
    if skipped:
        print(f"skipped (not PDF input): {', '.join(skipped)}")
    scores, docs = run(dataset, not args.with_einvoice, max(1, args.repeat))

    print()
    print(f"{'field':<16}{'correct/total':>14}{'':>4}{'%':>6}")
    print("-" * 40)
    correct = total = 0
    for name in ORDER:
        s = scores[name]
        if not s.total:
            continue
        correct += s.correct
        total += s.total
        unit = " items" if name == "line_items" else ""
        print(f"{name:<16}{s.correct:>6}/{s.total:<7}{unit:<4}{pct(s.correct, s.total):>7}")
    print("-" * 40)
    print(f"{'overall':<16}{correct:>6}/{total:<7}{'':<4}{pct(correct, total):>7}")
    fields_only = [s for n, s in scores.items() if n != "line_items"]
    fc, ft = sum(s.correct for s in fields_only), sum(s.total for s in fields_only)
    print(f"{'(without items)':<16}{fc:>6}/{ft:<7}{'':<4}{pct(fc, ft):>7}")

    pages = sum(d.pages for d in docs)
    ours = sum(d.seconds for d in docs)
    raw = sum(d.raw_seconds for d in docs)
    print()
    print(f"documents: {len(docs)}  pages: {pages}  (median of {args.repeat} runs per document)")
    print(f"extractor:          {pages / ours:8.1f} pages/s  ({1000 * ours / pages:.2f} ms/page)")
    print(f"raw pypdfium2 text: {pages / raw:8.1f} pages/s  ({1000 * raw / pages:.2f} ms/page)")
    print(f"extractor speed = {raw / ours:.1%} of raw pypdfium2 text extraction")
    print(f"python {platform.python_version()}, pypdfium2 {pdfium.PYPDFIUM_INFO}")

    einvoices: dict[str, Any] = {}
    einvoice_docs: list[DocResult] = []
    if args.einvoices.is_dir():
        half_scores, einvoice_docs = run_einvoices(args.einvoices.resolve())
        einvoices = print_einvoices(half_scores)
    else:
        print(f"\neinvoices not found at {args.einvoices}: skipped")

    generated: dict[str, Any] = {}
    generated_docs: dict[str, list[DocResult]] = {}
    if args.generated_seeds > 0:
        group_scores, generated_docs = run_generated(args.generated_seeds)
        count = sum(len(d) for d in generated_docs.values())
        title = (
            f"generated: {count} invoices ({len(FAMILIES)} families x {len(LANGUAGES)} "
            f"languages x {args.generated_seeds} seeds, {len(HELD_OUT_FAMILIES)} families "
            "held out), text only (target >= 98% overall)"
        )
        generated = print_split(title, GENERATED_FIELDS, group_scores, width=20)

    if args.details:
        print()
        for d in [*docs, *einvoice_docs]:
            status = "ok" if not d.misses else f"{len(d.misses)} miss(es)"
            print(f"{d.name} [{d.document_type}, {d.pages} p, {1000 * d.seconds:.1f} ms]: {status}")
            for miss in d.misses:
                print(f"    {miss}")
        if generated_docs:
            print_generated_details(generated_docs)
    if args.json:
        payload = {
            "note": NOTE,
            "mode": mode,
            "fields": {n: {"correct": s.correct, "total": s.total} for n, s in scores.items()},
            "overall": {"correct": correct, "total": total},
            "pages": pages,
            "pages_per_second": pages / ours,
            "raw_pages_per_second": pages / raw,
            "documents": [d.__dict__ for d in docs],
            "einvoices": einvoices,
            "einvoice_documents": [d.__dict__ for d in einvoice_docs],
            "generated": generated,
            "generated_tuned_documents": [
                d.__dict__
                for family, family_docs in generated_docs.items()
                if family not in HELD_OUT_FAMILIES
                for d in family_docs
            ],
        }
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
