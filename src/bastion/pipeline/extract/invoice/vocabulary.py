"""The words invoices use, as patterns: the multilingual label vocabularies of each field
(English, German, French, Spanish, Polish, Italian, Dutch), the kinds of amount a row can
announce, the line-item column headers and the legal forms of company names; the label
vocabularies combined into one alternation, so that one scan of a page finds every label.
"""

from __future__ import annotations

import re
from functools import lru_cache

from bastion.pipeline.extract.alternation import NamedAlternation, named_alternation

_I = re.IGNORECASE

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
# A title line: a document-type word, also inside a compound ("Teilrechnung",
# "Schlussrechnung", "Gutschrift"), then up to five words, then a number marker and the number
# ("Teilrechnung Bau (875) Nr. 210111 vom 30.05.2025", "Facture d'acompte N° F-17 du ...",
# "Credit note for order 55 No. CN-9 dated ...").
_TITLE_LINE = re.compile(
    r"(?<![^\W\d_])(?P<type>[^\W\d_]*(?:rechnung|gutschrift|invoice|facture|avoir|factura|"
    r"fattura|faktura|factuur)[^\W\d_]*|credit\s+note)"
    r"(?P<between>(?:\s+\S+){0,5}?)\s*"
    r"(?<![^\W\d_])(?:n[o\u00b0\u00ba]|nr|nummer|number|num[\u00e9e]ro)(?![^\W\d_])\.?\s*[:.]?\s*"
    r"(?P<number>\S+)",
    _I,
)
# Words, also inside a compound, that make a title-line match a label of something else
# ("Rechnungsdatum Nr.", "Rechnungsbetrag").
_NOT_TITLE = re.compile(r"dat(?:e|um)|betrag|summe|total|amount|montant|adresse|address", _I)
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
    r"\bzahlbar\s+(?:bis|sp[äa]testens|zum|am)(?:\s+(?:zum|am))?\b",
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
# In a party block laid out as a form: the key whose value is the party's name ("Name:",
# "Firma:", "Company name:", "Raison sociale :"), and the headings that end the seller's block.
_NAME_KEY = re.compile(
    r"^\s*(?:name|firma|firmenname|company(?:\s+name)?|business\s+name|legal\s+name|"
    r"registered\s+name|raison\s+sociale|nom|d[\u00e9e]nomination(?:\s+sociale)?)\s*:\s*",
    _I,
)
_OTHER_PARTY = re.compile(
    r"\b(?:k[\u00e4a]ufer|leistungsempf[\u00e4a]nger|warenempf[\u00e4a]nger|kunde|buyer|customer|"
    r"client|acheteur|destinataire|bill\s+to|ship\s+to)\b",
    _I,
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

_BIC_LABEL = _fast(
    r"\b(?:bic|swift)(?:\s*[/-]?\s*(?:swift|bic))?(?:\s*-?\s*code)?\b\s*(?:\([^)]*\))?\s*[:.]?"
)

_CUSTOMER_WORDS = _fast(
    r"\b(?:customer|client|buyer|your|bill(?:ed)?\s+to|sold\s+to|kunde|kunden|ihre?|"
    r"käufer|rechnungsempf|acheteur|votre|vos|acquéreur|nabywc|comprador|cliente|klant|uw)\w*"
)

_DATE_WORD = _fast(r"\b(?:date|fecha|data)\b|\w*datum\b")

# The kinds of amount a row can hold, most specific first.
_TOTAL_STRONG = _fast(
    r"total\s*(?:amount\s*)?due|amount\s*(?:due|payable|to\s+pay)|balance\s*due|grand\s*total|"
    r"invoice\s*(?:total|amount)|total\s*(?:payable|to\s*pay|invoice)|"
    r"total\s*\(?(?:incl|inkl|including|with|gross|ttc|brutto|tax\s+incl)|"
    r"gross\s*(?:total|amount)|\bpayable\b|"
    r"gesamtbetrag|rechnungsbetrag|rechnungssumme|endbetrag|zahlbetrag|zu\s*zahlen|"
    r"gesamtsumme|brutto(?:summe|betrag|wert|gesamt)?\b|summe\s*brutto|gesamt\s*brutto|"
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
    r"(?:umsatz|mehrwert)?steuer(?:betrag|summe)|(?:mwst|ust)\.?\s*-?\s*(?:betrag|summe)|"
    r"\b(?:vat|tax(?:es)?|gst|igst|cgst|sgst|hst|pst|mwst|ust|umsatzsteuer|mehrwertsteuer|"
    r"steuer|tva|iva|btw|podatek)\b(?![\s\-.]*(?:id|no\b|nr|number|reg|identif|intra|n°|code|"
    r"registration|#|in\b|nummer|ident))"
)
# A statement that the invoice carries no VAT (small-business exemption, reverse charge, an
# exempt supply): with no tax amount printed, the tax is 0.
_NO_TAX = re.compile(
    r"keine\s+(?:umsatzsteuer|mehrwertsteuer|mwst|ust)\b|\u00a7\s*19\s*ustg|kleinunternehmer|"
    r"steuerschuldnerschaft\s+des\s+leistungsempf|tva\s+non\s+applicable|293\s*b\s+du\s+cgi|"
    r"exon[\u00e9e]r[\u00e9e]e?s?\s+de\s+tva|autoliquidation|\bvat\s+exempt|exempt\s+from\s+vat|"
    r"\breverse\s+charge\b",
    _I,
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

# The shapes of tokens: a digit, a word of letters, a year.
_HAS_DIGIT = re.compile(r"\d")
_WORDS = re.compile(r"[^\W\d_]{2,}")
_YEAR_LIKE = re.compile(r"^(?:19|20)\d{2}$")

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


# Qualifiers that make a total label a gross total or an amount to pay, whatever net word it
# also holds ("net à payer", "Gesamtbetrag inkl. USt.").
_GROSS_OR_DUE = re.compile(
    r"inkl|incl|including|with\s+(?:vat|tax)|gross|brutto|ttc|[àa]\s*payer|\bdue\b|payable|"
    r"zahlbar|zu\s*zahlen|to\s*pay|pagar",
    _I,
)


@lru_cache(maxsize=4096)
def _amount_kind(label: str) -> tuple[str, float] | None:
    """What amount a label announces: the most specific kind named in it wins, and a net
    qualifier beats a generic total word ("Rechnungssumme ohne USt." is the net total) unless
    the label also says gross or due."""
    found = {_KIND.name(m) for m in _KIND.pattern.finditer(label.lower())}
    if not found or "skip" in found:
        return None
    if {"strong", "subtotal"} <= found and not _GROSS_OR_DUE.search(label):
        return _KIND_RESULT["subtotal"]
    for name in ("strong", "subtotal", "tax", "weak"):
        if name in found:
            return _KIND_RESULT[name]
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
