"""Invoice fields from page text: generic label/value heuristics, no per-issuer templates.

Each field is looked for next to the labels that name it (multilingual vocabularies: English,
German, French, Spanish, Polish, Italian, Dutch), then checked by type (a date, an amount, an
IBAN that passes mod-97...). Where several candidates remain, layout and arithmetic decide:
the issuer sits at the top of page 1 or in the footer and not in the customer's address
block; subtotal + tax = total picks among candidate amounts; line items are read under a
table header, column by column, and the sum of their amounts backs the subtotal.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from itertools import combinations

from bastion.business_ids import (
    COUNTRY_CODES,
    IBAN_LENGTHS,
    VAT_COUNTRIES,
    VAT_ID_PATTERN,
    iban_valid,
)
from bastion.pipeline.extract.alternation import NamedAlternation, named_alternation
from bastion.pipeline.extract.locale import (
    AmountMatch,
    detect_language,
    find_amounts,
    find_currencies,
    find_dates,
    first_amount_start,
    guess_dayfirst,
    guess_decimal_separator,
)
from bastion.pipeline.extract.text import Cell, Hit, Page, Row, find_labels, values_near
from bastion.pipeline.model import ExtractedField

__all__ = ["LEGAL_FORM", "extract_invoice", "normalise_name"]

_I = re.IGNORECASE
PlumberLoader = Callable[[int], Page | None]


# Every label starts a word: testing that once, before the alternation, keeps the scan fast.
_WORD_START = r"(?<![^\W\d_])(?=[^\W\d_])"


def _rx(*alternatives: str, word_start: bool = True) -> re.Pattern[str]:
    body = "|".join(f"(?:{a})" for a in alternatives)
    return re.compile(f"{_WORD_START}(?:{body})" if word_start else body, _I)


def _fast(pattern: str) -> re.Pattern[str]:
    return re.compile(f"{_WORD_START}(?:{pattern})", _I)


# ------------------------------------------------------------------------------------ labels

_INVOICE_NO = _rx(
    r"\b(?:tax\s+|commercial\s+)?invoice\s*(?:no|nr|num|number|#|id|ref(?:erence)?)\b\.?",
    r"\binvoice\s*#",
    r"\binv\.?\s*(?:no\b|nr\b|#)\.?",
    r"\b(?:bill|receipt|document|credit\s+note)\s*(?:no\b|number|#)\.?",
    r"\brechnungs?\s*-?\s*(?:nummer|nr\b|no\b)\.?",
    r"\brechnungsnr\.?",
    r"\bre\.?\s*-?\s*nr\b\.?",
    r"\b(?:beleg|gutschrift)s?\s*-?\s*(?:nummer|nr\b)\.?",
    r"(?:\bn[°ºo]|\bnum[ée]ro|\bnum\.)\s*(?:de\s+)?(?:la\s+)?facture",
    r"\bfacture\s*(?:n[°ºo]|num[ée]ro|#)\.?",
    r"\br[ée]f[ée]rence\s+(?:de\s+(?:la\s+)?)?facture\b",
    r"\bn[º°o]\.?\s*(?:de\s+)?factura\b",
    r"\bfactura\s*(?:n\.?\s?[º°o]|n[úu]mero|#)\.?",
    r"\bn[úu]mero\s+de\s+factura\b",
    r"\bnumer\s+faktury\b",
    r"\bfaktura\s*(?:vat\s*)?(?:nr\b|numer\b)\.?",
    r"\bnumero\s+(?:di\s+)?fattura\b",
    r"\bfattura\s*(?:n\b|nr\b|numero|#)\.?",
    r"\bn\.\s*fattura\b",
    r"\bfactuur\s*(?:nummer|nr\b|#)\.?",
    r"\bfactuurnummer\b",
)
_TITLE_NO = re.compile(
    r"\b(?:tax\s+)?(?:invoice|rechnung|facture|factura|fattura|faktura(?:\s+vat)?|factuur)"
    r"\s*(?:n[o°º]\b\.?|nr\b\.?|#|number|nummer|num[ée]ro|numer)?\s*[:.]?\s*",
    _I,
)
_REFERENCE_NO = _rx(
    r"\b(?:receipt|booking|reservation|confirmation|transaction)\s*(?:no\b|nr\b|number|#|id\b|"
    r"ref(?:erence)?)\.?",
    r"\b(?:quittung|beleg|buchung)s?\s*-?\s*(?:nr\b|nummer)\.?",
    r"\b(?:re[çc]u|r[ée]servation)\s*n[°ºo]\.?",
    r"\b(?:document|reference|ref)\s*(?:no\b|nr\b|number|#|id\b)\.?",
)
_ISSUE_DATE = _rx(
    r"\binvoice\s*date\b",
    r"\bdate\s+of\s+(?:invoice|issue)\b",
    r"\b(?:issue|issuing|billing|bill|invoicing)\s*date\b",
    r"\bdate\s+(?:issued|invoiced)\b",
    r"\bissued\s*(?:on|date)?\s*:",
    r"\binvoice\s+dated\b",
    r"\btax\s+point\b",
    r"\brechnungsdatum\b",
    r"\bausstellungsdatum\b",
    r"\bbelegdatum\b",
    r"\bdate\s+(?:de\s+(?:la\s+)?)?facture\b",
    r"\bdate\s+d['\u2019][ée]mission\b",
    r"\bfactur[ée]e?\s+le\b",
    r"\bfecha\s+(?:de\s+)?(?:la\s+)?(?:factura|emisi[óo]n|expedici[óo]n)\b",
    r"\bdata\s+(?:wystawienia|faktury)\b",
    r"\bdata\s+(?:della\s+)?fattura\b",
    r"\bfactuurdatum\b",
)
_DATED = _fast(r"\b(?:vom|du|dated|del|z\s+dnia|van)\b")
_GENERIC_DATE = _fast(r"(?<![\w-])(?:date|datum|fecha|data|dated)(?![\w-])")
_NOT_ISSUE = _fast(
    r"due|order|deliver|ship|service|payment|start|end|from|until|period|expir|birth|check|"
    r"book|travel|arriv|depart|valid|print|value|bestell|liefer|leistung|f[äa]llig|zahl|"
    r"livraison|commande|[ée]ch[ée]ance|paiement|r[èe]glement|vencim|entrega|pedido|pago|"
    r"dostaw|sprzeda|p[łl]atno|scadenza|consegna|ordine|levering|verval|betaal"
)
_DUE_DATE = _rx(
    r"\bdue\s*date\b",
    r"\bdate\s+due\b",
    r"\bpayment\s+due(?:\s+date)?\b",
    r"\bdue\s+(?:by|on)\b",
    r"\bpay(?:able)?\s+(?:by|before)\b",
    r"\bpayment\s+(?:date|deadline)\b",
    r"\bdue\s*:",
    r"\bf[äa]llig(?:keit|keitsdatum)?(?:\s+am)?\b",
    r"\bzahlbar\s+(?:bis|sp[äa]testens)(?:\s+(?:zum|am))?\b",
    r"\bzahlungs(?:ziel|frist|termin)\b",
    r"\b(?:date\s+d['\u2019])?[ée]ch[ée]ance\b",
    r"\b[àa]\s+(?:payer|r[ée]gler)\s+(?:avant\s+le|au\s+plus\s+tard\s+le)\b",
    r"\bpayable\s+(?:avant\s+)?le\b",
    r"\bdate\s+(?:limite\s+)?de\s+(?:paiement|r[èe]glement)\b",
    r"\b(?:fecha\s+de\s+)?vencimiento\b",
    r"\btermin\s+p[łl]atno[śs]ci\b",
    r"\b(?:data\s+(?:di\s+)?)?scadenza\b",
    r"\bvervaldatum\b",
    r"\buiterste\s+betaaldatum\b",
)
_DUE_DAYS = _rx(
    r"\b(?:within|in)\s+(?P<d1>\d{1,3})\s+days\b",
    r"\bnet\s*(?P<d2>\d{1,3})\b",
    r"\b(?P<d3>\d{1,3})\s+days\s+net\b",
    r"\binnerhalb\s+(?:von\s+)?(?P<d4>\d{1,3})\s+tagen\b",
    r"\b(?P<d5>\d{1,3})\s+tage\s+netto\b",
    r"\b(?:[àa]|sous)\s+(?P<d6>\d{1,3})\s+jours\b",
    r"\b(?P<d7>\d{1,3})\s+d[íi]as\b",
    r"\b(?P<d8>\d{1,3})\s+dni\b",
    r"\b(?P<d9>\d{1,3})\s+giorni\b",
    r"\bbinnen\s+(?P<d10>\d{1,3})\s+dagen\b",
    word_start=False,
)
_CUSTOMER = _rx(
    r"\b(?:bill(?:ed)?|invoice[d]?|sold|charged)\s+to\b\s*:?",
    r"\bcustomer(?:\s+(?:name|address|details))?\s*:",
    r"(?<![^\t\n\x00])customer(?![^\t\n\x00])",
    r"\bclient(?:\s+(?:name|address))?\s*:",
    r"(?<![^\t\n\x00])client(?![^\t\n\x00])",
    r"\bbuyer\s*:?",
    r"(?<![^\t\n\x00])to\s*:",
    r"\brechnungs(?:empf[äa]nger|adresse|anschrift)\b\s*:?",
    r"\bkunde\s*:",
    r"(?<![^\t\n\x00])kunde(?![^\t\n\x00])",
    r"\bempf[äa]nger\s*:?",
    r"(?<![^\t\n\x00])an\s*:",
    r"\bfactur[ée]e?\s+[àa]\b\s*:?",
    r"\badresse\s+de\s+facturation\b\s*:?",
    r"\bdestinataire\b\s*:?",
    r"\b(?:facturar\s+a|cliente)\b\s*:?",
    r"\bnabywca\b\s*:?",
    r"\bodbiorca\b\s*:?",
    r"\b(?:klant|factuuradres)\b\s*:?",
    r"\b(?:destinatario|intestatario|committente)\b\s*:?",
)
_SHIP_TO = _rx(
    r"\b(?:ship(?:ped)?|deliver(?:ed|y)?)\s+(?:to|address)\b\s*:?",
    r"\blieferadresse\b\s*:?",
    r"\blieferanschrift\b",
    r"\badresse\s+de\s+livraison\b",
    r"\blivr[ée]\s+[àa]\b",
)
_ISSUER = _rx(
    r"(?<![^\t\n\x00])from\s*:?(?![^\t\n\x00])",
    r"(?<![^\t\n\x00])from\s*:",
    r"\b(?:seller|vendor|supplier|issued\s+by|bill\s+from|invoice\s+from|payee|remit\s+to)\b"
    r"\s*:?",
    r"\b(?:verk[äa]ufer|lieferant|rechnungssteller|absender|auftragnehmer|leistungserbringer)"
    r"\b\s*:?",
    r"\b(?:[ée]metteur|vendeur|fournisseur|prestataire)\b\s*:?",
    r"\b(?:proveedor|emisor|vendedor)\b\s*:?",
    r"\b(?:sprzedawca|wystawca)\b\s*:?",
    r"\b(?:fornitore|cedente|prestatore)\b\s*:?",
    r"\b(?:leverancier|verkoper)\b\s*:?",
)
_ACCOUNT_HOLDER = _rx(
    r"\b(?:account\s+(?:holder|name)|beneficiary(?:\s+name)?|make\s+(?:all\s+)?(?:checks|cheques)"
    r"\s+payable\s+to|payable\s+to)\b\s*:?",
    r"\b(?:kontoinhaber|empf[äa]nger\s+der\s+zahlung)\b\s*:?",
    r"\b(?:titulaire(?:\s+du\s+compte)?|b[ée]n[ée]ficiaire)\b\s*:?",
    r"\b(?:titular|beneficiario)\b\s*:?",
)
_VAT_LABEL = _rx(
    r"\bvat\s*(?:reg(?:istration)?\.?\s*)?(?:id|no\b|nr\b|number|#|reg\b|registration)\.?",
    r"\bvat\s*:",
    r"\btax\s*(?:id|no\b|number|reg(?:istration)?\s*(?:no|number)?)\.?",
    r"\btva\s+intra(?:communautaire|com)?\.?",
    r"\bn[°o]\s*(?:de\s+)?tva\b(?:\s+intra(?:communautaire|com)?\.?)?",
    r"\bnum[ée]ro\s+(?:de\s+)?tva\b(?:\s+intra(?:communautaire|com)?\.?)?",
    r"\bidentifiant\s+tva\b",
    r"\bust\.?\s*-?\s*id(?:ent)?\.?\s*-?\s*(?:nr|no)?\.?",
    r"\bumsatzsteuer\s*-?\s*(?:id|identifikationsnummer)(?:\.?\s*-?\s*nr)?\.?",
    r"\bmwst\s*-?\s*(?:nr|nummer)\.?",
    r"\buid\s*-?\s*(?:nr|nummer)?\.?",
    r"\b(?:nif|cif|nie|nip|gstin|abn|ein)\b\.?",
    r"\b(?:p\.?\s*iva|partita\s+iva)\b\.?",
    r"\bbtw\s*-?\s*(?:id|nr|nummer)?\b\.?",
    r"\bgst\s*(?:no\b|number|reg(?:istration)?(?:\s*no)?|in)\.?",
)
_TAX_NUMBER_LABEL = _fast(r"\bsteuer\s*-?\s*(?:nr|nummer)\b\.?|\bsteuernummer\b")
_CUSTOMER_WORDS = _fast(
    r"\b(?:customer|client|buyer|your|bill(?:ed)?\s+to|sold\s+to|kunde|kunden|ihre?|"
    r"käufer|rechnungsempf|acheteur|votre|vos|acquéreur|nabywc|comprador|cliente|klant|uw)\w*"
)

# The kinds of amount a row can hold, most specific first.
_TOTAL_STRONG = _fast(
    r"total\s*(?:amount\s*)?due|amount\s*(?:due|payable|to\s+pay)|balance\s*due|grand\s*total|"
    r"invoice\s*(?:total|amount)|total\s*(?:payable|to\s*pay|invoice)|"
    r"total\s*\(?(?:incl|inkl|including|with|gross|ttc|brutto|tax\s+incl)|"
    r"gross\s*(?:total|amount)|\bpayable\b|"
    r"gesamtbetrag|rechnungsbetrag|rechnungssumme|endbetrag|zahlbetrag|zu\s*zahlen|"
    r"gesamtsumme|bruttobetrag|summe\s*brutto|gesamt\s*brutto|\bbrutto\b|"
    r"total\s*ttc|\bttc\b|net\s*[àa]\s*payer|montant\s*(?:total|d[ûu]|[àa]\s*payer)|"
    r"reste\s*[àa]\s*payer|total\s*(?:a\s*pagar|factura)|importe\s*total|"
    r"totale\s*(?:fattura|documento|da\s*pagare)|do\s*zap[łl]aty|warto[śs][ćc]\s*brutto|"
    r"razem\s*brutto|te\s*betalen|totaal\s*(?:incl|te)"
)
_SUBTOTAL = _fast(
    r"sub\s*-?\s*tota(?:a)?l|total\s*\(?(?:net|excl|excluding|before|ht|hors|w/o|without|netto|exkl|"
    r"ohne|sans)|net\s*(?:total|amount|value|price|sum|invoice)|\bnetto(?:betrag|summe|wert)?\b|"
    r"zwischensumme|summe\s*netto|gesamt\s*netto|warenwert|nettowert|montant\s*(?:total\s*)?ht|"
    r"\bht\b|sous\s*-?\s*total|base\s*imponible|imponibile|warto[śs][ćc]\s*netto|razem\s*netto|"
    r"totaal\s*excl|amount\s*\(?(?:excl|before|without)|untaxed|taxable\s*(?:amount|value)|"
    r"\bnet\b(?!\s*\d)|excl(?:usief|usive|uding|\.)?\s*(?:btw|vat|tax|mwst|ust|tva|gst)|"
    r"\bohne\s+(?:mwst|ust)|\bhors\s+(?:taxes?|tva)|grondslag|bemessungsgrundlage|"
    r"taxable\s+base|\bbase\s+(?:ht|hors|imposable)"
)
_TAX = _fast(
    r"\b(?:vat|tax(?:es)?|gst|igst|cgst|sgst|hst|pst|mwst|ust|umsatzsteuer|mehrwertsteuer|"
    r"steuer|tva|iva|btw|podatek)\b(?![\s\-.]*(?:id|no\b|nr|number|reg|identif|intra|n°|code|"
    r"registration|#|in\b|nummer|ident))"
)
_TOTAL_WEAK = _fast(
    r"\btotal\b|\bsumme\b|\bgesamt\b|\btotale\b|\brazem\b|\btotaal\b|\bimporte\b|\bsum\b|"
    r"\bamount\b|\bbetrag\b|\bmontant\b"
)
_SKIP_AMOUNT_ROW = _fast(
    r"\b(?:übertrag|carried\s+forward|brought\s+forward|report|[àa]\s+reporter|paid|bezahlt|"
    r"pay[ée]|deposit|anzahlung|acompte|previous\s+balance|discount|rabatt|remise|skonto|"
    r"shipping|versand|port|frais)\b"
)

# Line-item table header vocabulary.
_COL_DESC = re.compile(
    r"^(?:item\s+)?(?:description|desc\.?|items?|article|articles|product|products|service|"
    r"services|details|particulars|activity|name|designation|d[ée]signation|libell[ée]|"
    r"produit|prestations?|bezeichnung|beschreibung|artikel(?:bezeichnung)?|leistung(?:en)?|"
    r"produkt|descripci[óo]n|concepto|art[íi]culo|descrizione|articolo|nazwa(?:\s+\w+)?|"
    r"omschrijving|artikelomschrijving|title)\b",
    _I,
)
_COL_QTY = re.compile(
    r"^(?:qty|quantity|qt[ée]|quantit[ée]|qte|\w*menge|anzahl|anz\.?|stk\.?|cantidad|cant\.?|"
    r"quantit[àa]|q\.t[àa]|ilo[śs][ćc]|aantal|hoeveelheid|nombre|hours|hrs|units|pcs|nos\.?|"
    r"no\.\s*of)\b",
    _I,
)
_COL_UNIT = re.compile(
    r"^(?:unit\s*(?:price|cost|rate)|price(?:\s*/\s*unit|\s+per\s+unit|\s+each)?|rate|each|"
    r"\w*-?preis(?:\s*/\s*einheit)?|e-?preis|ep\b|prix\s*(?:unitaire|u\.?)|"
    r"p\.?\s*u\.?|pu\b|precio(?:\s+unitario)?|prezzo(?:\s+unitario)?|cena(?:\s+\w+)?|"
    r"\w*prijs(?:\s+per\s+stuk)?|tarif)",
    _I,
)
_COL_AMOUNT = re.compile(
    r"^(?:amount|line\s*total|total(?:\s*price|\s*ht|\s*net)?|net\s*amount|subtotal|sum|"
    r"ext(?:ended|\.)?\s*price|\w*betrag|gesamt(?:preis)?|\w*summe|montant(?:\s*ht)?|"
    r"importe|importo|warto[śs][ćc](?:\s+\w+)?|\w*bedrag|totaal|price\s*total|value)",
    _I,
)
_COL_SKIP = re.compile(
    r"^(?:vat|tax|mwst|ust|tva|iva|gst|btw|pos\.?|#|no\.?|nr\.?|line|position|sku|code|ref\.?|"
    r"r[ée]f[ée]rence|c[óo]digo|art\.?\s*-?\s*nr\.?|item\s*(?:no|#|code)|unit|uom|einheit|"
    r"unit[ée]|unidad|jm|disc(?:ount)?\.?|rabatt|remise|%)",
    _I,
)

LEGAL_FORM = (
    r"GmbH\s*&\s*Co\.?\s*KG(?:aA)?|gGmbH|GmbH|mbH|AG|KGaA|KG|OHG|GbR|"
    r"UG(?:\s*\(haftungsbeschr[äa]nkt\))?|e\.\s?K\.|e\.\s?V\.|Inc\.?|Incorporated|LLC|L\.L\.C\.|"
    r"Ltd\.?|Limited|PLC|plc|LLP|L\.P\.|Corp\.?|Corporation|Co\.|Company|SARL|S\.A\.R\.L\.|"
    r"SASU|SAS|S\.A\.S\.|EURL|SNC|SCI|S\.A\.|SA|SE|B\.V\.|BV|N\.V\.|NV|S\.L\.U\.|S\.L\.|SL|"
    r"S\.r\.l\.|Srl|SRL|S\.p\.A\.|SpA|Sp\.\s*z\s*o\.\s*o\.|sp\.\s*z\s*o\.\s*o\.|S\.C\.|Oyj|Oy|"
    r"AB|A/S|AS|ApS|Pty\.?\s*Ltd\.?|Pvt\.?\s*Ltd\.?|Private\s+Limited|K\.K\."
)


def _by_first_letter(alternation: str) -> str:
    """A case-sensitive alternation of patterns that each start with a literal letter (and have
    no "|" inside), with the alternatives grouped under their first letter: `Ab|B|Ac` becomes
    `A(?:b|c)|B(?:)`. It matches what the original matches (alternatives with different first
    letters never match at the same place, and each group keeps its order), but the regex
    engine tries a few letters at each position instead of every alternative."""
    groups: dict[str, list[str]] = {}
    for alternative in alternation.split("|"):
        assert alternative[:1].isalpha(), alternative
        groups.setdefault(alternative[0], []).append(alternative[1:])
    return "|".join(f"{first}(?:{'|'.join(rests)})" for first, rests in groups.items())


_FORM_RE = re.compile(
    rf"(?:{_by_first_letter(LEGAL_FORM)})(?=$|[\s,;·|•)\]/\u2013\u2014-]|\.(?:\s|$))"
)
_TITLE_WORDS = re.compile(
    r"^(?:(?:tax|commercial|pro[\s-]?forma|vat|sales)\s+)?(?:invoice|rechnung|facture|factura|"
    r"fattura|faktura(?:\s+vat)?|factuur|credit\s+note|gutschrift|avoir|receipt|quittung|bill|"
    r"statement|original|copy|kopie|duplicate|page|seite)\b",
    _I,
)
_SENDER_SEP = re.compile(r"\s*[·•|]\s*|\s+[\u2013\u2014-]\s+")
_SENDER_SEP_CHAR = re.compile(r"[·•|\u2013\u2014-]")
_POSTCODE = re.compile(
    r"(?<![\d.,/])(?:\d{4,5}|\d{2}-\d{3}|\d{3}\s\d{2})(?![\d.,/])|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b"
)
_DOMAIN_RE = re.compile(r"(?:@|\bwww\.)([a-z0-9][a-z0-9-]{1,40})\.[a-z]{2,}", _I)
_GENERIC_DOMAINS = frozenset(
    [
        "gmail",
        "googlemail",
        "yahoo",
        "hotmail",
        "outlook",
        "live",
        "gmx",
        "web",
        "t-online",
        "aol",
        "icloud",
        "orange",
        "free",
        "wanadoo",
        "laposte",
        "sfr",
        "protonmail",
        "mail",
        "example",
    ]
)
_NAME_STOP = re.compile(r"\s*(?:,|\s{2,}|\t|·|•|\|)\s*")

# --------------------------------------------------------------------------------- identifiers

# "\b" then a capital, written as a capital then a lookbehind: see _VAT_HINT.
_IBAN_RE = re.compile(r"([A-Z](?<!\w[A-Z])[A-Z]\d{2}(?:[ ]?[A-Z0-9]){10,30})")
_BIC_LABEL = _fast(
    r"\b(?:bic|swift)(?:\s*[/-]?\s*(?:swift|bic))?(?:\s*-?\s*code)?\b\s*(?:\([^)]*\))?\s*[:.]?"
)
_BIC_RE = re.compile(r"\b([A-Z]{4}(?P<cc>[A-Z]{2})[A-Z0-9]{2}(?:[A-Z0-9]{3})?)\b")
# The country code comes first and the "not after a capital" test after it (the lookbehind spans
# the code): a pattern that starts with letters lets the regex engine skip ahead to candidates.
_VAT_HINT = re.compile(rf"(?:{'|'.join(sorted(VAT_COUNTRIES))})(?<![A-Z]..)[ .\-]?[0-9A-Z]")
_VAT_TOKEN_RE = re.compile(r"\b(?:[A-Z]{2,3}[ .\-]?)(?:[0-9A-Z]{1,12}[ .\-]?){1,6}")
_GSTIN_RE = re.compile(r"\b\d{2}[A-Z]{5}\d{4}[A-Z][1-9A-Z]Z[0-9A-Z]\b")
_SEPARATORS = re.compile(r"[ .\-]")
_INVNO_TOKEN = re.compile(r"^[#№]?\s*([A-Za-z0-9][A-Za-z0-9\-/_.:]*[A-Za-z0-9]|\d)")
_HAS_DIGIT = re.compile(r"\d")
_WORDS = re.compile(r"[^\W\d_]{2,}")
_YEAR_LIKE = re.compile(r"^(?:19|20)\d{2}$")


_LEGAL_STRIP = re.compile(rf"(?:^|[\s,])(?:{LEGAL_FORM})(?=$|[\s,.])", _I)
_PUNCT = re.compile(r"[^\w\s]")


@lru_cache(maxsize=4096)
def normalise_name(name: str) -> str:
    """Lowercase, legal forms and punctuation removed: for comparing company names."""
    text = _LEGAL_STRIP.sub(" ", name)
    text = _PUNCT.sub(" ", text.lower())
    return " ".join(text.split())


# ------------------------------------------------------------------------------------ context


@dataclass(slots=True)
class _Candidate:
    value: object
    score: float
    page: int  # 1-based
    where: tuple[int, int, int] = (-1, -1, -1)  # page index, row, cell


@dataclass(slots=True)
class _Doc:
    pages: list[Page]
    text: str
    language: str
    decimal: str | None
    dayfirst: bool
    customer_cells: set[tuple[int, int, int]] = field(default_factory=set)
    item_rows: set[tuple[int, int]] = field(default_factory=set)
    sender: tuple[int, str] | None = None
    sender_done: bool = False
    labels: dict[str, list[Hit]] | None = None
    _lower: str | None = None
    currencies: list[tuple[str, int, int]] | None = None  # of the whole text, one page only

    def cell(self, pi: int, ri: int, ci: int) -> Cell:
        return self.pages[pi].rows[ri].cells[ci]

    @property
    def lower(self) -> str:
        """The text in lower case (computed once)."""
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower


def _field(c: _Candidate, confidence: float | None = None) -> ExtractedField:
    conf = c.score if confidence is None else confidence
    return ExtractedField(
        value=c.value, confidence=round(max(0.05, min(conf, 1.0)), 3), page=c.page
    )


def _best(cands: Iterable[_Candidate]) -> _Candidate | None:
    best: _Candidate | None = None
    for c in cands:
        if best is None or c.score > best.score or (c.score == best.score and c.page < best.page):
            best = c
    return best


# ------------------------------------------------------------------------------ label index

# Every label vocabulary in one alternation, most specific first: one scan of each page finds
# all labels (at a given position the first vocabulary that matches takes it).
_LABEL_ORDER = (
    ("invoice_number", _INVOICE_NO),
    ("due_date", _DUE_DATE),
    ("issue_date", _ISSUE_DATE),
    ("vat", _VAT_LABEL),
    ("tax_number", _TAX_NUMBER_LABEL),
    ("bic", _BIC_LABEL),
    ("customer", _CUSTOMER),
    ("ship_to", _SHIP_TO),
    ("issuer", _ISSUER),
    ("holder", _ACCOUNT_HOLDER),
    ("date", _GENERIC_DATE),
)
_LABEL_NAMES = {id(pattern): name for name, pattern in _LABEL_ORDER}


def _body(pattern: re.Pattern[str]) -> str:
    source = pattern.pattern
    return source[len(_WORD_START) :] if source.startswith(_WORD_START) else source


def _combine(named: tuple[tuple[str, re.Pattern[str]], ...]) -> NamedAlternation:
    """One alternation of named vocabularies, for text already in lower case.

    Case-sensitive and without a word boundary before each alternative (the word-start test
    comes once, first), and dispatched on each alternative's first letter: several times faster
    than the case-insensitive patterns one by one.
    """
    parts = []
    for name, pattern in named:
        body = re.sub(r"(^|\||\(\?:)\\b", r"\1", _body(pattern))
        assert not re.search(r"[A-Z]", re.sub(r"\\.", "", body)), f"{name}: upper case"
        parts.append((name, body))
    return named_alternation(_WORD_START, parts)


_LABELS = _combine(_LABEL_ORDER)


def _index_labels(pages: list[Page]) -> dict[str, list[Hit]]:
    """Every label of `pages`, by vocabulary: the first of each vocabulary in each cell."""
    out: dict[str, list[Hit]] = defaultdict(list)
    for pi, page in enumerate(pages):
        if not page.text:
            continue
        starts = _row_starts(page)
        seen: set[tuple[str, int, int]] = set()
        # Rows joined by NUL, which no label pattern matches (not even as whitespace).
        scan = "\x00".join(r.text for r in page.rows)
        lower = scan.lower()
        if len(lower) != len(scan):  # a rare character whose lower case is longer
            lower = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in scan)
        for m in _LABELS.pattern.finditer(lower):
            name = _LABELS.name(m)
            label = m.group(0).rstrip()
            if name is None:
                continue
            ri = bisect.bisect_right(starts, m.start()) - 1
            row = page.rows[ri]
            start = m.start() - starts[ri]
            end = start + len(label)
            # The cell holding the end of the label ("Invoice<TAB>No." ends in the second).
            offset = 0
            for ci, cell in enumerate(row.cells):
                cell_end = offset + len(cell.text)
                if end <= cell_end or ci == len(row.cells) - 1:
                    if (name, ri, ci) not in seen:
                        seen.add((name, ri, ci))
                        out[name].append(Hit(pi, ri, ci, max(0, start - offset), end - offset))
                    break
                offset = cell_end + 1
    return out


def _hits(doc: _Doc, pattern: re.Pattern[str]) -> list[Hit]:
    if doc.labels is None:
        doc.labels = _index_labels(doc.pages)
    return doc.labels.get(_LABEL_NAMES[id(pattern)], [])


# ------------------------------------------------------------------------------ simple values


@lru_cache(maxsize=4096)
def _parse_invoice_number(text: str) -> str | None:
    text = text.strip()
    text = re.sub(r"^(?:n[o°º]\b\.?|nr\b\.?|number|nummer|num[ée]ro|#|:)\s*", "", text, flags=_I)
    m = _INVNO_TOKEN.match(text)
    if not m:
        return None
    token = m.group(1).rstrip(".:/-")
    if not _HAS_DIGIT.search(token) or len(token) > 30 or "@" in token:
        return None
    if find_dates(token) or _YEAR_LIKE.match(token):
        return None
    # A token of the shape "1.234,56" is an amount, not a number.
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})*[.,]\d{2}", token):
        return None
    return token


def _invoice_number(doc: _Doc) -> _Candidate | None:
    cands: list[_Candidate] = []
    for hit in _hits(doc, _INVOICE_NO):
        for text, score, where in values_near(doc.pages, hit):
            value = _parse_invoice_number(text)
            if value:
                cands.append(_Candidate(value, 0.92 * score, hit.page + 1, _loc(where)))
                break
    if cands:
        return _best(cands)
    # "INVOICE 2025-0042" / "Rechnung Nr. 123" / "Facture N° F-12" in a title.
    page = doc.pages[0]
    for ri, row in enumerate(page.rows[:40]):
        for ci, cell in enumerate(row.cells):
            m = _TITLE_NO.search(cell.text)
            if not m:
                continue
            rest = cell.text[m.end() :]
            after_word = _WORDS.match(rest.strip())
            if after_word and after_word.group(0).lower() in {"date", "datum", "fecha", "data"}:
                continue
            value = _parse_invoice_number(rest) if rest.strip() else None
            if value is None and ci + 1 < len(row.cells) and not rest.strip():
                value = _parse_invoice_number(row.cells[ci + 1].text)
            if value is None and not rest.strip():
                # A column "Invoice" in a header row, or an "INVOICE" title: its value under it
                # (the first cell below that overlaps it, a line or two down).
                under = _cell_under(page, ri, cell)
                value = _parse_invoice_number(under.text) if under else None
            if value:
                cands.append(_Candidate(value, 0.7, 1, (0, ri, ci)))
    if cands:
        return _best(cands)
    # No invoice number: a receipt or booking reference stands for it.
    for hit in find_labels(doc.pages[:1], _REFERENCE_NO, first=True):
        for text, score, where in values_near(doc.pages, hit):
            value = _parse_invoice_number(text)
            if value:
                cands.append(_Candidate(value, 0.5 * score, hit.page + 1, _loc(where)))
                break
    return _best(cands)


def _cell_under(page: Page, ri: int, cell: Cell, rows: int = 3) -> Cell | None:
    """The first cell below `cell` (row `ri`) that overlaps it horizontally, at most `rows` rows
    down and with no wide vertical gap before it."""
    last = page.rows[ri].bottom
    em = max(page.rows[ri].height, 6.0)
    for below in page.rows[ri + 1 : ri + 1 + rows]:
        if below.top - last > 2.5 * em:
            return None
        under = next((c for c in below.cells if c.x0 < cell.x1 and c.x1 > cell.x0), None)
        if under is not None:
            return under
        last = below.bottom
    return None


def _loc(hit: Hit) -> tuple[int, int, int]:
    return (hit.page, hit.row, hit.cell)


def _date_after(doc: _Doc, pattern: re.Pattern[str], base: float) -> list[_Candidate]:
    out: list[_Candidate] = []
    for hit in _hits(doc, pattern):
        for text, score, where in values_near(doc.pages, hit):
            dates = find_dates(text[:60], doc.dayfirst)
            if dates and dates[0].start <= 25:
                out.append(_Candidate(dates[0].iso, base * score, hit.page + 1, _loc(where)))
                break
    return out


def _issue_date(doc: _Doc, number: _Candidate | None) -> _Candidate | None:
    cands = _date_after(doc, _ISSUE_DATE, 0.93)
    if cands:
        return _best(cands)
    if number is not None and number.where[0] >= 0:
        # "Rechnung Nr. 123 vom 03.03.2025", "Facture n° F12 du 03/03/2025", "No. 5 dated ...".
        pi, ri, ci = number.where
        row = doc.pages[pi].rows[ri]
        rest = " ".join(c.text for c in row.cells[ci:])
        m = _DATED.search(rest)
        if m:
            dates = find_dates(rest[m.end() : m.end() + 40], doc.dayfirst)
            if dates and dates[0].start <= 3:
                return _Candidate(dates[0].iso, 0.85, pi + 1, number.where)
    due_cells = {c.where for c in _date_after(doc, _DUE_DATE, 1.0)}
    for hit in _hits(doc, _GENERIC_DATE):
        label = doc.cell(hit.page, hit.row, hit.cell).text
        before = label[max(0, hit.start - 25) : hit.start]
        after = re.split(r"\d", label[hit.end : hit.end + 30], maxsplit=1)[0]
        if _NOT_ISSUE.search(before) or _NOT_ISSUE.search(after):
            continue
        for text, score, where in values_near(doc.pages, hit):
            dates = find_dates(text[:60], doc.dayfirst)
            if dates and dates[0].start <= 25:
                page_bias = 1.0 if hit.page == 0 else 0.8
                out = _Candidate(dates[0].iso, 0.8 * score * page_bias, hit.page + 1, _loc(where))
                cands.append(out)
                break
    if cands:
        return _best(cands)
    # No label: the first date on page 1 that is not labelled as something else.
    page = doc.pages[0]
    for ri, row in enumerate(page.rows):
        for ci, cell in enumerate(row.cells):
            if (0, ri, ci) in doc.customer_cells or (0, ri, ci) in due_cells:
                continue
            dates = find_dates(cell.text, doc.dayfirst)
            if not dates:
                continue
            before = cell.text[: dates[0].start]
            prev = row.cells[ci - 1].text if ci else ""
            if _NOT_ISSUE.search(before) or _NOT_ISSUE.search(prev):
                continue
            return _Candidate(dates[0].iso, 0.45, 1, (0, ri, ci))
    return None


def _due_date(doc: _Doc, issue: _Candidate | None) -> _Candidate | None:
    cands = _date_after(doc, _DUE_DATE, 0.92)
    if issue is not None:
        cands = [c for c in cands if str(c.value) >= str(issue.value)]
    if cands:
        return _best(cands)
    if issue is None:
        return None
    for pi, page in enumerate(doc.pages):
        m = _DUE_DAYS.search(page.text)
        if m:
            days = next(int(v) for v in m.groupdict().values() if v)
            if 0 < days <= 180:
                due = date.fromisoformat(str(issue.value)) + timedelta(days=days)
                return _Candidate(due.isoformat(), 0.6, pi + 1)
    return None


# -------------------------------------------------------------------------------- identifiers


def _ibans(doc: _Doc) -> list[_Candidate]:
    out: list[_Candidate] = []
    seen: set[str] = set()
    for pi, page in enumerate(doc.pages):
        for ri, row in enumerate(page.rows):
            if not _IBAN_RE.search(row.text):
                continue
            for ci, cell in enumerate(row.cells):
                for m in _IBAN_RE.finditer(cell.text):
                    value = _valid_iban_prefix(m.group(1))
                    if value is None or value in seen:
                        continue
                    seen.add(value)
                    score = 0.95
                    context = row.text.lower()
                    if (pi, ri, ci) in doc.customer_cells or _CUSTOMER_WORDS.search(
                        context[: context.find(m.group(1)[:4].lower()) + 1]
                    ):
                        score = 0.55
                    out.append(_Candidate(value, score, pi + 1, (pi, ri, ci)))
    return out


def _valid_iban_prefix(raw: str) -> str | None:
    """The IBAN at the start of `raw`, ending on a group boundary, when its checksum holds."""
    compact = ""
    for group in raw.split(" "):
        compact += group
        expected = IBAN_LENGTHS.get(compact[:2])
        if expected is None or len(compact) > expected:
            return None
        if len(compact) == expected:
            return compact if iban_valid(compact) else None
    return None


def _bic(doc: _Doc, iban: _Candidate | None) -> _Candidate | None:
    cands: list[_Candidate] = []
    for hit in _hits(doc, _BIC_LABEL):
        for text, score, where in values_near(doc.pages, hit):
            m = _BIC_RE.match(text.strip().replace(" ", "")[:11]) or _BIC_RE.search(text[:20])
            if m and m.group("cc") in COUNTRY_CODES:
                cands.append(_Candidate(m.group(1), 0.92 * score, hit.page + 1, _loc(where)))
                break
    if cands:
        return _best(cands)
    if iban is None:
        return None
    pi, ri, _ci = iban.where
    if pi < 0:
        return None
    row = doc.pages[pi].rows[ri]
    for m in _BIC_RE.finditer(row.text):
        token = m.group(1)
        if m.group("cc") == str(iban.value)[:2] and token != str(iban.value)[: len(token)]:
            return _Candidate(token, 0.7, pi + 1, iban.where)
    return None


def _vat_ids(doc: _Doc) -> list[_Candidate]:
    cands: list[_Candidate] = []
    labelled: set[str] = set()
    for pattern, base in ((_VAT_LABEL, 1.0), (_TAX_NUMBER_LABEL, 0.45)):
        for hit in _hits(doc, pattern):
            for text, score, where in values_near(doc.pages, hit):
                value = _vat_value(text[:40])
                if value is None:
                    continue
                strict = bool(VAT_ID_PATTERN.fullmatch(value)) or bool(_GSTIN_RE.fullmatch(value))
                conf = base * score * (0.95 if strict else 0.75)
                if _is_customer(doc, where) or _CUSTOMER_WORDS.search(
                    doc.cell(hit.page, hit.row, hit.cell).text[: hit.start]
                ):
                    conf *= 0.5
                labelled.add(value)
                cands.append(_Candidate(value, conf, hit.page + 1, _loc(where)))
                break
    for pi, page in enumerate(doc.pages):
        for ri, row in enumerate(page.rows):
            if not _VAT_HINT.search(row.text):
                continue
            for ci, cell in enumerate(row.cells):
                for value in _strict_vat_ids(cell.text):
                    if value in labelled:
                        continue
                    conf = 0.7 * (0.5 if (pi, ri, ci) in doc.customer_cells else 1.0)
                    cands.append(_Candidate(value, conf, pi + 1, (pi, ri, ci)))
    return cands


def _is_customer(doc: _Doc, where: Hit) -> bool:
    return (where.page, where.row, where.cell) in doc.customer_cells


_VAT_VALUE_RE = re.compile(r"[A-Z]{0,3}[ .\-]?[0-9][0-9A-Z .\-/]{4,20}")


def _vat_value(text: str) -> str | None:
    text = text.strip().lstrip(":#.- ")
    gst = _GSTIN_RE.search(text[:20])
    if gst:
        return gst.group(0)
    m = _VAT_VALUE_RE.match(text.upper()) if text[:2].isupper() or text[:1].isdigit() else None
    if not m:
        return None
    raw = m.group(0).strip(" .-/")
    # Stop at a gap of two spaces or a word that is not part of the identifier.
    raw = re.split(r"\s{2,}", raw)[0]
    compact = _SEPARATORS.sub("", raw).replace("/", "")
    for strict in VAT_ID_PATTERN.finditer(compact):
        if strict.start() == 0:
            return strict.group(0)
    digits = sum(ch.isdigit() for ch in compact)
    if digits < 6 or len(compact) > 16:
        return None
    return compact


@lru_cache(maxsize=4096)
def _strict_vat_ids(text: str) -> tuple[str, ...]:
    """VAT identifiers of a known national format, written with or without separators."""
    out: list[str] = []
    for m in _VAT_TOKEN_RE.finditer(text):
        token = m.group(0)
        if not _HAS_DIGIT.search(token):
            continue  # every known format has digits
        groups = [(g.start(), g.group(0)) for g in _VAT_GROUP_RE.finditer(token)]
        i = 0
        while i < len(groups):
            # The longest run of groups from here that forms a known VAT identifier.
            found = 0
            for n in range(len(groups), i, -1):
                compact = "".join(g for _start, g in groups[i:n])
                if VAT_ID_PATTERN.fullmatch(compact):
                    found = n
                    break
            start = m.start() + groups[i][0]
            if found and not _iban_at(text, start):
                out.append(compact)
                i = found
            else:
                i += 1
    return tuple(out)


_VAT_GROUP_RE = re.compile(r"[0-9A-Z]+")


def _iban_at(text: str, start: int) -> bool:
    """Whether a valid IBAN starts at `start` (its first digits look like a VAT id)."""
    window = text[start : start + 44].replace(" ", "")
    n = IBAN_LENGTHS.get(window[:2])
    return n is not None and len(window) >= n and iban_valid(window[:n])


# ----------------------------------------------------------------------------------- parties


def _customer_blocks(doc: _Doc) -> list[tuple[Hit, list[tuple[int, int, int]]]]:
    """For each customer label: the cells of the address block it introduces."""
    blocks: list[tuple[Hit, list[tuple[int, int, int]]]] = []
    for pattern in (_CUSTOMER, _SHIP_TO):
        for hit in _hits(doc, pattern):
            if hit.start > 2:
                continue  # "Réf. client :", "Your customer number"
            page = doc.pages[hit.page]
            label = page.rows[hit.row].cells[hit.cell]
            cells = [(hit.page, hit.row, hit.cell)]
            nxt = hit.cell + 1
            rest = label.text[hit.end :].strip(" :")
            if not rest and nxt < len(page.rows[hit.row].cells):
                cells.append((hit.page, hit.row, nxt))
            x0 = label.x0 - 15
            x1 = max(label.x1, label.x0 + 150)
            last = page.rows[hit.row].bottom
            em = max(page.rows[hit.row].height, 5.0)
            for ri in range(hit.row + 1, min(hit.row + 8, len(page.rows))):
                row = page.rows[ri]
                if row.top - last > 2.2 * em:
                    break
                inside = [ci for ci, c in enumerate(row.cells) if c.x0 < x1 and c.x1 > x0]
                if not inside:
                    continue
                last = row.bottom
                cells.extend((hit.page, ri, ci) for ci in inside)
            blocks.append((hit, cells))
    return blocks


@lru_cache(maxsize=4096)
def _clean_name(text: str) -> str | None:
    text = text.strip(" :;,-\u2013\u2014\t")
    text = _NAME_STOP.split(text)[0].strip(" :;,-")
    if len(text) < 2 or len(text) > 80 or not _WORDS.search(text) or ":" in text:
        return None  # "Siège social : ...": a label and its value, not a name
    has_digit = _HAS_DIGIT.search(text) is not None
    if has_digit and (not _LONG_WORD.search(text) or find_dates(text)):
        return None  # "PO2575", "SOL-24219", a date: not a name
    if _TITLE_WORDS.match(text) or _is_label(text):
        return None
    return text


_LONG_WORD = re.compile(r"[^\W\d_]{4,}")
_DATE_WORD = _fast(r"\b(?:date|fecha|data)\b|\w*datum\b")
_PARTY_LABELS = frozenset({"customer", "ship_to", "issuer"})


def _is_label(text: str) -> bool:
    """Whether `text` is or starts with a field label (then it is not a name)."""
    for m in _LABELS.pattern.finditer(text.lower()):
        name = _LABELS.name(m)
        if name in _PARTY_LABELS:
            return True  # "Bill to", "Ship to", "From" anywhere
        if m.start() <= 2 and (name != "date" or not _legal_names(text)):
            return True
    short = len(text) < 40 and len(text.split()) <= 4
    if short and _DATE_WORD.search(text) and not _legal_names(text):
        return True  # "Order date", "Bestelldatum", "Date de commande"
    if len(text) < 30:
        kind = _amount_kind(text)
        return kind is not None and not _legal_names(text)
    return False


def _sender_line(doc: _Doc) -> tuple[int, str] | None:
    """DIN 5008 letters: a small sender line "ACME GmbH · Street 1 · 12345 City" above the
    address window. Its row and the sender's name."""
    if not doc.sender_done:
        doc.sender = _find_sender_line(doc)
        doc.sender_done = True
    return doc.sender


