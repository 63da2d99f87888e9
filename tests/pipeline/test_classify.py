"""Document classification: invoice, contract, report or other, in English, German, French."""

from __future__ import annotations

import pytest

from bastion.pipeline.extract.classify import classify

INVOICE_EN = """ACME Widgets Ltd
INVOICE
Invoice No: INV-2025-001
Invoice date: 03/03/2025    Due date: 02/04/2025
Bill To: Foo Bar Inc.
Description  Qty  Unit price  Amount
Blue widget  2  10.00  20.00
Subtotal 20.00
VAT 20% 4.00
Total due GBP 24.00
IBAN GB29 NWBK 6016 1331 9268 19"""

INVOICE_DE = """Muster GmbH · Hauptstraße 1 · 10115 Berlin
Rechnung
Rechnungsnummer: RE-2025-17
Rechnungsdatum: 03.03.2025
Pos Bezeichnung Menge Einzelpreis Gesamt
1 Beratung 4 120,00 480,00
Nettobetrag 480,00 €
zzgl. 19 % MwSt. 91,20 €
Gesamtbetrag 571,20 €
Zahlbar innerhalb von 14 Tagen. Bankverbindung: IBAN DE89 3704 0044 0532 0130 00"""

INVOICE_FR = """Atelier Lumière SARL
FACTURE
N° de facture : F-2025-042
Date : 02/04/2025   Échéance : 02/05/2025
Désignation  Qté  Prix unitaire  Montant HT
Pose luminaires  2  70,00  140,00
Total HT 140,00 €
TVA 20 % 28,00 €
Total TTC 168,00 €"""

CONTRACT_EN = """SERVICE AGREEMENT
This Service Agreement (the "Agreement") is entered into by and between Northwind Ltd
(hereinafter the "Supplier") and Contoso Inc. (the "Customer"). The parties agree as follows.
1. Services. The Supplier shall provide the services described in Schedule A.
2. Term and Termination. This Agreement shall remain in force for twelve months.
3. Confidentiality. Each party shall keep the other party's information confidential.
4. Governing Law. This Agreement shall be governed by the laws of England and Wales.
IN WITNESS WHEREOF the parties have signed this Agreement. Signature: ________"""

CONTRACT_DE = """Dienstleistungsvertrag
Zwischen der Muster GmbH (nachfolgend „Auftragnehmer") und der Beispiel AG
(nachfolgend „Auftraggeber") wird folgender Vertrag geschlossen.
§ 1 Vertragsgegenstand. Der Auftragnehmer verpflichtet sich zur Beratung.
§ 2 Laufzeit und Kündigung. Der Vertrag hat eine Laufzeit von 24 Monaten.
§ 3 Haftung. Die Haftung ist auf Vorsatz beschränkt.
§ 4 Schlussbestimmungen. Es gilt deutsches Recht. Gerichtsstand ist Berlin.
Unterschrift Auftraggeber, Unterschrift Auftragnehmer"""

CONTRACT_FR = """CONTRAT DE PRESTATION DE SERVICES
Entre les soussignés : la société Atelier Lumière SARL, ci-après « le Prestataire », et
la société Boulangerie Martin, ci-après « le Client ». Les parties conviennent de ce qui suit.
Article 1 - Objet. Le Prestataire s'engage à réaliser l'installation de l'éclairage.
Article 2 - Durée. Le présent contrat est conclu pour une durée de douze mois.
Article 3 - Résiliation. Chaque partie peut résilier le contrat avec un préavis d'un mois.
Article 4 - Droit applicable. Le présent contrat est soumis au droit français.
Fait à Lyon, le 2 avril 2025. Signature des parties."""

REPORT_EN = """Quarterly Operations Report Q1 2024
Prepared by: Priya Raman
Executive Summary
Shipment volumes rose 8.4% on the previous quarter while on-time delivery held at 96.1%.
Two warehouse incidents caused minor delays. Costs per consignment fell after the route change.
1. Introduction
This report reviews the operations of the first quarter and discusses the outlook.
2. Findings
Volumes grew in every month. Cross-border shipments made up 38% of the total.
3. Conclusions
We recommend expanding the Hamburg cross-dock. Figure 1 shows the monthly volumes."""

REPORT_DE = """Jahresbericht 2024
Zusammenfassung
Der Umsatz stieg im Berichtsjahr um sechs Prozent. Die Zahl der Mitarbeitenden blieb stabil.
1. Einleitung
Dieser Bericht beschreibt die Entwicklung des Unternehmens im Jahr 2024.
2. Ergebnisse
Die Ergebnisse zeigen ein stabiles Wachstum in allen Regionen. Abbildung 1 zeigt den Verlauf.
3. Fazit
Das Unternehmen ist gut aufgestellt. Die Investitionen in neue Standorte werden fortgesetzt."""

REPORT_FR = """Rapport annuel 2024
Synthèse
Le chiffre d'affaires a progressé de six pour cent. Les effectifs sont restés stables.
1. Introduction
Ce rapport présente l'activité de l'entreprise au cours de l'année 2024.
2. Résultats
Les résultats montrent une croissance régulière dans toutes les régions. Tableau 1 les détaille.
3. Conclusion
L'entreprise poursuivra ses investissements dans de nouveaux sites."""

OTHER = """Dear Ms Smith,
thank you for your letter of last week. I am happy to confirm our meeting on Tuesday at the
office. Please bring the drawings for the new garden shed; we can discuss the colours then.
Kind regards, John"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (INVOICE_EN, "invoice"),
        (INVOICE_DE, "invoice"),
        (INVOICE_FR, "invoice"),
        (CONTRACT_EN, "contract"),
        (CONTRACT_DE, "contract"),
        (CONTRACT_FR, "contract"),
        (REPORT_EN, "report"),
        (REPORT_DE, "report"),
        (REPORT_FR, "report"),
        (OTHER, "other"),
        ("", "other"),
    ],
)
def test_classify(text: str, expected: str) -> None:
    result = classify(text)
    assert result.document_type == expected, result.scores
    assert 0.0 < result.confidence <= 0.99


@pytest.mark.parametrize("text", [INVOICE_EN, INVOICE_DE, CONTRACT_EN, REPORT_EN])
def test_clear_documents_get_a_high_confidence(text: str) -> None:
    assert classify(text).confidence >= 0.8


def test_the_head_weighs_more_than_the_body() -> None:
    # A contract that mentions invoices in its payment clause stays a contract.
    text = (
        CONTRACT_EN
        + "\n5. Payment. The Supplier shall invoice monthly; invoices are due in 30 days."
    )
    assert classify(text).document_type == "contract"


def test_a_close_call_gets_a_lower_confidence() -> None:
    mixed = "Invoice and agreement\nTotal 12.00\nThe parties agree. Governing law: France."
    assert classify(mixed).confidence < classify(INVOICE_EN).confidence


def test_classification_is_deterministic() -> None:
    assert classify(REPORT_FR) == classify(REPORT_FR)


@pytest.mark.parametrize(
    "title",
    ["NOTA DI CREDITO N. NC12/2024", "CREDITNOTA C2024-45", "Nota de abono Nº AB-7"],
)
def test_credit_notes_in_other_languages_are_invoices(title: str) -> None:
    text = f"{title}\nData: 23.07.2024\nImponibile -100,00\nIVA 22% -22,00\nTotale -122,00"
    assert classify(text).document_type == "invoice"
