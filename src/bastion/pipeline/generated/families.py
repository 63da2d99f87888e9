"""The layout families: each one a layout feature real European invoices use, drawn in any of
the generator's languages.

`FAMILIES` maps a family's name to its `Family`: a description, its renderer, what it asks of
the content (`ContentOptions`: credit note, several VAT rates, charges, a prepaid amount, many
items) and which date, money and minus styles its documents draw from.

`HELD_OUT_FAMILIES` are never used to tune the extractor: their accuracy is reported apart, as
a measure of how the extractor does on layouts nobody looked at. Each one has a tuned relative
(another family with a similar feature), so a held-out miss says the rule did not generalise.
Do not inspect held-out documents or their misses when working on the extractor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from bastion.pipeline.generated.blocks import (
    LEFT,
    RIGHT,
    Ctx,
    bank_lines,
    draw_rows,
    draw_totals,
    footer_columns,
    items_table,
    meta_rows,
    party_block,
    seller_columns,
    tax_breakdown,
    totals_header_row,
    totals_rows,
    vat_line,
)
from bastion.pipeline.generated.content import ContentOptions
from bastion.pipeline.generated.vocabulary import LANGUAGES, TRADE_NAMES

__all__ = ["FAMILIES", "HELD_OUT_FAMILIES", "Family"]

Renderer = Callable[[Ctx], None]
_DETAILED = ("position", "description", "quantity", "unit", "unit_price", "rate", "amount")


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    render: Renderer
    options: ContentOptions = field(default_factory=ContentOptions)
    dates: tuple[str, ...] = ("numeric", "numeric", "long")
    money: tuple[str, ...] = ("symbol", "code")
    minus: str = "leading"
    fonts: tuple[str, ...] = ("Helvetica", "Helvetica", "Times")
    languages: tuple[str, ...] = tuple(LANGUAGES)


_REGISTRY: dict[str, Family] = {}


def _family(description: str, **kwargs: object) -> Callable[[Renderer], Renderer]:
    def register(render: Renderer) -> Renderer:
        name = render.__name__.lstrip("_")
        _REGISTRY[name] = Family(name, description, render, **kwargs)  # type: ignore[arg-type]
        return render

    return register


# ------------------------------------------------------------------------------- shared parts


def _title(ctx: Ctx) -> str:
    return ctx.label("credit_note" if ctx.inv.credit_note else "invoice")


def _body(ctx: Ctx, y: float, *, columns: tuple[str, ...] | None = None) -> float:
    """The items table, then the totals right; returns the y below them."""
    if columns is None:
        columns = ("description", "quantity", "unit_price", "amount")
    if ctx.inv.credit_note:
        y = ctx.sheet.paragraph(LEFT, y, [ctx.label("credit_reason")], 9) - 10
    y = items_table(ctx, y, ctx.inv.lines, columns=columns)
    return draw_totals(ctx, totals_rows(ctx), 330, y)


def _payment(ctx: Ctx, y: float, *, terms: bool = False) -> float:
    """The payment paragraph: terms (when asked), transfer note and bank details."""
    lines = [ctx.label("terms", days=ctx.inv.terms_days)] if terms else []
    if not ctx.inv.credit_note:
        lines.append(ctx.label("transfer"))
    lines += bank_lines(ctx)
    return ctx.sheet.paragraph(LEFT, y, lines, 8.5)


def _letterhead(ctx: Ctx, x: float = LEFT, y: float = 795) -> float:
    """The seller's name, address and VAT id top left."""
    return party_block(ctx, x, y, ctx.inv.seller, None, size=9, trade_name=True)


