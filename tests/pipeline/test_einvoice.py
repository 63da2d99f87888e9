"""Embedded e-invoices: Factur-X / ZUGFeRD (CII) and XRechnung (UBL) XML attached to a PDF
are read as the authoritative source, unless text_only; hostile XML is refused."""

from __future__ import annotations

import io

import pypdfium2 as pdfium
import pytest
from reportlab.pdfgen import canvas

from bastion.pipeline.extract import extract_document
from bastion.pipeline.extract.einvoice import parse_einvoice

CII = """<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice
    xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocument>
    <ram:ID>FX-2025-001</ram:ID>
    <ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime>
      <udt:DateTimeString format="102">20250303</udt:DateTimeString>
    </ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:SpecifiedTradeProduct><ram:Name>Softwarelizenz</ram:Name></ram:SpecifiedTradeProduct>
      <ram:SpecifiedLineTradeAgreement>
        <ram:NetPriceProductTradePrice>
          <ram:ChargeAmount>240.00</ram:ChargeAmount>
        </ram:NetPriceProductTradePrice>
      </ram:SpecifiedLineTradeAgreement>
      <ram:SpecifiedLineTradeDelivery>
        <ram:BilledQuantity unitCode="C62">5</ram:BilledQuantity>
      </ram:SpecifiedLineTradeDelivery>
      <ram:SpecifiedLineTradeSettlement>
        <ram:SpecifiedTradeSettlementLineMonetarySummation>
          <ram:LineTotalAmount>1200.00</ram:LineTotalAmount>
        </ram:SpecifiedTradeSettlementLineMonetarySummation>
      </ram:SpecifiedLineTradeSettlement>
    </ram:IncludedSupplyChainTradeLineItem>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:SellerTradeParty>
        <ram:Name>Muster Software GmbH</ram:Name>
        <ram:SpecifiedTaxRegistration>
          <ram:ID schemeID="FC">201/113/40209</ram:ID>
        </ram:SpecifiedTaxRegistration>
        <ram:SpecifiedTaxRegistration>
          <ram:ID schemeID="VA">DE123456789</ram:ID>
        </ram:SpecifiedTaxRegistration>
      </ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>Bergmann &amp; Söhne KG</ram:Name></ram:BuyerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradeSettlementPaymentMeans>
        <ram:TypeCode>58</ram:TypeCode>
        <ram:PayeePartyCreditorFinancialAccount>
          <ram:IBANID>DE89 3704 0044 0532 0130 00</ram:IBANID>
        </ram:PayeePartyCreditorFinancialAccount>
        <ram:PayeeSpecifiedCreditorFinancialInstitution>
          <ram:BICID>COBADEFFXXX</ram:BICID>
        </ram:PayeeSpecifiedCreditorFinancialInstitution>
      </ram:SpecifiedTradeSettlementPaymentMeans>
      <ram:SpecifiedTradePaymentTerms>
        <ram:DueDateDateTime>
          <udt:DateTimeString format="102">20250402</udt:DateTimeString>
        </ram:DueDateDateTime>
      </ram:SpecifiedTradePaymentTerms>
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
        <ram:LineTotalAmount>1200.00</ram:LineTotalAmount>
        <ram:TaxBasisTotalAmount>1200.00</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="EUR">228.00</ram:TaxTotalAmount>
        <ram:GrandTotalAmount>1428.00</ram:GrandTotalAmount>
        <ram:DuePayableAmount>1428.00</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
""".encode()

