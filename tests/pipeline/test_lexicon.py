"""The invoice lexicon: its term syntax, its checks, extra files that add a language, and the
matching it gives the extractor (compounds, letter-spaced and hyphen-broken words, net and gross
qualifiers), each shown on a PDF generated here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest

from bastion.pipeline.extract import extract_document
from bastion.pipeline.extract.invoice import extract_invoice
from bastion.pipeline.extract.invoice.lexicon import (
    ENV_FILES,
    LexiconError,
    compile_term,
    load_lexicon,
)
from bastion.pipeline.extract.invoice.vocabulary import _amount_kind
from bastion.pipeline.extract.text import Cell, build_rows, read_pages
from tests.pipeline.test_extract_invoice import Sheet

ROOT = Path(__file__).resolve().parents[2]


def matches(term: str, text: str, **kwargs: bool) -> str | None:
    """What `term` matches at the start of `text` (case-insensitively unless exact)."""
    flags = 0 if kwargs.get("exact") else re.IGNORECASE
    m = re.compile(compile_term(term, **kwargs), flags).match(text)
    return m.group(0) if m else None


# ------------------------------------------------------------------------------ the syntax


@pytest.mark.parametrize(
    ("term", "text", "found"),
    [
        ("invoice date", "Invoice  Date:", "Invoice  Date"),
        ("invoice date", "InvoiceDate", "InvoiceDate"),
        ("invoice date", "Invoice Dates", None),  # a term ends where a word ends
        ("re.-nr.", "Re.-Nr. 5", "Re.-Nr."),
        ("re.-nr.", "Re Nr 5", "Re Nr"),
        ("re.-nr.", "Re - Nr", "Re - Nr"),
        ("échéance", "Echeance", "Echeance"),
        ("échéance", "ÉCHÉANCE", "ÉCHÉANCE"),
        ("n° [de ]facture", "No facture", "No facture"),
        ("n° [de ]facture", "N° de facture", "N° de facture"),
        ("date d'émission", "Date d\u2019émission", "Date d\u2019émission"),
        ("invoice (no|number|#).", "Invoice No.", "Invoice No."),
        ("invoice (no|number|#).", "Invoice #INV-7", "Invoice #"),
        ("invoice (no|number|#).", "Invoice Note", None),
        ("fällig[keit][ am]", "Fällig am", "Fällig am"),
        ("fällig[keit][ am]", "Fälligkeit", "Fälligkeit"),
        ("fällig[keit][ am]", "fällige Summe", None),
        ("buyer[:]", "Buyer :", "Buyer :"),
        ("buyer[:]", "BuyerReference", None),
        ("netto*", "Nettobetrag", "Netto"),
        ("*rechnung", "Schlussrechnung", "Schlussrechnung"),
        ("*steuer(betrag|summe)*", "Umsatzsteuerbetrag", "Umsatzsteuerbetrag"),
        ("within <days> days", "within 30 days", "within 30 days"),
        ("within <days> days", "within 3000 days", None),
        ("due:", "Due :", "Due :"),
        (r"re: tot(?:al)?\b", "Tot 5", "Tot"),
    ],
)
def test_plain_terms_match_words_and_phrases(term: str, text: str, found: str | None) -> None:
    assert matches(term, text) == found


def test_exact_terms_keep_their_case_and_dots() -> None:
    assert matches("GmbH & Co[.] KG[aA]", "GmbH & Co KG", exact=True) == "GmbH & Co KG"
    assert matches("GmbH", "GMBH", exact=True) is None
    assert matches("e. K.", "e.K.", exact=True) == "e.K."
    assert matches("e. K.", "e K", exact=True) is None


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("invoice?", "regex syntax"),
        ("invoice (no|nr", "')' missing"),
        ("invoice no)", "unbalanced"),
        ("a|b", "one term per alternative"),
        ("in*voice", "start or the end"),
        ("within <weeks> weeks", "slot"),
        ("re: (unclosed", "missing"),
        ("re: total (due|payable)", "must not capture"),
        (r"re: Total\b", "lower case"),
    ],
)
def test_a_malformed_term_is_refused_with_the_reason(term: str, message: str) -> None:
    with pytest.raises((ValueError, re.error), match=re.escape(message)):
        compile_term(term)


# ----------------------------------------------------------------------- the files


def write(tmp_path: Path, text: str, name: str = "extra.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_lexicon_covers_the_business_terms_in_german_english_and_french() -> None:
    groups = load_lexicon().groups
    # The VAT total: its compounds under BT-110, its single words ("VAT", "MwSt") under tax-word.
    for key in ("BT-1", "BT-2", "BT-9", "BT-5", "BG-4", "BG-7", "BT-106", "BT-107", "BT-108",
                "BT-109", "tax-word", "BT-112", "BT-113", "BT-115"):  # fmt: skip
        assert groups[key].name != key, key
        assert {"de", "en", "fr"} <= set(groups[key].terms), key
    assert "de" in groups["BT-110"].terms


def test_the_label_keys_scanned_over_whole_pages_hold_no_compound_terms() -> None:
    # A leading "*" is tried at every word of every page: the scan would slow down.
    groups = load_lexicon().groups
    for key in ("BT-1", "BT-2", "BT-9", "BT-31", "BT-32", "BT-86", "BG-4", "BG-7", "BG-13",
                "BT-85", "date", "reference"):  # fmt: skip
        assert not [t for t in groups[key].all_terms() if t.startswith("*")], key


def test_an_extra_file_adds_terms_and_languages(tmp_path: Path) -> None:
    extra = write(tmp_path, "terms:\n  BT-2:\n    da: [fakturadato]\n    de: [rechnungstag]\n")
    shipped = load_lexicon()
    merged = load_lexicon([extra])
    assert "da" not in shipped.groups["BT-2"].terms
    assert merged.groups["BT-2"].terms["da"] == ["fakturadato"]
    assert merged.groups["BT-2"].terms["de"] == [
        *shipped.groups["BT-2"].terms["de"],
        "rechnungstag",
    ]
    assert re.search(merged.body("BT-2"), "fakturadato")
    assert not re.search(shipped.body("BT-2"), "fakturadato")
    assert merged.sources[-1] == str(extra)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("terms:\n  BT-99:\n    da: [x]\n", "unknown key 'BT-99'"),
        ("terms:\n  BT-2:\n    Danish: [x]\n", "'Danish' is not a language code"),
        ("terms:\n  BT-2:\n    da: fakturadato\n", "BT-2, da: expected a non-empty list"),
        ("terms:\n  BT-2:\n    da: [fakturadato, 'dato?']\n", "BT-2, da, term 2 'dato?'"),
        ("terms:\n  BT-2:\n    case: loud\n", "'case' is 'exact' or 'ignore'"),
        ("terms:\n  legal-form:\n    case: ignore\n", "legal-form: 'case' is set by"),
        ("BT-2: [x]\n", "a 'terms' mapping"),
        ("terms: [\n", "not valid YAML"),
    ],
)
def test_a_bad_extra_file_is_refused_naming_the_file_key_language_and_term(
    tmp_path: Path, text: str, message: str
) -> None:
    extra = write(tmp_path, text)
    with pytest.raises(LexiconError, match=re.escape(message)) as caught:
        load_lexicon([extra])
    assert str(extra) in str(caught.value)


def test_a_missing_extra_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match="cannot read the lexicon file"):
        load_lexicon([tmp_path / "absent.yaml"])


# ----------------------------------------------------------------- adding a language

DANISH = """\
terms:
  BT-1: {da: ["faktura(nr|nummer)."]}
  BT-2: {da: [fakturadato]}
  BT-9: {da: [forfaldsdato]}
  BT-115: {da: [at betale*]}
  BG-7: {da: ["køber[:]"]}
  total-word: {da: [beløb]}
  qualifier-net: {da: [ekskl*]}
  tax-word: {da: [moms]}
  column-description: {da: [beskrivelse]}
  column-quantity: {da: [antal]}
  column-unit-price: {da: [stykpris]}
  column-line-amount: {da: [beløb]}