def _header(
    ctx: Ctx,
    *,
    grid: bool = False,
    rows: list[tuple[str, str]] | None = None,
    buyer_size: float = 10,
) -> None:
    """The letterhead top left; the title and the invoice data on the right, as right-aligned
    "Label: value" rows or (`grid`) a label/value grid; the buyer block under the letterhead."""
    s = ctx.sheet
    _letterhead(ctx)
    rows = meta_rows(ctx) if rows is None else rows
    if grid:
        s.text(330, 790, _title(ctx), 18, bold=True)
        draw_rows(ctx, rows, 330, 445, 766, size=9)
    else:
        s.right(RIGHT, 790, _title(ctx), 18, bold=True)
        draw_rows(ctx, rows, 0, RIGHT, 766, right=True, size=9)
    party_block(ctx, LEFT, 670, ctx.inv.buyer, ctx.label("buyer"), vat=False, size=buyer_size)


# ------------------------------------------------------------------------------- the families


@_family("Seller top left, title and invoice data right-aligned on the right, bill-to block, "
         "items, totals right, bank details under them")  # fmt: skip
def _classic(ctx: Ctx) -> None:
    _header(ctx)
    y = _body(ctx, 580)
    _payment(ctx, min(y - 20, 190))


@_family("Parties as forms: a heading, the trade name line, then Name:/Address:/VAT rows; "
         "invoice data as a grid on the right")  # fmt: skip
def _form_parties(ctx: Ctx) -> None:
    s = ctx.sheet
    s.text(LEFT, 790, _title(ctx), 22, bold=True)
    draw_rows(ctx, meta_rows(ctx), 340, 440, 790)
    y = party_block(ctx, LEFT, 700, ctx.inv.seller, ctx.label("seller"), form=True,
                    trade_name=True)  # fmt: skip
    y = party_block(ctx, LEFT, y - 14, ctx.inv.buyer, ctx.label("buyer"), form=True, vat=False)
    y = _body(ctx, y - 30)
    _payment(ctx, min(y - 20, 180), terms=False)


@_family("The number and the date only in the title line ('Rechnung Nr. 17 vom 03.02.2024'); "
         "seller as a sender line and a footer")  # fmt: skip
def _title_line(ctx: Ctx) -> None:
    s, inv = ctx.sheet, ctx.inv
    seller = inv.seller
    s.text(LEFT, 800, f"{seller.name} · {seller.street} · {seller.city_line}", 7)
    party_block(ctx, LEFT, 760, inv.buyer, None, vat=False)
    title = f"{_title(ctx)} {inv.language.labels['number_short'][0]} {inv.number} "
    s.text(LEFT, 640, title + f"{ctx.label('dated')} {ctx.date(inv.issue_date)}", 14, bold=True)
    rows = meta_rows(ctx, number=False)[1:]
    y = draw_rows(ctx, rows, LEFT, 160, 616, size=9)
    y = _body(ctx, y - 20)
    _payment(ctx, min(y - 16, 170))
    footer_columns(ctx, [[seller.name, seller.register], [vat_line(ctx, seller)]], 60)


@_family("Totals as a table: the labels in one row, the amounts in the row below")
def _totals_header_row(ctx: Ctx) -> None:
    _header(ctx, grid=True)
    y = items_table(ctx, 580, ctx.inv.lines)
    y = totals_header_row(ctx, totals_rows(ctx), y)
    _payment(ctx, min(y - 10, 180))


@_family("Two-column header: the seller left, the title and a key/value grid of invoice data "
         "right; buyer below")  # fmt: skip
def _two_column_header(ctx: Ctx) -> None:
    s = ctx.sheet
    party_block(ctx, LEFT, 790, ctx.inv.seller, ctx.label("seller"), size=9)
    s.text(320, 790, _title(ctx), 16, bold=True)
    draw_rows(ctx, meta_rows(ctx), 320, 420, 768, size=9)
    party_block(ctx, LEFT, 660, ctx.inv.buyer, ctx.label("buyer"), vat=False, size=9)
    y = _body(ctx, 570, columns=("description", "quantity", "unit", "unit_price", "amount"))
    _payment(ctx, min(y - 20, 180), terms=True)


@_family("Seller only in the footer: a brand at the top, name, VAT id, register and bank in "
         "small print in three columns")  # fmt: skip