UBL = b"""<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
    xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
    xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>
    urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0
  </cbc:CustomizationID>
  <cbc:ID>XR-77</cbc:ID>
  <cbc:IssueDate>2025-03-03</cbc:IssueDate>
  <cbc:DueDate>2025-04-02</cbc:DueDate>
  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cac:AccountingSupplierParty><cac:Party>
    <cac:PartyName><cbc:Name>Muster</cbc:Name></cac:PartyName>
    <cac:PartyTaxScheme>
      <cbc:CompanyID>DE123456789</cbc:CompanyID>
      <cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme>
    </cac:PartyTaxScheme>
    <cac:PartyLegalEntity>
      <cbc:RegistrationName>Muster Software GmbH</cbc:RegistrationName>
    </cac:PartyLegalEntity>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party>
    <cac:PartyLegalEntity>
      <cbc:RegistrationName>Stadtverwaltung Musterstadt</cbc:RegistrationName>
    </cac:PartyLegalEntity>
  </cac:Party></cac:AccountingCustomerParty>
  <cac:PaymentMeans>
    <cbc:PaymentMeansCode>58</cbc:PaymentMeansCode>
    <cac:PayeeFinancialAccount>
      <cbc:ID>DE89370400440532013000</cbc:ID>
      <cac:FinancialInstitutionBranch><cbc:ID>COBADEFFXXX</cbc:ID></cac:FinancialInstitutionBranch>
    </cac:PayeeFinancialAccount>
  </cac:PaymentMeans>
  <cac:TaxTotal><cbc:TaxAmount currencyID="EUR">19.00</cbc:TaxAmount></cac:TaxTotal>
  <cac:LegalMonetaryTotal>
    <cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount>
    <cbc:TaxExclusiveAmount currencyID="EUR">100.00</cbc:TaxExclusiveAmount>
    <cbc:TaxInclusiveAmount currencyID="EUR">119.00</cbc:TaxInclusiveAmount>
    <cbc:PayableAmount currencyID="EUR">119.00</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
  <cac:InvoiceLine>
    <cbc:ID>1</cbc:ID>
    <cbc:InvoicedQuantity unitCode="HUR">2</cbc:InvoicedQuantity>
    <cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount>
    <cac:Item><cbc:Name>Beratung</cbc:Name></cac:Item>
    <cac:Price><cbc:PriceAmount currencyID="EUR">50.00</cbc:PriceAmount></cac:Price>
  </cac:InvoiceLine>
</Invoice>
"""

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:x"><rsm:ExchangedDocument>&lol2;</rsm:ExchangedDocument>
</rsm:CrossIndustryInvoice>
"""


def invoice_pdf(attachments: dict[str, bytes]) -> bytes:
    """A one-page text invoice (number TXT-1, total 1428.00), with files attached."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.setFont("Helvetica", 10)
    for k, line in enumerate(
        ["Muster Software GmbH", "RECHNUNG", "Rechnungsnummer: TXT-1", "Gesamtbetrag 1.428,00 EUR"]
    ):
        c.drawString(50, 780 - 16 * k, line)
    c.save()
    pdf = pdfium.PdfDocument(buf.getvalue())
    try:
        for name, data in attachments.items():
            pdf.new_attachment(name).set_data(data)
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()
    finally:
        pdf.close()


def test_parse_cii() -> None:
    fields = parse_einvoice(CII)
    assert fields is not None
    values = {name: f.value for name, f in fields.items()}
    assert values == {
        "invoice_number": "FX-2025-001",
        "issue_date": "2025-03-03",
        "due_date": "2025-04-02",
        "issuer": "Muster Software GmbH",
        "customer": "Bergmann & Söhne KG",
        "vat_id": "DE123456789",
        "currency": "EUR",
        "subtotal": 1200.0,
        "tax": 228.0,
        "total": 1428.0,
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
        "line_items": [
            {
                "description": "Softwarelizenz",
                "quantity": 5.0,
                "unit_price": 240.0,
                "amount": 1200.0,
            }
        ],
    }
    assert all(f.confidence == 1.0 for f in fields.values())


def test_parse_ubl() -> None:
    fields = parse_einvoice(UBL)
    assert fields is not None
    values = {name: f.value for name, f in fields.items()}
    assert values["invoice_number"] == "XR-77"
    assert values["issuer"] == "Muster Software GmbH"
    assert values["customer"] == "Stadtverwaltung Musterstadt"
    assert (values["subtotal"], values["tax"], values["total"]) == (100.0, 19.0, 119.0)
    assert values["iban"] == "DE89370400440532013000"
    assert values["bic"] == "COBADEFFXXX"
    assert values["line_items"] == [
        {"description": "Beratung", "quantity": 2.0, "unit_price": 50.0, "amount": 100.0}
    ]


@pytest.mark.parametrize("xml", [BOMB, b"<not xml", b"<html><body/></html>"])
def test_unreadable_or_hostile_xml_is_refused(xml: bytes) -> None:
    assert parse_einvoice(xml) is None


@pytest.mark.parametrize("name", ["factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml"])
def test_embedded_xml_is_authoritative(name: str) -> None:
    data = invoice_pdf({name: CII if name != "xrechnung.xml" else UBL})
    result = extract_document(data)
    assert result.source == "einvoice"
    assert result.document_type == "invoice"
    assert result.confidence == 1.0
    expected_number = "XR-77" if name == "xrechnung.xml" else "FX-2025-001"
    assert result.value("invoice_number") == expected_number
    assert result.fields["invoice_number"].confidence == 1.0
    # The page text disagrees on the number: a finding says so.
    assert [f.field for f in result.findings] == ["invoice_number"] + (
        ["total"] if name == "xrechnung.xml" else []
    )


def test_text_only_ignores_the_xml() -> None:
    data = invoice_pdf({"factur-x.xml": CII})
    result = extract_document(data, text_only=True)
    assert result.source == "text"
    assert result.value("invoice_number") == "TXT-1"
    assert result.value("total") == 1428.0


def test_hostile_or_unrelated_attachments_fall_back_to_the_text() -> None:
    for attachments in ({"factur-x.xml": BOMB}, {"notes.txt": b"hello"}, {"other.xml": b"<a/>"}):
        result = extract_document(invoice_pdf(attachments))
        assert result.source == "text"
        assert result.value("invoice_number") == "TXT-1"


def test_an_xml_invoice_under_another_name_is_found() -> None:
    result = extract_document(invoice_pdf({"invoice-data.xml": CII}))
    assert result.source == "einvoice"
    assert result.value("total") == 1428.0