"""


def danish_invoice() -> bytes:
    s = Sheet()
    s.text(50, 60, "Nordlys ApS", 16, bold=True)
    s.text(50, 76, "Havnegade 12, 1058 København K", 8)
    s.text(400, 60, "FAKTURA", 20, bold=True)
    for k, (label, value) in enumerate(
        [
            ("Fakturanr.", "DK-2025-311"),
            ("Fakturadato", "14.03.2025"),
            ("Forfaldsdato", "13.04.2025"),
        ]
    ):
        s.text(360, 100 + 14 * k, label)
        s.text(545, 100 + 14 * k, value, align="right")
    s.text(50, 100, "Køber:", bold=True)
    s.text(50, 114, "Fjordhus A/S")
    s.text(50, 128, "Strandvej 4, 2100 København Ø")
    xs = [50, 330, 430, 545]
    y = s.rows(
        200,
        [
            ["Beskrivelse", "Antal", "Stykpris", "Beløb"],
            ["Konsulenttimer", "8", "125,00", "1.000,00"],
        ],
        xs,
    )
    s.rows(
        y + 20,
        [["Beløb ekskl. moms", "1.000,00"], ["Moms 25%", "250,00"], ["At betale DKK", "1.250,00"]],
        [330, 545],
    )
    return s.pdf()


EXTRACT = """\
import json, sys
from bastion.pipeline.extract import extract_document
result = extract_document(sys.stdin.buffer.read())
print(json.dumps({k: f.value for k, f in result.fields.items() if f is not None}, default=str))
"""


def extract_with(files: list[Path], data: bytes) -> dict[str, Any]:
    """The fields of `data` read by a fresh process whose lexicon has the extra `files`."""
    env = {**os.environ, ENV_FILES: os.pathsep.join(map(str, files))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", EXTRACT], input=data, capture_output=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    fields: dict[str, Any] = json.loads(done.stdout)
    return fields


def test_a_language_is_added_by_a_lexicon_file_alone(tmp_path: Path) -> None:
    data = danish_invoice()
    expected = {
        "invoice_number": "DK-2025-311",
        "issue_date": "2025-03-14",
        "due_date": "2025-04-13",
        "customer": "Fjordhus A/S",
        "subtotal": 1000.0,
        "tax": 250.0,
        "total": 1250.0,
        "line_items": [
            {
                "description": "Konsulenttimer",
                "quantity": 8.0,
                "unit_price": 125.0,
                "amount": 1000.0,
            }
        ],
    }
    # The shipped lexicon knows no Danish: the due date, the tax and the net sum are not read
    # (the layout alone finds the customer's address block and the item table).
    before = {k: f.value for k, f in extract_document(data).fields.items() if f is not None}
    assert {"due_date", "subtotal", "tax"} <= {k for k in expected if before.get(k) != expected[k]}
    after = extract_with([write(tmp_path, DANISH, "da.yaml")], data)
    assert {k: after.get(k) for k in expected} == expected


def test_a_bad_extra_file_stops_the_extractor_with_its_reason(tmp_path: Path) -> None:
    bad = write(tmp_path, "terms:\n  BT-2:\n    da: ['dato?']\n")
    env = {**os.environ, ENV_FILES: str(bad), "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", EXTRACT], input=b"", capture_output=True, env=env, check=False
    )
    assert done.returncode != 0
    assert "BT-2, da, term 1 'dato?'" in done.stderr.decode()


# ------------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("Umsatzsteuerbetrag", "tax"),
        ("Gesamtnettobetrag", "subtotal"),
        ("Nettogewicht", None),
        ("Summe ohne USt", "subtotal"),
        ("Gesamt inkl. MwSt", "total"),
        ("Total HT", "subtotal"),
        ("Total TTC", "total"),
        ("Amount (excl. VAT)", "subtotal"),
        ("Betrag brutto", "total"),
    ],
)
def test_compounds_and_qualifiers_decide_the_kind_of_amount(label: str, kind: str | None) -> None:
    found = _amount_kind(label)
    assert (found[0] if found else None) == kind


def fields_of(data: bytes) -> dict[str, Any]:
    """The invoice fields of `data`'s pages (read as an invoice, whatever its class)."""
    pdf = pdfium.PdfDocument(data)
    try:
        pages = read_pages(pdf)
    finally:
        pdf.close()
    return {k: f.value for k, f in extract_invoice(pages).items()}