def _find_sender_line(doc: _Doc) -> tuple[int, str] | None:
    page = doc.pages[0]
    sizes = sorted(r.height for r in page.rows) or [1.0]
    median = sizes[len(sizes) // 2]
    for ri, row in enumerate(page.rows[:30]):
        if row.top > 0.45 * (page.height or 842):
            break  # a sender line sits above the address window, not in the footer
        text = row.cells[0].text
        if not _SENDER_SEP_CHAR.search(text):
            continue  # no separator: one part
        parts = _SENDER_SEP.split(text)
        small = row.height < 0.85 * median
        if len(parts) >= 3 and (_POSTCODE.search(text) or small) and row.height <= median:
            name = _clean_name(parts[0])
            if name and not _HAS_DIGIT.search(name[:3]):
                return ri, name
    return None


def _customer(doc: _Doc, blocks: list[tuple[Hit, list[tuple[int, int, int]]]]) -> _Candidate | None:
    cands: list[_Candidate] = []
    for hit, _cells in blocks:
        is_ship = bool(_SHIP_TO.search(doc.cell(hit.page, hit.row, hit.cell).text))
        for text, score, where in values_near(doc.pages, hit, below=3, block=True):
            name = _clean_name(text)
            if name and not _HAS_DIGIT.fullmatch(name):
                base = 0.55 if is_ship else 0.85
                cands.append(_Candidate(name, base * score, hit.page + 1, _loc(where)))
                break
    if cands:
        return _best(cands)
    # A DIN 5008 letter: the address window right under the sender line.
    sender = _sender_line(doc)
    if sender:
        page = doc.pages[0]
        line = page.rows[sender[0]]
        for ri in range(sender[0] + 1, min(sender[0] + 4, len(page.rows))):
            row = page.rows[ri]
            if row.top - line.bottom > 4 * max(row.height, 6.0):
                break
            first = row.cells[0]
            if abs(first.x0 - line.x0) < 20:
                name = _clean_name(first.text)
                if name:
                    doc.customer_cells.update((0, rj, 0) for rj in range(ri, ri + 4))
                    return _Candidate(name, 0.6, 1, (0, ri, 0))
    return None


def _issuer(doc: _Doc, customer: _Candidate | None) -> _Candidate | None:
    cands: dict[str, _Candidate] = {}
    counts: Counter[str] = Counter()
    customer_key = normalise_name(str(customer.value)) if customer else ""

    def add(name: str, score: float, page: int, where: tuple[int, int, int]) -> None:
        key = normalise_name(name)
        if not key or key == customer_key:
            return
        if where in doc.customer_cells:
            score -= 0.5
        old = cands.get(key)
        if old is None or score > old.score:
            cands[key] = _Candidate(name, score, page, where)

    for pattern, base in ((_ISSUER, 0.85), (_ACCOUNT_HOLDER, 0.6)):
        for hit in _hits(doc, pattern):
            for text, score, where in values_near(doc.pages, hit, below=2, block=True):
                name = _clean_name(text)
                if name:
                    add(name, base * score, hit.page + 1, _loc(where))
                    break

    sizes = [r.height for r in doc.pages[0].rows] or [1.0]
    median = sorted(sizes)[len(sizes) // 2] or 1.0
    for pi, page in enumerate(doc.pages):
        for ri, row in enumerate(page.rows):
            if not _FORM_RE.search(row.text):
                continue
            rel_top = row.top / page.height if page.height else 0.5
            for ci, cell in enumerate(row.cells):
                for name in _legal_names(cell.text):
                    counts[normalise_name(name)] += 1
                    score = 0.5
                    if pi == 0 and rel_top < 0.25:
                        score += 0.25
                    elif rel_top > 0.85:
                        score += 0.15
                    if row.height > 1.3 * median:
                        score += 0.1
                    if len(row.text) > 90:
                        score -= 0.2
                    add(name, score, pi + 1, (pi, ri, ci))

    sender = _sender_line(doc)
    if sender:
        add(sender[1], 0.75, 1, (0, sender[0], 0))
    page = doc.pages[0]

    # The top of page 1: the first lines, a large font first, that are not a title or label.
    top_rows = [
        (ri, r) for ri, r in enumerate(page.rows[:12]) if r.top < 0.3 * (page.height or 842)
    ]
    biggest = max((r.height for _, r in top_rows), default=0.0)
    for rank, (ri, row) in enumerate(top_rows):
        for ci, cell in enumerate(row.cells[:2]):
            text = cell.text
            if (0, ri, ci) in doc.customer_cells or ":" in text or len(text) > 60:
                continue
            if _HAS_DIGIT.search(text):
                continue
            name = _clean_name(text)
            if not name or len(name) > 50:
                continue
            score = 0.42 - 0.03 * rank - 0.05 * ci
            if cell.height >= biggest * 0.95 and biggest > 1.2 * median:
                score += 0.18
            add(name, score, 1, (0, ri, ci))

    if not cands:
        return None
    stems: set[str] = set()
    if "@" in doc.text or "www." in doc.lower:  # what _DOMAIN_RE starts with
        stems = {m.group(1).lower() for m in _DOMAIN_RE.finditer(doc.text)} - _GENERIC_DOMAINS
    for key, cand in cands.items():
        cand.score += 0.06 * min(counts[key] - 1, 3) if counts[key] > 1 else 0.0
        flat = key.replace(" ", "")
        if flat and any(s.replace("-", "") in flat or flat in s.replace("-", "") for s in stems):
            cand.score += 0.12
    best = _best(cands.values())
    if best is not None:
        best.score = min(best.score, 0.95)
    return best


@lru_cache(maxsize=4096)
def _legal_names(text: str) -> tuple[str, ...]:
    """Company names ending in a legal form ("ACME Widgets GmbH", "Foo Bar S.A.") in `text`."""
    out: list[str] = []
    for m in _FORM_RE.finditer(text):
        start = m.start()
        if start < 2 or text[start - 1] not in " ,":
            continue  # a form follows a name: "GmbH" alone, or inside a word, is not one
        name = _legal_name(text, start, m.end())
        if name:
            out.append(name)
    return tuple(out)


def _legal_name(text: str, form_start: int, form_end: int) -> str | None:
    head = text[:form_start]
    # Cut at separators: the name is the part after the last one.
    cut = 0
    for sep in (" · ", " | ", " • ", ": ", " - ", "  ", "\t"):
        idx = head.rfind(sep)
        if idx >= 0 and idx + len(sep) > cut:
            cut = idx + len(sep)
    words = head[cut:].replace(", ", " ").split()[-6:]
    if not words or not any(_WORDS.fullmatch(w.strip(".,&'\u2019-")) for w in words):
        return None
    after = text[form_end:].lstrip()
    form = text[form_start:form_end]
    if len(form.rstrip(".")) <= 3 and after[:1].isupper():
        return None  # "1012 AB Amsterdam", "AG Berlin" (but "Free SAS au capital de ...")
    # Trim leading lower-case words ("from ACME GmbH", "payable to ACME Ltd").
    while words and not (words[0][0].isupper() or words[0][0].isdigit()):
        words.pop(0)
    if not words or (len(words) == 1 and words[0].lower() in {"the", "der", "die", "la", "le"}):
        return None
    name = " ".join([*words, form])
    if _TITLE_WORDS.match(name) or _CUSTOMER.search(name):
        return None
    return name


# ------------------------------------------------------------------------------------ amounts


@dataclass(slots=True)
class _Amount:
    value: float
    score: float
    page: int
    where: tuple[int, int]


_KINDS = (
    ("skip", _SKIP_AMOUNT_ROW),
    ("strong", _TOTAL_STRONG),
    ("subtotal", _SUBTOTAL),
    ("tax", _TAX),
    ("weak", _TOTAL_WEAK),
)
_KIND = _combine(_KINDS)
_KIND_RESULT = {
    "strong": ("total", 1.0),
    "subtotal": ("subtotal", 0.95),
    "tax": ("tax", 0.9),
    "weak": ("total", 0.75),
}


@lru_cache(maxsize=4096)
def _amount_kind(label: str) -> tuple[str, float] | None:
    """What amount a label announces: the most specific kind named in it wins."""
    found = {_KIND.name(m) for m in _KIND.pattern.finditer(label.lower())}
    if not found or "skip" in found:
        return None
    for name in ("strong", "subtotal", "tax", "weak"):
        if name in found:
            return _KIND_RESULT[name]
    return None


def _usable(
    amounts: list[AmountMatch], decimals_expected: bool, text: str = ""
) -> list[AmountMatch]:
    """Amounts that can be money: whole numbers only where the document has no decimals or a
    currency sign stands next to them ("Rs 1939"), and never a bare year."""
    out = []
    for a in amounts:
        if a.decimals == 0:
            near = text[max(0, a.start - 4) : a.end + 4]
            marked = bool(near) and bool(find_currencies(near))
            if not marked and (decimals_expected or _YEAR_LIKE.match(a.raw.strip())):
                continue
        out.append(a)
    return out


def _amount_candidates(doc: _Doc) -> dict[str, list[_Amount]]:
    found: dict[str, list[_Amount]] = defaultdict(list)
    decimals_expected = doc.decimal is not None

    def usable(text: str) -> list[AmountMatch]:
        return _usable(find_amounts(text, doc.decimal), decimals_expected, text)

    for pi, page in enumerate(doc.pages):
        # The last row of amount labels without amounts ("Net | VAT | Total"), for the rows of
        # values under it.
        header: tuple[int, list[tuple[Cell, str, float]]] | None = None
        for ri, row in enumerate(page.rows):
            if (pi, ri) in doc.item_rows:
                continue
            labels: list[tuple[int, str, float, int]] = []  # cell, kind, score, label end
            for ci, cell in enumerate(row.cells):
                start = first_amount_start(cell.text)
                label_text = cell.text if start is None else cell.text[:start]
                if not _WORDS.search(label_text):
                    continue
                kind_score = _amount_kind(label_text)
                if kind_score:
                    labels.append((ci, kind_score[0], kind_score[1], len(label_text)))
            if not labels:
                continue
            unvalued: list[tuple[int, str, float, int]] = []
            for idx, (ci, kind, score, end) in enumerate(labels):
                # A label owns the amounts up to the next label of the row.
                stop = labels[idx + 1][0] if idx + 1 < len(labels) else len(row.cells)
                cells = [(row.cells[ci], usable(row.cells[ci].text[end:]))]
                cells += [(c, usable(c.text)) for c in row.cells[ci + 1 : stop]]
                values = [a for _c, vals in cells for a in vals]
                if not values:
                    unvalued.append((ci, kind, score, end))
                    continue
                for k, a in enumerate(values):
                    weight = 1.0 if k == len(values) - 1 else 0.7
                    found[kind].append(_Amount(a.value, score * weight, pi + 1, (pi, ri)))
                if header is not None and ri - header[0] <= 12 and len(values) >= 2:
                    # "Total | 24.99 | 5.00 | 29.99" under "Net | VAT | Gross": by column.
                    for cell, vals in cells:
                        column = next(
                            (h for h in header[1] if h[0].x0 < cell.x1 and h[0].x1 > cell.x0), None
                        )
                        if column and vals:
                            found[column[1]].append(
                                _Amount(vals[-1].value, column[2] * 0.95, pi + 1, (pi, ri))
                            )
            if len(unvalued) >= 2 and len(unvalued) == len(labels):
                header = (ri, [(row.cells[ci], kind, score) for ci, kind, score, _e in labels])
            # Labels with no amount beside them: a header row, values in the row below.
            if unvalued and ri + 1 < len(page.rows):
                below = page.rows[ri + 1]
                for ci, kind, score, _end in unvalued:
                    label_cell = row.cells[ci]
                    for other in below.cells:
                        if other.x0 < label_cell.x1 + 10 and other.x1 > label_cell.x0 - 10:
                            vals = usable(other.text)
                            if vals:
                                found[kind].append(
                                    _Amount(vals[-1].value, score * 0.85, pi + 1, (pi, ri + 1))
                                )
                            break
    return found


def _row_starts(page: Page) -> list[int]:
    """Offset of each row in `page.text` (rows joined by newlines)."""
    starts: list[int] = []
    offset = 0
    for row in page.rows:
        starts.append(offset)
        offset += len(row.text) + 1
    return starts


def _top(cands: list[_Amount], n: int = 6) -> list[_Amount]:
    best: dict[float, _Amount] = {}
    for c in cands:
        key = round(c.value, 2)
        if key not in best or c.score > best[key].score:
            best[key] = c
    return sorted(best.values(), key=lambda c: -c.score)[:n]


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(0.015, abs(b) * 1e-6)


def _choose_amounts(
    found: dict[str, list[_Amount]], line_sum: float | None
) -> dict[str, tuple[_Amount, float]]:
    subs = _top(found.get("subtotal", []))
    taxes = _top(found.get("tax", []))
    totals = _top(found.get("total", []))
    # Several tax rows (one per rate): their sum is a candidate too.
    distinct_rows = {t.where: t for t in sorted(found.get("tax", []), key=lambda t: t.score)}
    if len(distinct_rows) >= 2:
        rows = list(distinct_rows.values())
        for k in range(2, min(len(rows), 4) + 1):
            for combo in combinations(rows, k):
                score = min(c.score for c in combo) * 0.9
                taxes.append(_Amount(sum(c.value for c in combo), score, combo[-1].page, (-1, -1)))
    best: tuple[float, _Amount | None, _Amount | None, _Amount | None, bool] | None = None
    # A labelled total is always reported, even when the arithmetic does not hold (that is
    # for validation to flag): only a document without one goes without.
    total_options: list[_Amount | None] = list(totals) if totals else [None]
    for g in total_options:
        for s in [*subs, None]:
            for t in [*taxes, None]:
                score = sum(x.score for x in (g, s, t) if x is not None)
                consistent = False
                if g and s and t:
                    if _close(s.value + t.value, g.value):
                        score += 1.5
                        consistent = True
                    else:
                        score -= 0.8
                elif g and s:
                    if _close(g.value, s.value):
                        score += 0.1
                    elif g.value < s.value:
                        score -= 0.6
                    else:
                        score -= 0.3
                elif g and t:
                    score -= 0.6 if t.value >= g.value else 0.0
                elif s and t:
                    score -= 0.6 if t.value >= s.value else 0.0
                if (s and t and s.where == t.where) or (
                    g and s and g.where == s.where and not (_close(g.value, s.value))
                ):
                    score -= 1.0
                if line_sum is not None:
                    if s and _close(line_sum, s.value):
                        score += 0.5
                    elif not s and g and _close(line_sum, g.value):
                        score += 0.3
                if best is None or score > best[0]:
                    best = (score, g, s, t, consistent)
    out: dict[str, tuple[_Amount, float]] = {}
    if best is None:
        return out
    _score, best_total, best_sub, best_tax, consistent = best
    for name, amt in (("total", best_total), ("subtotal", best_sub), ("tax", best_tax)):
        if amt is not None:
            conf = 0.96 if consistent else min(0.85, 0.5 + 0.35 * amt.score)
            out[name] = (amt, conf)
    return out


def _currency(doc: _Doc, total_where: tuple[int, int] | None) -> _Candidate | None:
    votes: dict[str, float] = defaultdict(float)
    first_page: dict[str, int] = {}
    near_total: set[str] = set()
    for pi, page in enumerate(doc.pages):
        found = doc.currencies if doc.currencies is not None else find_currencies(page.text)
        if not found:
            continue
        starts = _row_starts(page)
        for code, start, end in found:
            ri = bisect.bisect_right(starts, start) - 1
            row = page.rows[ri]
            offset = starts[ri]
            amounts = find_amounts(row.text, doc.decimal)
            weight = 1.0
            if any(a.start - 3 <= end - offset and start - offset <= a.end + 3 for a in amounts):
                weight = 2.0
            if total_where == (pi, ri):
                near_total.add(code)
                weight += 2.0
            votes[code] += weight
            first_page.setdefault(code, pi + 1)
    if votes:
        # "$" alone is USD unless another dollar currency is named.
        if "USD" in votes and any(c in votes for c in ("CAD", "AUD", "NZD", "SGD", "HKD")):
            votes["USD"] *= 0.5
        code = max(votes, key=lambda c: votes[c])
        conf = 0.93 if code in near_total else 0.8
        return _Candidate(code, conf, first_page[code])
    return None


# -------------------------------------------------------------------------------- line items


@dataclass(slots=True)
class _Item:
    """A line item (the fields of model.LineItem), made a dict only for the result: building
    and dumping a model for every row read was a noticeable part of the extraction's time."""

    description: str
    quantity: float | None
    unit_price: float | None
    amount: float | None

    def as_dict(self) -> dict[str, object]:  # LineItem(...).model_dump()
        return {
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "amount": self.amount,
        }


@dataclass(slots=True)
class _Table:
    page: int  # index
    header_row: int
    columns: list[tuple[str, float, float]]  # kind, x0, x1
    tokenised: bool = False  # the header is one run of text: rows are read token by token


@lru_cache(maxsize=4096)
def _header_kind(text: str) -> str | None:
    text = text.strip()
    if len(text) > 40:
        return None
    for kind, pattern in _HEADER_PATTERNS:
        if pattern.match(text):
            return kind
    return None


# The column vocabularies, matched at a given position (no "^" anchor).
_HEADER_PATTERNS = tuple(
    (kind, re.compile(pattern.pattern.removeprefix("^"), _I))
    for kind, pattern in (
        ("qty", _COL_QTY),
        ("unit", _COL_UNIT),
        ("amount", _COL_AMOUNT),
        ("desc", _COL_DESC),
        ("skip", _COL_SKIP),
    )
)


def _find_tables(pages: list[Page]) -> list[_Table]:
    tables: list[_Table] = []
    for pi, page in enumerate(pages):
        for ri, row in enumerate(page.rows):
            if len(row.cells) == 1 and _single_run_header(row.text):
                cell = row.cells[0]
                tables.append(_Table(pi, ri, [("desc", cell.x0, cell.x1)], tokenised=True))
                continue
            if len(row.cells) < 2 or len(row.text) > 200:
                continue
            if 2 * sum(c.text[:1].isdigit() for c in row.cells) > len(row.cells):
                continue  # mostly numbers: a row of values, not a header
            columns: list[tuple[str | None, float, float]] = []
            for cell in row.cells:
                words = _header_words(cell.text)
                if words and len(words) > 1:
                    # "Menge Bezeichnung": two column names in one run, split where they are.
                    scale = (cell.x1 - cell.x0) / max(len(cell.text), 1)
                    for kind, start, end in words:
                        columns.append((kind, cell.x0 + start * scale, cell.x0 + end * scale))
                else:
                    columns.append((_header_kind(cell.text), cell.x0, cell.x1))
            known = [k for k, _x0, _x1 in columns if k]
            numeric = [k for k in known if k in _NUMERIC_COLUMNS]
            if len(known) < max(2, len(columns) - 2) or not numeric:
                continue
            if "desc" not in known and len(set(numeric)) < 2:
                continue  # e.g. a tax summary "VAT % | Base | VAT amount | Total"
            if find_amounts(row.text):
                continue
            kinds = [k or "other" for k, _x0, _x1 in columns]
            if "desc" not in kinds and "other" in kinds:  # the first unnamed column
                kinds[kinds.index("other")] = "desc"
            columns_named = [(k, x0, x1) for k, (_k, x0, x1) in zip(kinds, columns, strict=True)]
            tables.append(_Table(pi, ri, columns_named))
    return tables


_HEADER_WORD = re.compile(r"(?<![^\W\d_])[^\W\d_]")


@lru_cache(maxsize=4096)
def _header_words(text: str) -> tuple[tuple[str, int, int], ...] | None:
    """The column names in `text`, with their spans, when every word of it is one."""
    if len(text) > 120 or _HAS_DIGIT.search(text):
        return None
    words: list[tuple[str, int, int]] = []
    end = 0
    for m in _HEADER_WORD.finditer(text):
        if m.start() < end:
            continue
        for kind, pattern in _HEADER_PATTERNS:
            hit = pattern.match(text, m.start())
            if hit:
                words.append((kind, m.start(), hit.end()))
                end = hit.end()
                break
        else:
            return None  # a word that is not a column name
    return tuple(words) or None


def _single_run_header(text: str) -> bool:
    """ "Description Qty Unit price Amount" drawn as one run: a description column and at least
    two numeric ones, and nothing else."""
    words = _header_words(text)
    if not words:
        return False
    kinds = [kind for kind, _start, _end in words]
    numeric = {k for k in kinds if k in _NUMERIC_COLUMNS}
    return "desc" in kinds and len(numeric) >= 2


_NUMERIC_COLUMNS = frozenset({"qty", "unit", "amount"})
_NUMERIC_CELL = re.compile(r"^[\s$€£¥₹(+\-\u2212]*\d[\d\s.,'\u2019]*(?:\s*[%)€$£A-Za-zł.]{0,4})$")


def _column_of(table: _Table, cell: Cell) -> tuple[int, bool]:
    """The column a cell falls in, and whether it overlaps that column's header."""
    best, best_overlap = -1, 0.0
    cx0, cx1 = cell.x0, cell.x1
    for k, (_kind, x0, x1) in enumerate(table.columns):
        # min(x1, cx1) - max(x0, cx0), without the cost of two calls
        overlap = (cx1 if cx1 < x1 else x1) - (cx0 if cx0 > x0 else x0)
        if overlap > best_overlap:
            best, best_overlap = k, overlap
    if best >= 0:
        return best, True
    # No overlap: the nearest column, measured from the right edge for numbers.
    distances = [min(abs(cell.x1 - x1), abs(cell.x0 - x0)) for _kind, x0, x1 in table.columns]
    return min(range(len(distances)), key=distances.__getitem__), False


def _num(text: str, decimal: str | None) -> float | None:
    vals = find_amounts(text, decimal)
    return vals[0].value if vals else None


def _read_table(doc: _Doc, page: Page, table: _Table) -> tuple[list[_Item], list[int]]:
    items: list[_Item] = []
    rows_used: list[int] = []
    misses = 0
    header = page.rows[table.header_row]
    last_bottom = header.bottom
    desc_cols = [k for k, c in enumerate(table.columns) if c[0] == "desc"]
    after_totals = False
    for ri in range(table.header_row + 1, len(page.rows)):
        row = page.rows[ri]
        if row.top - page.rows[ri - 1].bottom > 6 * max(row.height, 6.0):
            break  # a wide vertical gap: the table has ended
        if _totals_row(row, doc.decimal):
            # A subtotal: the end of the table, or of a section of it when items follow.
            after_totals = True
            misses += 1
            if misses >= 3:
                break
            continue
        if _header_kind(row.cells[0].text) and len(row.cells) >= 2 and not find_amounts(row.text):
            break
        values: dict[str, list[str]] = defaultdict(list)
        clean = not table.tokenised and (len(row.cells) > 1 or len(table.columns) <= 2)
        for cell in row.cells:
            k, overlaps = _column_of(table, cell)
            kind = table.columns[k][0]
            if kind in _NUMERIC_COLUMNS and len(find_amounts(cell.text, doc.decimal)) > 1:
                clean = False  # "Rs. 2,899.04 Rs. 11,596.16": two columns in one run
            elif _NUMERIC_CELL.match(cell.text) and (
                (kind in _NUMERIC_COLUMNS and (values[kind] or not overlaps))
                or (kind == "desc" and values[kind])
            ):
                clean = False  # two numbers for one column, or a number under the description
            values[kind].append(cell.text)
        desc = " ".join(values.get("desc", [])).strip()
        qty = _num(" ".join(values.get("qty", [])), doc.decimal)
        unit = _num(" ".join(values.get("unit", [])), doc.decimal)
        amount = _num(" ".join(values.get("amount", [])), doc.decimal)
        if amount is None:
            # No amount column found (an unnamed or combined header): the rightmost money value
            # of the row outside the description and quantity is the line amount.
            money = [
                a.value
                for cell in row.cells
                if table.columns[_column_of(table, cell)[0]][0] not in ("desc", "qty")
                for a in find_amounts(cell.text, doc.decimal)
                if a.decimals or find_currencies(cell.text)
            ]
            if money:
                amount = money[-1]
                if unit is None and len(money) >= 2:
                    unit = money[-2]
        if not clean:
            parsed = _tokenised_item(row.text.replace("\t", "  "), doc.decimal)
            if parsed:
                desc, qty, unit, amount = parsed
        priced = unit is not None or amount is not None
        if after_totals and (qty is None or not priced):
            priced = False  # after a subtotal only a full item row continues the table
        if priced and _WORDS.search(desc):
            items.append(_Item(desc, qty, unit, amount))
            rows_used.append(ri)
            last_bottom = row.bottom
            misses = 0
            continue
        numeric = any(values.get(k) for k in ("qty", "unit", "amount"))
        if (
            desc
            and items
            and not numeric
            and all(_column_of(table, c)[0] in desc_cols for c in row.cells)
            and row.top - last_bottom < 1.6 * max(row.height, 6.0)
        ):
            # A description wrapped onto the next line.
            prev = items[-1]
            prev.description = f"{prev.description} {desc}"
            rows_used.append(ri)
            last_bottom = row.bottom
            continue
        misses += 1
        if misses >= 3 and items:
            break
        if misses >= 6:
            break
    return items, rows_used


def _totals_row(row: Row, decimal: str | None) -> bool:
    """ "Subtotal  1,234.00", "VAT 20 %  246.80": the end of the item table."""
    start = first_amount_start(row.text)
    if start is None:
        return False  # no amount: a second header line ("excl. VAT"), not a total
    label = row.text[:start]
    if len(label.split()) > 5 or _amount_kind(label) is None:
        return False
    return len(find_amounts(row.text, decimal)) <= 2  # (the label first: it is cheaper)


def _tokenised_item(
    text: str, decimal: str | None
) -> tuple[str, float | None, float | None, float | None] | None:
    """`Blue widget 2 10.00 20.00` without columns: the numbers at the end, from the right."""
    amounts = find_amounts(text, decimal)
    if not amounts:
        return None
    trailing: list[AmountMatch] = []
    end = len(text.rstrip())
    for a in reversed(amounts):
        gap = text[a.end : end]
        if gap.strip(" €$£%¥₹\t") and not find_currencies(gap):
            break
        trailing.insert(0, a)
        end = a.start
    if not trailing:
        return None
    desc = text[:end].strip(" \t-")
    vals = [a.value for a in trailing]
    if len(vals) >= 3:
        qty, unit, amount = vals[-3], vals[-2], vals[-1]
        if _close(qty * unit, amount):
            return desc, qty, unit, amount
        return desc, None, vals[-2], vals[-1]
    if len(vals) == 2:
        return desc, None, vals[0], vals[1]
    return desc, None, None, vals[0]


def _score_items(items: list[_Item], totals: list[float]) -> float:
    if not items:
        return 0.0
    arithmetic = 0  # items whose quantity times unit price is their amount
    amounts: list[float] = []
    for it in items:
        quantity, unit, amount = it.quantity, it.unit_price, it.amount
        if amount is not None:
            amounts.append(amount)
            if (
                quantity is not None
                and unit is not None
                and _close(round(quantity * unit, 2), amount)
            ):
                arithmetic += 1
    score = arithmetic / len(items)
    if amounts and len(amounts) == len(items):
        line_sum = sum(amounts)
        if any(_close(line_sum, t) for t in totals):
            score += 1.0
    return score


def _line_items(
    doc: _Doc, plumber: PlumberLoader | None, totals: list[float]
) -> tuple[list[_Item], int, float] | None:
    tables = _find_tables(doc.pages)
    if not tables:
        return _listed_items(doc, totals)
    all_items: list[_Item] = []
    first_page = tables[0].page + 1
    pages_needing_help: list[int] = []
    for table in tables:
        page = doc.pages[table.page]
        items, used = _read_table(doc, page, table)
        if not items or _score_items(items, totals) < 0.5:
            pages_needing_help.append(table.page)
        doc.item_rows.update((table.page, ri) for ri in used)
        all_items.extend(items)
    score = _score_items(all_items, totals)
    if plumber is not None and pages_needing_help and score < 1.0:
        alt_items: list[_Item] = []
        for pi in dict.fromkeys(pages_needing_help):
            alt_page = plumber(pi + 1)
            if alt_page is None:
                continue
            for table in _find_tables([alt_page]):
                items, _used = _read_table(doc, alt_page, table)
                alt_items.extend(items)
        alt_score = _score_items(alt_items, totals)
        if alt_score > score:
            all_items, score = alt_items, alt_score
    if not all_items:
        return None
    return all_items, first_page, score


def _listed_items(doc: _Doc, totals: list[float]) -> tuple[list[_Item], int, float] | None:
    """Charges listed without a table header: a block of "description | amount" rows (each
    charge perhaps followed by more indented breakdown rows: "Charges", "VAT"), whose least
    indented, unlabelled rows are the items, when there are at least two and their amounts add
    up to a total of the document. Without quantities each charge is billed once: its amount is
    also its unit price."""
    for pi, page in enumerate(doc.pages):
        block: list[tuple[int, Cell, float]] = []  # row, description cell, amount
        for ri, row in enumerate([*page.rows, None]):
            entry = _listed_entry(row, doc.decimal) if row is not None else None
            if entry is not None:
                block.append((ri, entry[0], entry[1]))
                continue
            if len(block) >= 2:
                left = min(cell.x0 for _ri, cell, _v in block)
                top = [(r, c, v) for r, c, v in block if c.x0 < left + 2.0]
                if len(top) >= 2 and all(_amount_kind(c.text) is None for _r, c, _v in top):
                    amount = round(sum(v for _r, _c, v in top), 2)
                    if any(_close(amount, t) for t in totals):
                        items = [_Item(c.text, None, v, v) for _r, c, v in top]
                        doc.item_rows.update((pi, r) for r, _c, _v in top)
                        return items, pi + 1, 1.0
            block = []
    return None


def _listed_entry(row: Row, decimal: str | None) -> tuple[Cell, float] | None:
    """A row "description | amount" (two cells, one money amount with decimals)."""
    if len(row.cells) != 2:
        return None
    desc, value = row.cells
    amounts = find_amounts(value.text, decimal)
    if len(amounts) != 1 or not amounts[0].decimals or not _WORDS.search(desc.text):
        return None
    if find_amounts(desc.text, decimal) or len(value.text) > len(amounts[0].raw) + 4:
        return None
    return desc, amounts[0].value


# ---------------------------------------------------------------------------------- the whole


def extract_invoice(
    pages: list[Page], *, plumber: PlumberLoader | None = None
) -> dict[str, ExtractedField]:
    """Invoice fields (names from INVOICE_FIELDS) found in `pages`; absent fields are left out.

    `plumber(page_number)` re-reads one page with pdfplumber; it is called only when a line-item
    table could not be read consistently from the fast text.
    """
    text = "\n".join(p.text for p in pages)
    language = detect_language(text)
    decimal = guess_decimal_separator(text)
    found_currencies = find_currencies(text)
    currencies = Counter(code for code, _s, _e in found_currencies)
    currency_hint = currencies.most_common(1)[0][0] if currencies else None
    doc = _Doc(pages, text, language, decimal, guess_dayfirst(text, language, currency_hint))
    if len(pages) == 1:  # the text is the page's text: no need to look again
        doc.currencies = found_currencies
    fields: dict[str, ExtractedField] = {}

    blocks = _customer_blocks(doc)
    for _hit, cells in blocks:
        doc.customer_cells.update(cells)

    number = _invoice_number(doc)
    if number:
        fields["invoice_number"] = _field(number)
    issue = _issue_date(doc, number)
    if issue:
        fields["issue_date"] = _field(issue)
    due = _due_date(doc, issue)
    if due:
        fields["due_date"] = _field(due)

    customer = _customer(doc, blocks)
    issuer = _issuer(doc, customer)
    if issuer:
        fields["issuer"] = _field(issuer)
    if customer:
        fields["customer"] = _field(customer)

    # Line items first (their rows are not totals), then the amounts, checked against them.
    prelim = _amount_candidates(doc)
    prelim_totals = [a.value for k in ("subtotal", "total") for a in prelim.get(k, [])]
    items = _line_items(doc, plumber, prelim_totals)
    found = {
        kind: [a for a in amounts if a.where not in doc.item_rows]
        for kind, amounts in prelim.items()
    }
    line_sum: float | None = None
    if items:
        amounts = [it.amount for it in items[0] if it.amount is not None]
        if amounts and len(amounts) == len(items[0]):
            line_sum = round(sum(amounts), 2)
    chosen = _choose_amounts(found, line_sum)
    if not chosen.get("total"):
        fallback = _largest_amount(doc)
        if fallback:
            chosen["total"] = fallback
    if "total" in chosen and "subtotal" not in chosen:
        total, total_conf = chosen["total"]
        if "tax" in chosen:
            # Total and tax given, no net line: the net amount is their difference.
            tax, tax_conf = chosen["tax"]
            net = _Amount(round(total.value - tax.value, 2), 0.0, total.page, total.where)
            chosen["subtotal"] = (net, 0.6 * min(total_conf, tax_conf))
        elif not found.get("tax") and not found.get("subtotal"):
            # No tax anywhere: the untaxed amount is the total.
            chosen["subtotal"] = (total, 0.4 * total_conf)
    for name in ("subtotal", "tax", "total"):
        if name in chosen:
            amt, conf = chosen[name]
            fields[name] = ExtractedField(value=round(amt.value, 2), confidence=conf, page=amt.page)

    total_where = chosen["total"][0].where if "total" in chosen else None
    currency = _currency(doc, total_where)
    if currency:
        fields["currency"] = _field(currency)

    vat = _best(_vat_ids(doc))
    if vat:
        fields["vat_id"] = _field(vat)
    iban = _best(_ibans(doc))
    if iban:
        fields["iban"] = _field(iban)
    bic = _bic(doc, iban)
    if bic:
        fields["bic"] = _field(bic)

    if items:
        line_items, page_no, score = items
        conf = 0.9 if score >= 1.0 else 0.75 if score >= 0.5 else 0.55
        fields["line_items"] = ExtractedField(
            value=[it.as_dict() for it in line_items], confidence=conf, page=page_no
        )
    return fields


def _largest_amount(doc: _Doc) -> tuple[_Amount, float] | None:
    best: _Amount | None = None
    for pi, page in enumerate(doc.pages):
        for ri, row in enumerate(page.rows):
            if (pi, ri) in doc.item_rows:
                continue
            for a in find_amounts(row.text, doc.decimal):
                if a.decimals == 2 and (best is None or a.value > best.value):
                    best = _Amount(a.value, 0.35, pi + 1, (pi, ri))
    return (best, 0.35) if best else None
