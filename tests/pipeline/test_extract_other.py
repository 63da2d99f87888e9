"""Contract and report extraction on PDFs generated here with reportlab (English, German,
French), and the extractive summary."""

from __future__ import annotations

import io

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table

from bastion.pipeline.extract import extract_document
from bastion.pipeline.extract.report import summarise
from bastion.pipeline.model import CONTRACT_FIELDS, REPORT_FIELDS

STYLES = getSampleStyleSheet()


def build(story: list[Flowable]) -> bytes:
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4).build(story)
    return buf.getvalue()


def para(text: str, style: str = "Normal") -> Paragraph:
    return Paragraph(text, STYLES[style])


def english_contract() -> bytes:
    return build(
        [
            para("SERVICE AGREEMENT", "Title"),
            para(
                'This Service Agreement (the "Agreement") is made and entered into as of March 1, '
                '2025 (the "Effective Date") by and between Northwind Traders Ltd, a company '
                'registered in England (the "Supplier"), and Contoso Pharmaceuticals Inc. '
                '(the "Customer").'
            ),
            para("1. Services", "Heading2"),
            para("The Supplier shall provide the consulting services described in Schedule A."),
            para("2. Term", "Heading2"),
            para(
                "The term of this Agreement is twelve (12) months from the Effective Date. This "
                "Agreement expires on February 28, 2026 unless renewed in writing."
            ),
            para("3. Fees", "Heading2"),
            para(
                "The Supplier charges a fee of USD 10,000.00 per month, a total contract value of "
                "USD 120,000.00, invoiced monthly."
            ),
            para("4. Governing Law", "Heading2"),
            para(
                "This Agreement shall be governed by and construed in accordance with the laws "
                "of the State of New York."
            ),
            Spacer(1, 24),
            para("IN WITNESS WHEREOF, the parties have executed this Agreement."),
            Spacer(1, 18),
            para("________________________"),
            para("Name: Jane Doe"),
            para("Title: Managing Director, Northwind Traders Ltd"),
            Spacer(1, 18),
            para("________________________"),
            para("Name: Richard Roe"),
            para("Title: CEO, Contoso Pharmaceuticals Inc."),
        ]
    )


def german_contract() -> bytes:
    return build(
        [
            para("Dienstleistungsvertrag", "Title"),
            para(
                "Zwischen der Muster Consulting GmbH, Hauptstraße 1, 10115 Berlin (nachfolgend "
                "„Auftragnehmer“) und der Beispiel Handel AG, München (nachfolgend "
                "„Auftraggeber“) wird folgender Vertrag geschlossen."
            ),
            para("§ 1 Vertragsgegenstand", "Heading2"),
            para("Der Auftragnehmer verpflichtet sich zur Erbringung von Beratungsleistungen."),
            para("§ 2 Laufzeit", "Heading2"),
            para(
                "Der Vertrag tritt am 1. April 2025 in Kraft und hat eine Laufzeit von 24 "
                "Monaten. Er endet am 31. März 2027."
            ),
            para("§ 3 Vergütung", "Heading2"),
            para("Die Gesamtvergütung beträgt 48.000,00 EUR zuzüglich Umsatzsteuer."),
            para("§ 4 Schlussbestimmungen", "Heading2"),
            para("Dieser Vertrag unterliegt deutschem Recht. Gerichtsstand ist Berlin."),
            Spacer(1, 24),
            para("Berlin, den 20. März 2025. Unterschriften:"),
            Table([["Dr. Katrin Vogel", "Thomas Berger"]]),
        ]
    )


def french_contract() -> bytes:
    return build(
        [
            para("CONTRAT DE PRESTATION DE SERVICES", "Title"),
            para(
                "Entre les soussignés : la société Atelier Lumière SARL, ci-après « le "
                "Prestataire », et la société Boulangerie Martin SAS, ci-après « le Client »."
            ),
            para("Article 1 - Objet", "Heading2"),
            para("Le Prestataire s'engage à réaliser l'installation de l'éclairage du magasin."),
            para("Article 2 - Durée", "Heading2"),
            para(
                "Le présent contrat prend effet le 1er mai 2025 pour une durée de 6 mois. Il "
                "prend fin le 31 octobre 2025."
            ),
            para("Article 3 - Prix", "Heading2"),
            para("Le prix total des prestations s'élève à 9 600,00 € HT."),
            para("Article 4 - Droit applicable", "Heading2"),
            para("Le présent contrat est soumis au droit français."),
        ]
    )