def _footer_seller(ctx: Ctx) -> None:
    s, inv = ctx.sheet, ctx.inv
    brand = inv.seller.trade_name or ctx.rng.choice(TRADE_NAMES)  # never part of the name
    s.text(LEFT, 790, brand, 24, bold=True)
    party_block(ctx, LEFT, 720, inv.buyer, None, vat=False)
    s.text(330, 720, _title(ctx), 16, bold=True)
    draw_rows(ctx, meta_rows(ctx), 330, 430, 698, size=9)
    y = _body(ctx, 590)
    if not inv.credit_note:
        s.text(LEFT, min(y - 14, 140), ctx.label("thanks"), 9)
    footer_columns(ctx, seller_columns(ctx))


@_family("Letter-spaced title ('R E C H N U N G') and labels drawn with character spacing",
         fonts=("Helvetica",))  # fmt: skip
def _letter_spaced(ctx: Ctx) -> None:
    s = ctx.sheet
    _letterhead(ctx)
    s.text(330, 792, " ".join(_title(ctx).upper()), 16, bold=True)
    y = 766.0
    for label, text in meta_rows(ctx):
        s.spaced(330, y, label.upper(), 7, space=1.6)
        s.text(450, y, text, 9)
        y -= 14
    party_block(ctx, LEFT, 660, ctx.inv.buyer, None, vat=False)
    y = items_table(ctx, 570, ctx.inv.lines)
    for label, value, bold in totals_rows(ctx):
        s.spaced(300, y, label.upper(), 8, bold, space=1.4)
        ctx.amount(RIGHT, y, value, 10, bold)
        y -= 17
    _payment(ctx, min(y - 20, 170))


@_family("A print/filing line rotated 90 degrees up the left margin, with its own date and "
         "reference")  # fmt: skip
def _rotated_margin(ctx: Ctx) -> None:
    inv = ctx.inv
    printed = inv.issue_date + dt.timedelta(days=ctx.rng.randint(0, 3))
    clock = f"{ctx.rng.randint(7, 18)}:{ctx.rng.randint(10, 59)}"
    ref = f"{ctx.rng.randint(10000, 99999)}"
    line = ctx.label("printed", date=ctx.date(printed), time=clock, ref=ref)
    ctx.sheet.rotated(24, 180, line, 7)
    _classic(ctx)


@_family("Credit note printed SAP-style: monospaced, amounts with a trailing minus ('100,00-'), "
         "the currency stated once", options=ContentOptions(credit_note=True),
         money=("plain",), minus="trailing", fonts=("Courier",))  # fmt: skip
def _trailing_minus(ctx: Ctx) -> None:
    _header(ctx, grid=True, buyer_size=9)
    ctx.sheet.text(LEFT, 600, ctx.label("currency_note", currency=ctx.inv.currency), 9)
    y = _body(ctx, 570)
    _payment(ctx, min(y - 20, 180))


@_family("Credit note whose minus signs are drawn apart, raised off the amounts' baseline",
         options=ContentOptions(credit_note=True), minus="apart")  # fmt: skip
def _minus_baseline(ctx: Ctx) -> None:
    _classic(ctx)


@_family("Totals with a prepaid amount and the amount due after it",
         options=ContentOptions(prepaid=True))  # fmt: skip
def _prepaid_due(ctx: Ctx) -> None:
    _header(ctx, grid=True)
    y = _body(ctx, 580)
    _payment(ctx, min(y - 20, 180), terms=True)


@_family("A sum of the items, then charges and allowances, then the net total",
         options=ContentOptions(charges=True))  # fmt: skip
def _charges_allowances(ctx: Ctx) -> None:
    _classic(ctx)


@_family("Two or three VAT rates: a rate column, a VAT breakdown table and per-rate rows",
         options=ContentOptions(items=(3, 7), rates=(2, 3)))  # fmt: skip
def _multi_rate(ctx: Ctx) -> None:
    _header(ctx)
    y = items_table(ctx, 580, ctx.inv.lines, columns=_DETAILED)
    bottom = tax_breakdown(ctx, y)
    y = draw_totals(ctx, totals_rows(ctx), 330, bottom - 10)
    _payment(ctx, min(y - 20, 160))