def german_totals(
    labels: tuple[str, str, str], title: str = "Schlussrechnung Nr. 2025-17"
) -> bytes:
    s = Sheet()
    s.text(50, 60, "Baustoffe Lindner GmbH", 14, bold=True)
    s.text(50, 74, "Industriestr. 3, 80331 München", 8)
    s.text(50, 120, "Schlussrechnung Nr. 2025-17", 14, bold=True)
    s.text(50, 140, "Datum: 03.02.2025")
    s.rows(200, [["Betonmischer Miete", "400,00"]], [50, 545])
    s.rows(260, [[labels[0], "400,00"], [labels[1], "76,00"], [labels[2], "476,00"]], [300, 545])
    return s.pdf()


def test_compound_words_name_the_title_the_net_total_and_the_tax() -> None:
    fields = fields_of(german_totals(("Gesamtnettobetrag", "Umsatzsteuerbetrag", "Endbetrag")))
    assert fields["invoice_number"] == "2025-17"  # from "Schlussrechnung Nr."
    assert (fields["subtotal"], fields["tax"], fields["total"]) == (400.0, 76.0, 476.0)


def test_qualifiers_decide_net_against_gross_in_german() -> None:
    fields = fields_of(german_totals(("Summe ohne USt", "USt 19 %", "Gesamt inkl. MwSt")))
    assert (fields["subtotal"], fields["tax"], fields["total"]) == (400.0, 76.0, 476.0)