def english_report() -> bytes:
    summary = (
        "Renewable electricity generation grew strongly across the region in 2024. Solar "
        "capacity additions doubled compared with the previous year, driven by falling module "
        "prices. Wind generation remained stable while grid congestion delayed several offshore "
        "projects. Storage deployments are now the main constraint on further solar growth in "
        "the region. Policy makers should prioritise grid investment and storage incentives to "
        "sustain renewable growth."
    )
    return build(
        [
            para("Institute for Energy Transition"),
            Spacer(1, 12),
            para("Regional Renewable Energy Outlook 2025", "Title"),
            para("Prepared by: Dr. Anna Schmidt, Senior Analyst"),
            para("Date: 15 January 2025"),
            para("Executive Summary", "Heading1"),
            para(summary),
            para("1. Introduction", "Heading1"),
            para(
                "This report reviews electricity generation data for 2024 and discusses the "
                "outlook for the coming year. We analyse capacity additions, generation and grid "
                "constraints in detail."
            ),
            para("2. Findings", "Heading1"),
            para(
                "Solar generation rose by 38 percent. Wind generation rose by 2 percent. Grid "
                "congestion caused curtailment of 4 percent of renewable output."
            ),
            para("3. Recommendations", "Heading1"),
            para(
                "Grid investment and storage incentives are recommended. Permitting for storage "
                "projects should be simplified."
            ),
        ]
    )


def test_english_contract() -> None:
    result = extract_document(english_contract())
    assert result.document_type == "contract"
    assert result.confidence >= 0.8
    assert set(result.fields) <= set(CONTRACT_FIELDS)
    assert result.value("parties") == ["Northwind Traders Ltd", "Contoso Pharmaceuticals Inc."]
    assert result.value("effective_date") == "2025-03-01"
    assert result.value("term") == "12 months"
    assert result.value("expiry_date") == "2026-02-28"
    assert result.value("governing_law") == "State of New York"
    assert result.value("total_value") == 120000.0  # not the monthly fee
    assert result.value("currency") == "USD"
    assert result.value("signatories") == ["Jane Doe", "Richard Roe"]
    assert all(f.page == 1 for f in result.fields.values())


def test_german_contract() -> None:
    result = extract_document(german_contract())
    assert result.document_type == "contract"
    assert result.value("parties") == ["Muster Consulting GmbH", "Beispiel Handel AG"]
    assert result.value("effective_date") == "2025-04-01"
    assert result.value("term") == "24 months"
    assert result.value("expiry_date") == "2027-03-31"
    assert result.value("governing_law") == "Germany"
    assert result.value("total_value") == 48000.0
    assert result.value("currency") == "EUR"
    assert result.value("signatories") == ["Dr. Katrin Vogel", "Thomas Berger"]


def test_french_contract() -> None:
    result = extract_document(french_contract())
    assert result.document_type == "contract"
    assert result.value("parties") == ["Atelier Lumière SARL", "Boulangerie Martin SAS"]
    assert result.value("effective_date") == "2025-05-01"
    assert result.value("term") == "6 months"
    assert result.value("expiry_date") == "2025-10-31"
    assert result.value("governing_law") == "France"
    assert result.value("total_value") == 9600.0
    assert result.value("currency") == "EUR"


def test_english_report() -> None:
    result = extract_document(english_report())
    assert result.document_type == "report"
    assert set(result.fields) <= set(REPORT_FIELDS)
    assert result.value("title") == "Regional Renewable Energy Outlook 2025"
    assert result.value("author") == "Dr. Anna Schmidt"
    assert result.value("organisation") == "Institute for Energy Transition"
    assert result.value("date") == "2025-01-15"
    assert result.value("headings") == [
        "Executive Summary",
        "1. Introduction",
        "2. Findings",
        "3. Recommendations",
    ]
    summary = result.value("summary")
    assert 2 <= summary.count(". ") + 1 <= 3
    assert "grid" in summary.lower()


def test_summary_prefers_frequent_terms_and_keeps_document_order() -> None:
    paragraphs = [
        (
            "Cats sleep most of the day in warm places. The weather was fine yesterday evening. "
            "Cats hunt mice at night and cats groom themselves often. Nobody knows why the bus "
            "was late this morning. Many cats like warm places and cats sleep on sofas.",
            False,
        )
    ]
    summary = summarise(paragraphs, n=2)
    assert summary is not None
    assert summary.startswith("Cats hunt") or summary.startswith("Cats sleep")
    assert "bus" not in summary and "weather" not in summary
    assert summarise([("Too short.", False)]) is None