@_family("Compound and long labels for the totals ('Nettobetrag', 'Umsatzsteuerbetrag', "
         "'Gesamtbetrag brutto', 'Montant total hors taxes')")  # fmt: skip
def _compound_labels(ctx: Ctx) -> None:
    _header(ctx, grid=True)
    y = items_table(ctx, 580, ctx.inv.lines)
    y = draw_totals(ctx, totals_rows(ctx, compound=True), 280, y)
    _payment(ctx, min(y - 20, 180))


@_family("No due date printed: it follows from the payment terms ('zahlbar innerhalb 14 "
         "Tagen')")  # fmt: skip
def _payment_terms(ctx: Ctx) -> None:
    _header(ctx, rows=meta_rows(ctx, due=False))
    y = _body(ctx, 580)
    _payment(ctx, min(y - 20, 190), terms=True)


@_family("Service period and delivery date printed near, and above, the invoice date")
def _service_period(ctx: Ctx) -> None:
    inv = ctx.inv
    start, end = inv.period
    rows = [
        (ctx.label("period"), f"{ctx.date(start)} - {ctx.date(end)}"),
        (ctx.label("delivery"), ctx.date(inv.delivery_date)),
        *meta_rows(ctx),
    ]
    _header(ctx, grid=True, rows=rows)
    y = _body(ctx, 570)
    _payment(ctx, min(y - 20, 180))


@_family("A detailed items table: position, quantity, unit, unit price, VAT rate, amount",
         options=ContentOptions(items=(4, 9), rates=(1, 2)))  # fmt: skip
def _items_table(ctx: Ctx) -> None:
    _header(ctx)
    y = _body(ctx, 580, columns=_DETAILED)
    _payment(ctx, min(y - 20, 150))


_PER_PAGE = 24


@_family("A long invoice over several pages: header and page number on each, carried-forward "
         "sums at the page foot, the totals on the last page",
         options=ContentOptions(items=(36, 60)))  # fmt: skip
def _multi_page(ctx: Ctx) -> None:
    s, inv = ctx.sheet, ctx.inv
    chunks = [inv.lines[i : i + _PER_PAGE] for i in range(0, len(inv.lines), _PER_PAGE)]
    running = Decimal(0)
    for page, chunk in enumerate(chunks, start=1):
        if page == 1:
            _header(ctx)
            y = 580.0
        else:
            s.next_page()
            s.text(LEFT, 800, f"{inv.seller.name} - {_title(ctx)} {inv.number}", 8)
            s.text(LEFT, 770, ctx.label("brought", prev=page - 1), 9)
            ctx.amount(RIGHT, 770, running, 9)
            y = 740.0
        s.right(RIGHT, 28, ctx.label("page", page=page, pages=len(chunks)), 8)
        first = (page - 1) * _PER_PAGE + 1
        y = items_table(ctx, y, chunk, columns=("position", *_DETAILED[1:]), first=first, size=8)
        running += sum((line.amount for line in chunk), Decimal(0))
        if page < len(chunks):
            s.text(300, y + 6, ctx.label("carried"), 9, bold=True)
            ctx.amount(RIGHT, y + 6, running, 9, bold=True)
    if y < 260:
        s.next_page()
        y = 780.0
    y = draw_totals(ctx, totals_rows(ctx), 330, y)
    _payment(ctx, y - 20)


@_family("Bank details in a drawn box beside the payment terms")
def _bank_box(ctx: Ctx) -> None:
    s = ctx.sheet
    _header(ctx)
    y = min(_body(ctx, 580) - 20, 200)
    s.box(300, y - 62, RIGHT - 300, 76)
    s.text(308, y, ctx.label("bank"), 9, bold=True)
    s.paragraph(308, y - 14, bank_lines(ctx, holder=True), 8.5)
    s.paragraph(LEFT, y, [ctx.label("terms", days=ctx.inv.terms_days)], 8.5)


@_family("Dates written out ('3 février 2024', '1er mars'), the issue date as a place-and-date "
         "line of a letter", dates=("long",))  # fmt: skip