def test_qualifiers_decide_net_against_gross_in_french() -> None:
    s = Sheet()
    s.text(50, 60, "Atelier Marchand SARL", 14, bold=True)
    s.text(50, 120, "Facture N° F-2025-88", 14, bold=True)
    s.text(50, 140, "Date : 12/05/2025")
    s.rows(200, [["Prestation de conseil", "250,00"]], [50, 545])
    s.rows(
        260, [["Montant HT", "250,00"], ["TVA 20 %", "50,00"], ["Total TTC", "300,00"]], [300, 545]
    )
    fields = fields_of(s.pdf())
    assert (fields["subtotal"], fields["tax"], fields["total"]) == (250.0, 50.0, 300.0)


def test_letter_spaced_words_are_read_as_words() -> None:
    s = Sheet()
    s.text(50, 60, "Kanzlei Roth & Partner", 14, bold=True)
    s.text(50, 120, "R E C H N U N G  Nr. 4711", 14, bold=True)
    s.text(50, 140, "Datum: 03.02.2025")
    s.rows(200, [["Beratung", "300,00"]], [50, 545])
    totals = [["N E T T O", "300,00"], ["U S T", "57,00"], ["G E S A M T B E T R A G", "357,00"]]
    s.rows(260, totals, [300, 545])
    fields = fields_of(s.pdf())
    assert fields["invoice_number"] == "4711"
    assert (fields["subtotal"], fields["total"]) == (300.0, 357.0)


def test_words_broken_by_a_hyphen_are_joined() -> None:
    s = Sheet()
    s.text(50, 60, "Baustoffe Lindner GmbH", 14, bold=True)
    s.text(50, 120, "Rech- nungsnummer: RE-88812")
    s.text(50, 140, "Datum: 03.02.2025")
    s.rows(200, [["Betonmischer Miete", "400,00"]], [50, 545])
    s.rows(260, [["Netto", "400,00"], ["USt 19 %", "76,00"]], [300, 545])
    # A label wrapped in its column, the value beside its second line.
    s.text(300, 290, "Rechnungs-")
    s.rows(304, [["betrag", "476,00"]], [300, 545])
    fields = fields_of(s.pdf())
    assert fields["invoice_number"] == "RE-88812"
    assert fields["total"] == 476.0


def rows_of(spec: list[list[tuple[str, float]]]) -> list[tuple[str, list[tuple[float, float]]]]:
    cells = [
        Cell(t, x, x + 6 * len(t), 100 + 15 * k, 108 + 15 * k)
        for k, row in enumerate(spec)
        for t, x in row
    ]
    return [(r.text, [(c.x0, c.x1) for c in r.cells]) for r in build_rows(cells)]


def test_the_text_layer_mends_words_and_keeps_cell_boxes_on_their_glyphs() -> None:
    assert rows_of([[("T O T A L", 50), ("12.00", 400)]]) == [
        ("TOTAL\t12.00", [(50, 104), (400, 430)])
    ]
    # Initials and short runs stay apart; "Rechnungs- und" is a compound's shared half.
    assert rows_of([[("J R R Tolkien", 50)]])[0][0] == "J R R Tolkien"
    assert rows_of([[("Rechnungs- und Lieferadresse", 50)]])[0][0] == "Rechnungs- und Lieferadresse"
    # A fragment alone on its line joins the row below that holds the value, over both boxes.
    assert rows_of([[("Rechnungs-", 50)], [("betrag", 50), ("9,00", 400)]]) == [
        ("Rechnungsbetrag\t9,00", [(50, 110), (400, 424)])
    ]
    # The value beside the first line: the rest of the word comes up, the empty row goes.
    assert rows_of([[("Rechnungs-", 50), ("9,00", 400)], [("betrag", 50)]]) == [
        ("Rechnungsbetrag\t9,00", [(50, 110), (400, 424)])
    ]
