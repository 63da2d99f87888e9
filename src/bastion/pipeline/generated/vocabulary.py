"""The business vocabulary of each language the generated invoices are printed in.

One `Language` per code (`en`, `de`, `fr`, `es`, `it`, `nl`): how it writes numbers (decimal and
group separators), dates (numeric and written out, month names), currency symbols and VAT
rates, the labels an invoice prints (each with the variants real producers use, one picked per
document), and the word pools companies, addresses and line items are made of. Each language
also names the countries its sellers come from (`Country`: VAT id and IBAN shapes, rates,
currency, register line). Data only; `formats` turns it into printed text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

__all__ = [
    "BANKS",
    "CONTACT",
    "LANGUAGES",
    "NUMBER_PATTERNS",
    "PEOPLE",
    "TRADE_NAMES",
    "Country",
    "Language",
]


@dataclass(frozen=True)
class Country:
    """Where a seller is registered: the shapes of its identifiers and its tax rates.

    Templates: `9` a digit, `A` an upper-case letter, `X` a digit or letter, `1` a digit 1-9,
    anything else itself. `iban_bban` is the IBAN after the country code and check digits.
    """

    code: str
    name: str
    currency: str
    vat_template: str  # after the two-letter prefix
    iban_bban: str
    bic_location: str
    rates: tuple[Decimal, ...]  # the standard rate first
    vat_label: tuple[str, ...]
    register: tuple[str, ...]  # `{n}` six digits, `{city}`, `{siren}`
    cities: tuple[tuple[str, str], ...]  # (postcode, city)
    address_line: str  # "{postcode} {city}" or "{city} {postcode}"


def _rates(*values: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(v) for v in values)


_GB = Country(
    "GB", "United Kingdom", "GBP", "999999999", "AAAA99999999999999", "2L", _rates("20", "5"),
    ("VAT Reg. No.", "VAT No.", "VAT registration number"),
    ("Registered in England and Wales No. 0{n}", "Company No. 0{n}"),
    (("EC1A 1BB", "London"), ("LS1 4AB", "Leeds"), ("BS1 5TR", "Bristol"),
     ("M1 2AB", "Manchester")),
    "{city} {postcode}",
)  # fmt: skip
_IE = Country(
    "IE", "Ireland", "EUR", "9999999A", "AAAA99999999999999", "2D", _rates("23", "13.5"),
    ("VAT No.", "VAT Reg. No."),
    ("Registered in Ireland No. {n}", "CRO No. {n}"),
    (("D02 X285", "Dublin 2"), ("T12 R2NC", "Cork"), ("H91 E2K3", "Galway")),
    "{city} {postcode}",
)  # fmt: skip
_DE = Country(
    "DE", "Deutschland", "EUR", "199999999", "999999999999999999", "FF", _rates("19", "7"),
    ("USt-IdNr.", "USt-ID", "Umsatzsteuer-Identifikationsnummer"),
    ("Amtsgericht {city} HRB {n}", "Registergericht: Amtsgericht {city}, HRB {n}"),
    (("20457", "Hamburg"), ("80331", "München"), ("50667", "Köln"), ("10115", "Berlin"),
     ("70173", "Stuttgart")),
    "{postcode} {city}",
)  # fmt: skip
_AT = Country(
    "AT", "Österreich", "EUR", "U99999999", "9999999999999999", "WW", _rates("20", "10", "13"),
    ("UID-Nr.", "UID"),
    ("FN {n} a, Handelsgericht {city}", "Firmenbuch FN {n} a, {city}"),
    (("1010", "Wien"), ("8010", "Graz"), ("4020", "Linz"), ("5020", "Salzburg")),
    "{postcode} {city}",
)  # fmt: skip
_FR = Country(
    "FR", "France", "EUR", "99199999999", "99999999999999999999999", "PP",
    _rates("20", "10", "5.5"),
    ("N° TVA intracommunautaire", "TVA intracom.", "N° TVA"),
    ("RCS {city} {siren}", "SIREN {siren} RCS {city}"),
    (("69001", "Lyon"), ("75011", "Paris"), ("33000", "Bordeaux"), ("13001", "Marseille"),
     ("44000", "Nantes")),
    "{postcode} {city}",
)  # fmt: skip
_ES = Country(
    "ES", "España", "EUR", "A9999999X", "99999999999999999999", "MM", _rates("21", "10", "4"),
    ("NIF-IVA", "CIF", "NIF"),
    ("Registro Mercantil de {city}, Tomo {n}, Hoja M-{n}",
     "Inscrita en el R.M. de {city}, Tomo {n}"),
    (("28013", "Madrid"), ("08001", "Barcelona"), ("46001", "Valencia"), ("41001", "Sevilla")),
    "{postcode} {city}",
)  # fmt: skip
_IT = Country(
    "IT", "Italia", "EUR", "99999999999", "A9999999999999999999999",
    "MM", _rates("22", "10", "4"),
    ("Partita IVA", "P.IVA", "P. IVA"),
    ("REA {n} - Cap. soc. € 10.000,00 i.v.", "Registro Imprese di {city} n. {n}"),
    (("20121", "Milano"), ("00184", "Roma"), ("10121", "Torino"), ("40121", "Bologna")),
    "{postcode} {city}",
)  # fmt: skip
_NL = Country(
    "NL", "Nederland", "EUR", "999999999B01", "AAAA9999999999", "2A", _rates("21", "9"),
    ("Btw-nummer", "BTW-nr.", "Btw-id"),
    ("KvK {n}99", "KvK-nummer {n}99"),
    (("1012 AB", "Amsterdam"), ("3011 AD", "Rotterdam"), ("3511 AA", "Utrecht"),
     ("2511 BT", "Den Haag")),
    "{postcode} {city}",
)  # fmt: skip


@dataclass(frozen=True)
class Language:
    """How one language prints an invoice."""

    code: str
    countries: tuple[Country, ...]
    decimal: str
    group: str
    symbol_first: bool  # "€ 12,00" / "£12.00" rather than "12,00 €"
    symbol_space: bool  # a space between symbol and number
    rate_space: bool  # "19 %" rather than "19%"
    numeric_date: str  # strftime-like: {d:02d}, {m:02d}, {y}
    long_date: str  # {day}, {month}, {y}
    first_day: str  # how the 1st of a month is written in a long date
    months: tuple[str, ...]
    labels: Mapping[str, tuple[str, ...]]
    company: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # first, second, legal
    company_order: str  # "{a} {b} {legal}"
    streets: tuple[str, ...]
    items: tuple[tuple[str, str], ...]  # (description, unit)


def _labels(**entries: str | tuple[str, ...]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({k: (v,) if isinstance(v, str) else v for k, v in entries.items()})


_EN_LABELS = _labels(
    sum="Total",  # the sum row of a table
    invoice=("INVOICE", "Invoice", "Tax Invoice", "VAT INVOICE"),
    credit_note=("CREDIT NOTE", "Credit Note"),
    number=("Invoice No.", "Invoice number", "Invoice #"),
    credit_number=("Credit note No.", "Credit note number"),
    number_short="No.",
    dated=("dated", "of"),
    date=("Invoice date", "Date", "Date of issue"),
    credit_date=("Date", "Date of issue"),
    due=("Due date", "Payment due", "Due"),
    terms=("Payment terms: {days} days net.", "Please pay within {days} days of the invoice "
           "date."),
    period=("Service period", "Period"),
    delivery=("Delivery date", "Date of supply"),
    order=("Your order", "Order No.", "PO number"),
    customer_id=("Customer No.", "Account No."),
    seller=("From", "Supplier", "Seller"),
    buyer=("Bill to", "Invoice to", "Customer"),
    name=("Name", "Company name", "Company"),
    address="Address",
    trading="trading as",
    bank=("Bank details", "Payment details"),
    bank_name=("Bank", "Bank name"),
    holder="Account name",
    description=("Description", "Item"),
    quantity=("Qty", "Quantity"),
    unit="Unit",
    unit_price=("Unit price", "Rate", "Price"),
    amount=("Amount", "Net amount", "Line total"),
    rate=("VAT %", "VAT rate"),
    base=("Net", "Taxable amount"),
    tax_col="VAT",
    lines_total=("Total of items", "Sum of lines"),
    subtotal=("Subtotal", "Net total", "Total excl. VAT"),
    subtotal_long=("Total net amount", "Total amount excluding VAT"),
    tax_row=("VAT {rate}", "VAT at {rate}", "VAT @ {rate}"),
    tax_total=("Total VAT", "VAT total"),
    tax_long=("Total VAT amount", "Total amount of VAT"),
    total=("Total", "Total incl. VAT", "Invoice total"),
    total_long=("Total gross amount", "Total amount including VAT"),
    prepaid=("Less deposit paid", "Paid in advance", "Prepayment received"),
    amount_due=("Amount due", "Balance due", "Amount payable"),
    credit_total=("Total credit", "Total"),
    charge=("Delivery charge", "Shipping and handling", "Freight"),
    allowance=("Discount", "Loyalty discount"),
    page=("Page {page} of {pages}",),
    carried=("Carried forward",),
    brought=("Brought forward",),
    printed=("Printed {date} {time} - ref. {ref}", "Filed {date} / batch {ref}"),
    thanks=("Thank you for your business.", "Many thanks for your order."),
    credit_reason=("We credit your account for the following:",
                   "Credit for returned goods, as agreed:"),
    intro=("For the work carried out we invoice you as follows:",
           "Please find below our charges for the services provided:"),
    director=("Directors", "Director"),
    phone="Tel.",
    email="Email",
    currency_note=("All amounts in {currency}", "Currency: {currency}"),
    transfer=("Please pay by bank transfer to the account below, quoting the invoice number.",),
    their_vat=("Customer VAT No.", "Your VAT No."),
    tax_number=("UTR",),
)  # fmt: skip

_DE_LABELS = _labels(
    sum="Summe",  # the sum row of a table
    invoice=("RECHNUNG", "Rechnung"),
    credit_note=("GUTSCHRIFT", "Gutschrift", "Rechnungskorrektur"),
    number=("Rechnungsnummer", "Rechnungs-Nr.", "Rechnung Nr."),
    credit_number=("Gutschriftsnummer", "Gutschrift Nr."),
    number_short="Nr.",
    dated="vom",
    date=("Rechnungsdatum", "Datum", "Belegdatum"),
    credit_date=("Datum", "Belegdatum"),
    due=("Fällig am", "Zahlungsziel", "Fälligkeitsdatum"),
    terms=("Zahlbar innerhalb von {days} Tagen ohne Abzug.", "Zahlungsbedingungen: {days} Tage "
           "netto.", "Zahlbar innerhalb {days} Tagen nach Rechnungseingang."),
    period=("Leistungszeitraum", "Abrechnungszeitraum"),
    delivery=("Lieferdatum", "Leistungsdatum"),
    order=("Ihre Bestellung", "Auftragsnummer", "Bestell-Nr."),
    customer_id=("Kundennummer", "Kunden-Nr."),
    seller=("Rechnungssteller", "Verkäufer", "Lieferant"),
    buyer=("Rechnungsempfänger", "Kunde", "Rechnungsanschrift"),
    name=("Firma", "Name", "Firmenname"),
    address=("Anschrift", "Adresse"),
    trading="Inhaber",
    bank=("Bankverbindung", "Zahlungsinformationen"),
    bank_name=("Bank", "Kreditinstitut"),
    holder="Kontoinhaber",
    description=("Bezeichnung", "Beschreibung", "Leistung"),
    quantity=("Menge", "Anz."),
    unit="Einheit",
    unit_price=("Einzelpreis", "E-Preis", "Preis/Einheit"),
    amount=("Gesamtpreis", "Betrag", "G-Preis"),
    rate=("USt.-Satz", "MwSt. %"),
    base=("Netto", "Bemessungsgrundlage"),
    tax_col=("USt.", "MwSt."),
    lines_total=("Summe Positionen", "Warenwert"),
    subtotal=("Summe netto", "Nettobetrag", "Zwischensumme"),
    subtotal_long=("Nettobetrag", "Rechnungsbetrag netto", "Gesamtbetrag netto"),
    tax_row=("zzgl. {rate} USt.", "MwSt. {rate}", "Umsatzsteuer {rate}"),
    tax_total=("Summe USt.", "MwSt. gesamt"),
    tax_long=("Umsatzsteuerbetrag", "Mehrwertsteuerbetrag", "Umsatzsteuer gesamt"),
    total=("Gesamtbetrag", "Rechnungsbetrag", "Summe brutto", "Endbetrag"),
    total_long=("Gesamtbetrag brutto", "Rechnungsendbetrag brutto", "Bruttobetrag"),
    prepaid=("abzüglich Anzahlung", "bereits gezahlt", "Abschlagszahlung erhalten"),
    amount_due=("Zahlbetrag", "Offener Betrag", "Noch zu zahlen"),
    credit_total=("Gutschriftsbetrag", "Gesamtbetrag"),
    charge=("Versandkosten", "Fracht und Verpackung", "Anfahrtspauschale"),
    allowance=("Rabatt", "Nachlass", "Treuerabatt"),
    page=("Seite {page} von {pages}", "Seite {page}/{pages}"),
    carried=("Übertrag", "Zwischensumme Übertrag"),
    brought=("Übertrag von Seite {prev}",),
    printed=("Gedruckt am {date} {time} - Beleg {ref}", "Ablage {date} / Stapel {ref}"),
    thanks=("Vielen Dank für Ihren Auftrag.", "Wir danken für Ihr Vertrauen."),
    credit_reason=("Wir schreiben Ihnen folgende Beträge gut:",
                   "Gutschrift für zurückgesandte Ware:"),
    intro=("Für unsere Leistungen berechnen wir Ihnen wie vereinbart:",
           "wir erlauben uns, folgende Leistungen in Rechnung zu stellen:"),
    director=("Geschäftsführer", "Geschäftsführerin", "Vorstand"),
    phone="Tel.",
    email="E-Mail",
    currency_note=("Alle Beträge in {currency}", "Währung: {currency}"),
    transfer=("Bitte überweisen Sie den Betrag unter Angabe der Rechnungsnummer auf folgendes "
              "Konto:",),
    their_vat=("Ihre USt-IdNr.", "USt-IdNr. des Kunden"),
    tax_number=("Steuernummer", "St.-Nr."),
)  # fmt: skip

_FR_LABELS = _labels(
    sum="Total",  # the sum row of a table
    invoice=("FACTURE", "Facture"),
    credit_note=("AVOIR", "Facture d'avoir"),
    number=("N° de facture", "Facture n°", "Numéro de facture"),
    credit_number=("N° d'avoir", "Avoir n°"),
    number_short="N°",
    dated="du",
    date=("Date de facture", "Date", "Date d'émission"),
    credit_date=("Date", "Date d'émission"),
    due=("Date d'échéance", "Échéance", "À régler avant le"),
    terms=("Paiement à {days} jours à compter de la date de facture.",
           "Conditions de règlement : {days} jours net."),
    period=("Période de prestation", "Période"),
    delivery=("Date de livraison", "Livré le"),
    order=("Votre commande", "Réf. commande", "Bon de commande"),
    customer_id=("N° client", "Code client"),
    seller=("Émetteur", "Vendeur", "Fournisseur"),
    buyer=("Client", "Facturé à", "Adresse de facturation"),
    name=("Raison sociale", "Nom", "Société"),
    address="Adresse",
    trading="enseigne",
    bank=("Coordonnées bancaires", "Règlement par virement"),
    bank_name=("Banque", "Domiciliation"),
    holder="Titulaire",
    description=("Désignation", "Description"),
    quantity=("Qté", "Quantité"),
    unit="Unité",
    unit_price=("Prix unitaire HT", "P.U. HT"),
    amount=("Montant HT", "Total HT"),
    rate=("Taux TVA", "TVA %"),
    base=("Base HT", "Montant HT"),
    tax_col=("TVA", "Montant TVA"),
    lines_total=("Total des lignes", "Sous-total articles"),
    subtotal=("Total HT", "Montant HT", "Sous-total HT"),
    subtotal_long=("Montant total hors taxes", "Total hors taxes"),
    tax_row=("TVA {rate}", "TVA à {rate}"),
    tax_total=("Total TVA", "Montant TVA"),
    tax_long=("Montant total de la TVA", "Total de la TVA"),
    total=("Total TTC", "Montant TTC"),
    total_long=("Montant total toutes taxes comprises", "Total toutes taxes comprises"),
    prepaid=("Acompte versé", "Déjà réglé", "Acompte reçu"),
    amount_due=("Net à payer", "Reste à payer", "Montant à régler"),
    credit_total=("Total avoir TTC", "Montant de l'avoir TTC"),
    charge=("Frais de port", "Frais de livraison", "Frais de déplacement"),
    allowance=("Remise", "Remise commerciale", "Escompte"),
    page=("Page {page}/{pages}", "Page {page} sur {pages}"),
    carried=("À reporter",),
    brought=("Report",),
    printed=("Imprimé le {date} à {time} - réf. {ref}", "Classé le {date} / lot {ref}"),
    thanks=("Merci de votre confiance.", "Nous vous remercions de votre commande."),
    credit_reason=("Nous portons à votre crédit les montants suivants :",
                   "Avoir pour marchandises retournées :"),
    intro=("Pour les prestations réalisées, nous vous facturons :",
           "Veuillez trouver ci-dessous le détail de nos prestations :"),
    director=("Gérant", "Président", "Gérante"),
    phone="Tél.",
    email="E-mail",
    currency_note=("Montants exprimés en {currency}", "Devise : {currency}"),
    transfer=("Règlement par virement bancaire en rappelant le numéro de facture.",),
    their_vat=("N° TVA client", "Votre n° TVA"),
    tax_number=("SIRET",),
)  # fmt: skip

_ES_LABELS = _labels(
    sum="Total",  # the sum row of a table
    invoice=("FACTURA", "Factura"),
    credit_note=("FACTURA RECTIFICATIVA", "Factura rectificativa", "NOTA DE ABONO"),
    number=("Nº de factura", "Factura nº", "Número de factura"),
    credit_number=("Nº de factura rectificativa", "Nº de abono"),
    number_short="Nº",
    dated="de fecha",
    date=("Fecha de factura", "Fecha", "Fecha de emisión"),
    credit_date=("Fecha", "Fecha de emisión"),
    due=("Fecha de vencimiento", "Vencimiento", "Vto."),
    terms=("Forma de pago: transferencia a {days} días fecha factura.",
           "Pago a {days} días desde la fecha de factura."),
    period=("Periodo de servicio", "Periodo facturado"),
    delivery=("Fecha de entrega", "Fecha de suministro"),
    order=("Su pedido", "Nº de pedido", "Ref. pedido"),
    customer_id=("Nº de cliente", "Código cliente"),
    seller=("Emisor", "Proveedor", "Datos del emisor"),
    buyer=("Cliente", "Facturar a", "Datos del cliente"),
    name=("Razón social", "Nombre", "Empresa"),
    address=("Domicilio", "Dirección"),
    trading="nombre comercial",
    bank=("Datos bancarios", "Forma de pago"),
    bank_name=("Banco", "Entidad"),
    holder="Titular",
    description=("Descripción", "Concepto"),
    quantity=("Cant.", "Cantidad", "Uds."),
    unit="Unidad",
    unit_price=("Precio unitario", "Precio"),
    amount=("Importe", "Total"),
    rate=("% IVA", "Tipo IVA"),
    base=("Base imponible", "Base"),
    tax_col=("Cuota IVA", "IVA"),
    lines_total=("Suma de conceptos", "Total conceptos"),
    subtotal=("Base imponible", "Subtotal", "Total base imponible"),
    subtotal_long=("Importe total sin IVA", "Base imponible total"),
    tax_row=("IVA {rate}", "Cuota IVA {rate}"),
    tax_total=("Total IVA", "Cuota IVA total"),
    tax_long=("Importe total del IVA", "Total cuota de IVA"),
    total=("Total factura", "TOTAL", "Importe total"),
    total_long=("Importe total con IVA", "Total factura IVA incluido"),
    prepaid=("Anticipo recibido", "Pagado a cuenta"),
    amount_due=("Total a pagar", "Importe pendiente", "Líquido a pagar"),
    credit_total=("Total rectificado", "Total abono"),
    charge=("Gastos de envío", "Portes", "Gastos de desplazamiento"),
    allowance=("Descuento", "Dto. comercial", "Descuento pronto pago"),
    page=("Página {page} de {pages}", "Pág. {page}/{pages}"),
    carried=("Suma y sigue",),
    brought=("Suma anterior",),
    printed=("Impreso el {date} {time} - ref. {ref}", "Archivado {date} / lote {ref}"),
    thanks=("Gracias por su confianza.", "Gracias por su pedido."),
    credit_reason=("Rectificamos la factura anterior por los siguientes conceptos:",
                   "Abono por mercancía devuelta:"),
    intro=("Por los servicios prestados le facturamos:",
           "Detalle de los trabajos realizados:"),
    director=("Administrador", "Administradora"),
    phone="Tel.",
    email="Email",
    currency_note=("Importes en {currency}", "Moneda: {currency}"),
    transfer=("Realice el pago por transferencia indicando el número de factura.",),
    their_vat=("NIF cliente", "CIF del cliente"),
    tax_number=("CNAE",),
)  # fmt: skip

_IT_LABELS = _labels(
    sum="Totale",  # the sum row of a table
    invoice=("FATTURA", "Fattura"),
    credit_note=("NOTA DI CREDITO", "Nota di credito"),
    number=("Numero fattura", "Fattura n.", "N. fattura"),
    credit_number=("Nota di credito n.", "Numero nota di credito"),
    number_short="n.",
    dated="del",
    date=("Data fattura", "Data", "Data documento"),
    credit_date=("Data", "Data documento"),
    due=("Scadenza", "Data scadenza", "Scadenza pagamento"),
    terms=("Pagamento: bonifico bancario a {days} gg data fattura.",
           "Termini di pagamento: {days} giorni data fattura."),
    period=("Periodo di riferimento", "Periodo di fornitura"),
    delivery=("Data di consegna", "Data DDT"),
    order=("Vs. ordine", "Rif. ordine", "Ordine n."),
    customer_id=("Codice cliente", "Cod. cliente"),
    seller=("Cedente / prestatore", "Fornitore", "Mittente"),
    buyer=("Cessionario / committente", "Cliente", "Destinatario"),
    name=("Ragione sociale", "Denominazione", "Nome"),
    address=("Indirizzo", "Sede legale"),
    trading="insegna",
    bank=("Coordinate bancarie", "Modalità di pagamento"),
    bank_name=("Banca", "Istituto"),
    holder="Intestatario",
    description=("Descrizione", "Descrizione articolo"),
    quantity=("Q.tà", "Quantità"),
    unit="U.M.",
    unit_price=("Prezzo unitario", "Prezzo"),
    amount=("Importo", "Totale"),
    rate=("Aliquota IVA", "IVA %"),
    base=("Imponibile", "Base imponibile"),
    tax_col=("Imposta", "IVA"),
    lines_total=("Totale righe", "Totale merce"),
    subtotal=("Imponibile", "Totale imponibile", "Totale netto"),
    subtotal_long=("Totale imponibile complessivo", "Importo totale imponibile"),
    tax_row=("IVA {rate}", "IVA al {rate}"),
    tax_total=("Totale IVA", "Totale imposta"),
    tax_long=("Importo totale IVA", "Totale imposta complessiva"),
    total=("Totale fattura", "Totale documento", "TOTALE"),
    total_long=("Totale complessivo IVA inclusa", "Importo totale documento"),
    prepaid=("Acconto versato", "Anticipo ricevuto"),
    amount_due=("Netto a pagare", "Totale da pagare", "Importo da pagare"),
    credit_total=("Totale nota di credito", "Totale documento"),
    charge=("Spese di trasporto", "Spese di spedizione", "Spese di incasso"),
    allowance=("Sconto", "Sconto commerciale", "Abbuono"),
    page=("Pagina {page} di {pages}", "Pag. {page}/{pages}"),
    carried=("A riportare",),
    brought=("Riporto",),
    printed=("Stampato il {date} alle {time} - rif. {ref}", "Archiviato {date} / lotto {ref}"),
    thanks=("Grazie per la fiducia accordataci.", "Grazie per il Vostro ordine."),
    credit_reason=("Vi accreditiamo i seguenti importi:", "Storno per merce resa:"),
    intro=("Per le prestazioni eseguite Vi addebitiamo:", "Dettaglio delle forniture:"),
    director=("Amministratore unico", "Legale rappresentante"),
    phone="Tel.",
    email="E-mail",
    currency_note=("Importi in {currency}", "Valuta: {currency}"),
    transfer=("Pagamento tramite bonifico bancario indicando il numero di fattura.",),
    their_vat=("P.IVA cliente", "Vs. Partita IVA"),
    tax_number=("Codice fiscale", "C.F."),
)  # fmt: skip

_NL_LABELS = _labels(
    sum="Totaal",  # the sum row of a table
    invoice=("FACTUUR", "Factuur"),
    credit_note=("CREDITNOTA", "Creditfactuur"),
    number=("Factuurnummer", "Factuurnr.", "Nummer"),
    credit_number=("Creditnotanummer", "Creditnota nr."),
    number_short="nr.",
    dated=("van", "d.d."),
    date=("Factuurdatum", "Datum"),
    credit_date=("Datum",),
    due=("Vervaldatum", "Uiterste betaaldatum"),
    terms=("Gelieve binnen {days} dagen na factuurdatum te betalen.",
           "Betalingstermijn: {days} dagen."),
    period=("Periode", "Leveringsperiode"),
    delivery=("Leverdatum", "Afleverdatum"),
    order=("Uw order", "Ordernummer", "Uw referentie"),
    customer_id=("Klantnummer", "Debiteurnummer"),
    seller=("Leverancier", "Afzender", "Verkoper"),
    buyer=("Factuuradres", "Klant", "Aan"),
    name=("Bedrijfsnaam", "Naam", "Firma"),
    address="Adres",
    trading="h.o.d.n.",
    bank=("Bankgegevens", "Betaalgegevens"),
    bank_name=("Bank",),
    holder="Ten name van",
    description=("Omschrijving", "Artikel"),
    quantity=("Aantal", "Aant."),
    unit="Eenheid",
    unit_price=("Prijs", "Stukprijs"),
    amount=("Bedrag", "Totaal"),
    rate=("Btw %", "Btw-tarief"),
    base=("Grondslag", "Bedrag excl."),
    tax_col=("Btw", "Btw-bedrag"),
    lines_total=("Totaal regels", "Subtotaal artikelen"),
    subtotal=("Subtotaal", "Totaal excl. btw", "Netto"),
    subtotal_long=("Totaalbedrag exclusief btw", "Totaal exclusief omzetbelasting"),
    tax_row=("Btw {rate}", "{rate} btw"),
    tax_total=("Totaal btw", "Btw totaal"),
    tax_long=("Btw-bedrag", "Totaalbedrag btw"),
    total=("Totaal incl. btw", "Totaal", "Factuurbedrag"),
    total_long=("Totaalbedrag inclusief btw", "Totaal inclusief omzetbelasting"),
    prepaid=("Reeds betaald", "Aanbetaling"),
    amount_due=("Te betalen", "Openstaand bedrag", "Nog te voldoen"),
    credit_total=("Totaal creditnota", "Totaal"),
    charge=("Verzendkosten", "Vrachtkosten", "Voorrijkosten"),
    allowance=("Korting", "Kortingsregeling"),
    page=("Pagina {page} van {pages}", "Blad {page}/{pages}"),
    carried=("Transport",),
    brought=("Transport van blad {prev}",),
    printed=("Afgedrukt {date} {time} - ref. {ref}", "Gearchiveerd {date} / batch {ref}"),
    thanks=("Bedankt voor uw opdracht.", "Wij danken u voor uw bestelling."),
    credit_reason=("Wij crediteren u voor het volgende:", "Creditering voor retour ontvangen "
                   "goederen:"),
    intro=("Voor de verrichte werkzaamheden brengen wij u in rekening:",
           "Hierbij factureren wij u het volgende:"),
    director=("Directeur", "Bestuurder"),
    phone="Tel.",
    email="E-mail",
    currency_note=("Bedragen in {currency}", "Valuta: {currency}"),
    transfer=("Graag overmaken onder vermelding van het factuurnummer.",),
    their_vat=("Uw btw-nummer", "Btw-nr. klant"),
    tax_number=("KvK",),
)  # fmt: skip

LANGUAGES: Mapping[str, Language] = MappingProxyType(
    {
        "en": Language(
            "en", (_GB, _IE), ".", ",", True, False, False, "{d:02d}/{m:02d}/{y}",
            "{day} {month} {y}", "1",
            ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December"),
            _EN_LABELS,
            (("Harbour", "Kestrel", "Brightwater", "Northgate", "Ashford", "Fenwick", "Oakridge",
              "Whitmore"),
             ("Print Services", "Logistics", "Consulting", "Facilities", "Software", "Joinery",
              "Catering", "Engineering"),
             ("Ltd", "Limited", "LLP", "plc")),
            "{a} {b} {legal}",
            ("{n} Market Street", "{n} Foundry Lane", "Unit {n}, Canal Wharf", "{n} Quay Street"),
            (("Consulting hours", "h"), ("Printer paper A4, box", "box"),
             ("Annual software licence", "pc"), ("Site visit", "visit"),
             ("Toner cartridge, black", "pc"), ("Project management", "h"),
             ("Office chair, ergonomic", "pc"), ("Cable installation", "m")),
        ),
        "de": Language(
            "de", (_DE, _AT), ",", ".", False, True, True, "{d:02d}.{m:02d}.{y}",
            "{day}. {month} {y}", "1",
            ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
             "Oktober", "November", "Dezember"),
            _DE_LABELS,
            (("Nordlicht", "Bergmann", "Alpenblick", "Weber", "Sonnenfeld", "Rheintal",
              "Falkenberg", "Lindner"),
             ("Software", "Druck", "Logistik", "Beratung", "Haustechnik", "Medien",
              "Maschinenbau", "Elektro"),
             ("GmbH", "AG", "GmbH & Co. KG", "UG (haftungsbeschränkt)", "KG")),
            "{a} {b} {legal}",
            ("Hafenstraße {n}", "Industrieweg {n}", "Am Markt {n}", "Lindenallee {n}"),
            (("Beratungsleistung", "Std."), ("Wartungspauschale", "Pausch."),
             ("Kopierpapier A4, Karton", "Ktn."), ("Softwarelizenz, jährlich", "Stk."),
             ("Montage vor Ort", "Std."), ("Netzwerkkabel Cat. 7", "m"),
             ("Bürostuhl, ergonomisch", "Stk."), ("Anfahrt", "km")),
        ),
        "fr": Language(
            "fr", (_FR,), ",", " ", False, True, True, "{d:02d}/{m:02d}/{y}",
            "{day} {month} {y}", "1er",
            ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre"),
            _FR_LABELS,
            (("Atelier", "Transports", "Imprimerie", "Cabinet", "Menuiserie", "Éditions",
              "Laboratoires", "Société"),
             ("Lumière", "Girard", "Dubois", "Marchand", "du Rhône", "Bellevue", "Fontaine",
              "Moreau"),
             ("SARL", "SAS", "SA", "EURL", "SASU")),
            "{a} {b} {legal}",
            ("{n} rue des Tanneurs", "{n} avenue Jean Jaurès", "{n} boulevard Voltaire",
             "{n} place Bellecour"),
            (("Prestation de conseil", "h"), ("Maintenance annuelle", "forfait"),
             ("Ramette papier A4", "u."), ("Licence logicielle", "u."),
             ("Installation sur site", "h"), ("Câble réseau", "m"),
             ("Fauteuil de bureau", "u."), ("Déplacement", "km")),
        ),
        "es": Language(
            "es", (_ES,), ",", ".", False, True, True, "{d:02d}/{m:02d}/{y}",
            "{day} de {month} de {y}", "1",
            ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
             "septiembre", "octubre", "noviembre", "diciembre"),
            _ES_LABELS,
            (("Distribuciones", "Construcciones", "Talleres", "Gráficas", "Consultoría",
              "Transportes", "Suministros", "Servicios"),
             ("Iberia", "del Sur", "Montserrat", "Costa Azul", "García", "Navarro", "Levante",
              "Alameda"),
             ("S.L.", "S.A.", "S.L.U.")),
            "{a} {b} {legal}",
            ("Calle Mayor, {n}", "Avenida de la Constitución, {n}", "Calle de Alcalá, {n}",
             "Paseo de Gracia, {n}"),
            (("Horas de consultoría", "h"), ("Mantenimiento mensual", "mes"),
             ("Papel A4, caja", "caja"), ("Licencia de software", "ud."),
             ("Instalación in situ", "h"), ("Cable de red", "m"), ("Silla de oficina", "ud."),
             ("Desplazamiento", "km")),
        ),
        "it": Language(
            "it", (_IT,), ",", ".", True, True, False, "{d:02d}/{m:02d}/{y}",
            "{day} {month} {y}", "1",
            ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
             "settembre", "ottobre", "novembre", "dicembre"),
            _IT_LABELS,
            (("Officine", "Tipografia", "Studio", "Trasporti", "Costruzioni", "Forniture",
              "Ceramiche", "Consulenze"),
             ("Rossi", "Bianchi", "Adriatica", "del Po", "Colombo", "Ferrari", "Lombarda",
              "Marino"),
             ("S.r.l.", "S.p.A.", "S.n.c.", "S.a.s.")),
            "{a} {b} {legal}",
            ("Via Roma {n}", "Corso Italia {n}", "Via Garibaldi {n}", "Piazza Duomo {n}"),
            (("Consulenza tecnica", "h"), ("Canone di manutenzione", "mese"),
             ("Carta A4, risma", "pz."), ("Licenza software annuale", "pz."),
             ("Installazione in loco", "h"), ("Cavo di rete", "m"),
             ("Sedia da ufficio", "pz."), ("Trasferta", "km")),
        ),
        "nl": Language(
            "nl", (_NL,), ",", ".", True, True, False, "{d:02d}-{m:02d}-{y}",
            "{day} {month} {y}", "1",
            ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
             "september", "oktober", "november", "december"),
            _NL_LABELS,
            (("Van Dijk", "De Vries", "Polder", "Zeeland", "Oranje", "Bakker", "Molenaar",
              "Delta"),
             ("Installatietechniek", "Drukwerk", "Logistiek", "Advies", "Bouw", "Media",
              "Techniek", "Catering"),
             ("B.V.", "N.V.", "V.O.F.")),
            "{a} {b} {legal}",
            ("Keizersgracht {n}", "Stationsplein {n}", "Kerkstraat {n}", "Havenweg {n}"),
            (("Advieswerkzaamheden", "uur"), ("Onderhoudscontract", "mnd"),
             ("Printpapier A4, doos", "doos"), ("Softwarelicentie", "st."),
             ("Installatie op locatie", "uur"), ("Netwerkkabel", "m"),
             ("Bureaustoel", "st."), ("Voorrijkosten", "km")),
        ),
    }
)  # fmt: skip

# Brand names printed above a legal name (a trade name): never part of the legal name.
TRADE_NAMES = (
    "PIXELWERK", "BLUEFIN", "QUADRA", "ALTAIR", "NOVALUX", "KORALLE", "VERDANT", "ORBITAL",
)  # fmt: skip

# Invoice and credit note number patterns: {y} year, {yy} two digits, {m} month, {n} a counter.
NUMBER_PATTERNS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = MappingProxyType({
    "en": (("INV-{y}-{n:04d}", "{n:06d}", "SI{yy}{n:05d}"), ("CN-{y}-{n:04d}", "CR{n:05d}")),
    "de": (("RE-{y}-{n:04d}", "{y}{n:05d}", "R{n:06d}"), ("GS-{y}-{n:04d}", "RK{n:06d}")),
    "fr": (("F-{y}-{n:03d}", "FA{yy}{n:05d}", "{y}{m:02d}-{n:03d}"), ("AV-{y}-{n:04d}",)),
    "es": (("{y}/{n:04d}", "FV{yy}-{n:05d}", "A{n:06d}"), ("R{y}/{n:04d}", "AB-{n:05d}")),
    "it": (("{n}/{y}", "FT{yy}-{n:04d}", "{n:05d}/PA"), ("NC{n}/{y}", "NC-{yy}-{n:04d}")),
    "nl": (("{y}-{n:04d}", "F{y}{n:04d}", "INV{n:06d}"), ("C{y}-{n:04d}", "CR{n:05d}")),
})  # fmt: skip

# The people who sign for a company (directors), per language.
PEOPLE: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "en": ("Sarah Whitfield", "James Carter", "Priya Raman"),
    "de": ("Dr. Katrin Vogel", "Michael Braun", "Anna Keller"),
    "fr": ("Claire Dubois", "Julien Moreau", "Sophie Laurent"),
    "es": ("Lucía Fernández", "Javier Ortega", "Marta Ruiz"),
    "it": ("Giulia Romano", "Marco Conti", "Paolo Greco"),
    "nl": ("Sanne de Boer", "Pieter Jansen", "Eva Visser"),
})  # fmt: skip

# Telephone country code and web domain ending per seller country.
CONTACT: Mapping[str, tuple[str, str]] = MappingProxyType({
    "GB": ("44", "co.uk"), "IE": ("353", "ie"), "DE": ("49", "de"), "AT": ("43", "at"),
    "FR": ("33", "fr"), "ES": ("34", "es"), "IT": ("39", "it"), "NL": ("31", "nl"),
})  # fmt: skip

# Banks a seller in each country keeps its account with ({city}: the seller's city).
BANKS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "GB": ("Barclays Bank", "NatWest", "Lloyds Bank"),
    "IE": ("Bank of Ireland", "AIB"),
    "DE": ("Sparkasse {city}", "Commerzbank", "Volksbank {city}"),
    "AT": ("Erste Bank", "Raiffeisenbank {city}"),
    "FR": ("Crédit Agricole", "BNP Paribas", "Société Générale"),
    "ES": ("Banco Santander", "BBVA", "CaixaBank"),
    "IT": ("Intesa Sanpaolo", "UniCredit", "Banco BPM"),
    "NL": ("ING Bank", "Rabobank", "ABN AMRO"),
})  # fmt: skip
