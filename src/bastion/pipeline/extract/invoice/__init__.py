"""Invoice fields from page text: generic label/value heuristics, no per-issuer templates.

Each field is looked for next to the labels that name it (multilingual vocabularies: English,
German, French, Spanish, Polish, Italian, Dutch), then checked by type (a date, an amount, an
IBAN that passes mod-97...). Where several candidates remain, layout and arithmetic decide:
the issuer sits at the top of page 1 or in the footer and not in the customer's address
block; subtotal + tax = total picks among candidate amounts; line items are read under a
table header, column by column, and the sum of their amounts backs the subtotal.

The package owns the invoice extraction, one concern a module: `vocabulary` (the label
patterns), `document` (the pages, candidates and label index), `references` (the invoice
number), `dates`, `identifiers` (IBAN, BIC, VAT id), `parties` (issuer, customer), `amounts`
(totals and currency), `line_items`, and `assembly` (`extract_invoice`, the whole).
"""

from bastion.pipeline.extract.invoice.assembly import extract_invoice
from bastion.pipeline.extract.invoice.parties import normalise_name
from bastion.pipeline.extract.invoice.vocabulary import LEGAL_FORM

__all__ = ["LEGAL_FORM", "extract_invoice", "normalise_name"]