def _written_dates(ctx: Ctx) -> None:
    s, inv = ctx.sheet, ctx.inv
    _letterhead(ctx)
    party_block(ctx, LEFT, 700, inv.buyer, None, vat=False)
    place = "" if inv.language.code == "en" else f"{inv.seller.city}, "
    s.right(RIGHT, 632, place + ctx.date(inv.issue_date), 10)
    s.text(LEFT, 606, f"{_title(ctx)} {inv.number}", 14, bold=True)
    y = draw_rows(ctx, meta_rows(ctx, number=False)[1:], LEFT, 170, 586, size=9)
    y = _body(ctx, y - 16)
    _payment(ctx, min(y - 20, 170))


@_family("ISO dates (2024-02-03) and amounts with the currency code", dates=("iso",),
         money=("code",))  # fmt: skip
def _iso_dates(ctx: Ctx) -> None:
    _two_column_header(ctx)


@_family("Amounts without currency signs, the currency only in labels ('Total (EUR)') and "
         "column heads", money=("plain",))  # fmt: skip
def _currency_in_labels(ctx: Ctx) -> None:
    currency = ctx.inv.currency
    for key in ("amount", "total", "credit_total", "amount_due"):
        ctx.picked[key] = f"{ctx.label(key)} ({currency})"
    _classic(ctx)


@_family("A DIN 5008 business letter: return-address line over the window address, an "
         "information block with contact rows, salutation, closing and a register footer",
         fonts=("Times", "Helvetica"))  # fmt: skip
def _letterhead_window(ctx: Ctx) -> None:
    s, inv = ctx.sheet, ctx.inv
    seller = inv.seller
    s.right(RIGHT, 800, seller.trade_name or seller.name, 16, bold=True)
    s.text(LEFT, 742, f"{seller.name} · {seller.street} · {seller.city_line}", 6.5)
    party_block(ctx, LEFT, 726, inv.buyer, None, vat=False)
    rows = [*meta_rows(ctx), (ctx.label("phone"), seller.phone), (ctx.label("email"), seller.email)]
    draw_rows(ctx, rows, 360, 450, 740, size=8)
    s.text(LEFT, 600, _title(ctx), 13, bold=True)
    y = s.paragraph(LEFT, 580, [ctx.label("intro")], 10) - 10
    y = _body(ctx, y)
    s.paragraph(LEFT, min(y - 10, 190), [ctx.label("thanks")], 10)
    footer_columns(ctx, seller_columns(ctx))


@_family("The buyer's VAT id printed at the top; the seller and its VAT id in a block at the "
         "bottom")  # fmt: skip
def _buyer_vat_id(ctx: Ctx) -> None:
    s, inv = ctx.sheet, ctx.inv
    s.text(LEFT, 790, _title(ctx), 20, bold=True)
    y = party_block(ctx, LEFT, 760, inv.buyer, ctx.label("buyer"), vat=False)
    s.text(LEFT, y, f"{ctx.label('their_vat')}: {inv.buyer.vat_id}", 9)
    draw_rows(ctx, meta_rows(ctx), 330, 440, 760, size=9)
    y = _body(ctx, y - 40)
    y = min(y - 10, 210)
    y = party_block(ctx, LEFT, y, inv.seller, ctx.label("seller"), size=8.5)
    s.paragraph(300, min(y + 50, 190), bank_lines(ctx), 8.5)


FAMILIES: Mapping[str, Family] = MappingProxyType(dict(_REGISTRY))

# Never used to tune the extractor; reported apart. One in four, each with a tuned relative:
# two_column_header (form_parties), minus_baseline (trailing_minus), bank_box (footer_seller),
# letterhead_window (compound_labels), iso_dates (written_dates), currency_in_labels
# (trailing_minus: the currency stated once).
HELD_OUT_FAMILIES: frozenset[str] = frozenset(
    {"two_column_header", "minus_baseline", "bank_box", "letterhead_window", "iso_dates",
     "currency_in_labels"}
)  # fmt: skip
