"""The parts invoice layouts are built from: party blocks, invoice data, the line items table,
totals (as rows, as a header-row table, with a VAT breakdown), bank details and footers.

`Ctx` carries one document while it is drawn: the sheet, the invoice content, its `Formats`,
the random source for layout choices, and the labels picked for it (each label key gets one of
its language's variants per document; a family may set one first, as `currency_in_labels`
does).
Amounts are passed positive, as the content keeps them; `Ctx.amount` applies the credit-note
sign and the minus style.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from bastion.pipeline.generated.content import Invoice, Line, Party
from bastion.pipeline.generated.drawing import Sheet
from bastion.pipeline.generated.formats import Formats

__all__ = [
    "Ctx",
    "bank_lines",
    "draw_rows",
    "draw_totals",
    "footer_columns",
    "items_table",
    "meta_rows",
    "party_block",
    "seller_columns",
    "tax_breakdown",
    "totals_header_row",
    "totals_rows",
    "vat_line",
]

LEFT, RIGHT = 50.0, 545.0
Row = tuple[str, Decimal, bool]  # label, amount (positive = as the invoice adds it), bold


@dataclass
class Ctx:
    sheet: Sheet
    inv: Invoice
    fmt: Formats
    rng: random.Random
    picked: dict[str, str] = field(default_factory=dict)

    def label(self, key: str, **values: object) -> str:
        """This document's wording of a label (one variant per key and document)."""
        if key not in self.picked:
            variants = self.inv.language.labels[key]
            self.picked[key] = self.rng.choice(variants)
        return self.picked[key].format(**values) if values else self.picked[key]

    def money(self, value: Decimal) -> str:
        """An amount as printed (credit-note sign applied); unsigned when the minus is apart."""
        return self.fmt.amount(value * self.inv.sign)

    def amount(
        self, x: float, y: float, value: Decimal, size: float = 10, bold: bool = False
    ) -> None:
        """An amount right-aligned at `x`; with the `apart` minus style a negative amount's
        minus is drawn separately, raised off the number's baseline."""
        signed = value * self.inv.sign
        text = self.fmt.amount(signed)
        self.sheet.right(x, y, text, size, bold)
        if signed < 0 and self.fmt.minus == "apart":
            self.sheet.right(
                x - self.sheet.measure(text, size, bold) - 2, y + size * 0.45, "-", size
            )

    def date(self, value: dt.date) -> str:
        return self.fmt.date(value)


def vat_line(ctx: Ctx, party: Party) -> str:
    """The party's VAT id with its country's label; Spanish and Italian ids are often printed
    without their country prefix."""
    label = ctx.rng.choice(party.country.vat_label)
    vat = party.vat_id
    if label in ("CIF", "NIF", "P.IVA") and ctx.rng.random() < 0.6:
        vat = vat[2:]
    elif ctx.rng.random() < 0.3:
        vat = f"{vat[:2]} {vat[2:]}"
    return f"{label}: {vat}"


def party_block(
    ctx: Ctx,
    x: float,
    y: float,
    party: Party,
    heading: str | None,
    *,
    form: bool = False,
    vat: bool = True,
    trade_name: bool = False,
    size: float = 10,
) -> float:
    """A party's name, address and VAT id from (x, y) down; `form` prints `Name: …` rows with
    the trade name above them. Returns the y below the block."""
    sheet, step = ctx.sheet, size * 1.4
    if heading:
        sheet.text(x, y, heading, size, bold=True)
        y -= step
    if trade_name and party.trade_name:
        sheet.text(x, y, party.trade_name, size + 3, bold=True)
        y -= step + 2
    if form:
        rows = [
            (ctx.label("name"), party.name),
            (ctx.label("address"), f"{party.street}, {party.city_line}"),
        ]
        if vat:
            label, _, value = vat_line(ctx, party).partition(": ")
            rows.append((label, value))
        tab = x + max(sheet.measure(f"{label}:", size) for label, _ in rows) + 8
        for label, value in rows:
            sheet.text(x, y, f"{label}:", size)
            sheet.text(tab, y, value, size)
            y -= step
        return y
    sheet.text(x, y, party.name, size + 1, bold=True)
    y -= step
    lines = [party.street, party.city_line]
    if party.country.code != ctx.inv.seller.country.code:
        lines.append(party.country.name)  # a buyer abroad
    if vat:
        lines.append(vat_line(ctx, party))
    return sheet.paragraph(x, y, lines, size)


def meta_rows(ctx: Ctx, *, number: bool = True, due: bool = True) -> list[tuple[str, str]]:
    """The invoice data as (label, value) rows: number, date, customer number, order, due."""
    inv, credit = ctx.inv, ctx.inv.credit_note
    rows = []
    if number:
        rows.append((ctx.label("credit_number" if credit else "number"), inv.number))
    rows.append((ctx.label("credit_date" if credit else "date"), ctx.date(inv.issue_date)))
    rows.append((ctx.label("customer_id"), inv.customer_id))
    if ctx.rng.random() < 0.5:
        rows.append((ctx.label("order"), inv.order_ref))
    if due and inv.due_date is not None:
        rows.append((ctx.label("due"), ctx.date(inv.due_date)))
    return rows


def draw_rows(
    ctx: Ctx,
    rows: Sequence[tuple[str, str]],
    x_label: float,
    x_value: float,
    y: float,
    *,
    right: bool = False,
    size: float = 10,
) -> float:
    """Label/value rows: a grid (labels at `x_label`, values at `x_value`), or with `right`
    "Label: value" right-aligned at `x_value`."""
    for label, value in rows:
        if right:
            ctx.sheet.right(x_value, y, f"{label}: {value}", size)
        else:
            ctx.sheet.text(x_label, y, f"{label}:", size)
            ctx.sheet.text(x_value, y, value, size)
        y -= size * 1.5
    return y


_COLUMNS = {  # key -> (right edge or left start, right-aligned)
    "position": (50.0, False),
    "description": (75.0, False),
    "quantity": (330.0, True),
    "unit": (338.0, False),
    "unit_price": (430.0, True),
    "rate": (475.0, True),
    "amount": (RIGHT, True),
}


def items_table(
    ctx: Ctx,
    y: float,
    lines: Sequence[Line],
    *,
    columns: Sequence[str] = ("description", "quantity", "unit_price", "amount"),
    first: int = 1,
    size: float = 9,
) -> float:
    """The line items under a header row; returns the y below the last line."""
    sheet, has_pos = ctx.sheet, "position" in columns
    heads = {"position": "#", "unit": ctx.label("unit"), "rate": ctx.label("rate")}

    def x_of(key: str) -> float:
        return 50.0 if key == "description" and not has_pos else _COLUMNS[key][0]

    sheet.rule(y + size + 4)
    for key in columns:
        head = heads.get(key) or ctx.label(key)
        (sheet.right if _COLUMNS[key][1] else sheet.text)(x_of(key), y, head, size, True)
    sheet.rule(y - 5)
    for index, line in enumerate(lines, start=first):
        y -= size * 2
        cells = {
            "position": str(index),
            "description": line.description,
            "quantity": ctx.fmt.quantity(line.quantity),
            "unit": line.unit,
            "rate": ctx.fmt.rate(line.rate),
        }
        for key in columns:
            if key in ("unit_price", "amount"):
                value = line.unit_price if key == "unit_price" else line.amount
                ctx.sheet.right(x_of(key), y, ctx.fmt.signed(value * ctx.inv.sign), size)
            elif _COLUMNS[key][1]:
                sheet.right(x_of(key), y, cells[key], size)
            else:
                sheet.text(x_of(key), y, cells[key], size)
    sheet.rule(y - 8)
    return y - 24


def totals_rows(ctx: Ctx, *, compound: bool = False) -> list[Row]:
    """The totals as rows: items sum and charges/allowances when there are any, the net total,
    VAT per rate (and its total when there are several), the total, prepaid and amount due."""
    inv = ctx.inv
    rows: list[Row] = []
    if inv.adjustments:
        rows.append((ctx.label("lines_total"), inv.lines_total, False))
        for adj in inv.adjustments:
            signed = adj.amount if adj.kind == "charge" else -adj.amount
            rows.append((ctx.label(adj.kind), signed, False))
    rows.append((ctx.label("subtotal_long" if compound else "subtotal"), inv.subtotal, False))
    if compound and len(inv.tax_rows) == 1:
        rows.append(
            (f"{ctx.label('tax_long')} {ctx.fmt.rate(inv.tax_rows[0].rate)}", inv.tax, False)
        )
    else:
        for row in inv.tax_rows:
            rows.append((ctx.label("tax_row", rate=ctx.fmt.rate(row.rate)), row.tax, False))
        if len(inv.tax_rows) > 1:
            rows.append((ctx.label("tax_long" if compound else "tax_total"), inv.tax, False))
    key = "total_long" if compound else "credit_total" if inv.credit_note else "total"
    rows.append((ctx.label(key), inv.total, not inv.prepaid))
    if inv.prepaid:
        rows.append((ctx.label("prepaid"), -inv.prepaid, False))
        rows.append((ctx.label("amount_due"), inv.amount_due, True))
    return rows


def draw_totals(
    ctx: Ctx, rows: Sequence[Row], x_label: float, y: float, *, x_value: float = RIGHT
) -> float:
    """Totals rows: labels left-aligned at `x_label`, amounts right-aligned at `x_value`."""
    for label, value, bold in rows:
        if bold:
            ctx.sheet.rule(y + 13, x_label, x_value)
        ctx.sheet.text(x_label, y, label, 10, bold)
        ctx.amount(x_value, y, value, 10, bold)
        y -= 17
    return y


def totals_header_row(ctx: Ctx, rows: Sequence[Row], y: float) -> float:
    """Totals as a table: the labels in one row, the amounts in the row below, in boxes."""
    width = (RIGHT - LEFT) / len(rows)
    ctx.sheet.box(LEFT, y - 26, RIGHT - LEFT, 42)
    ctx.sheet.rule(y - 6)
    for index, (label, value, bold) in enumerate(rows):
        x = LEFT + width * (index + 1) - 4
        ctx.sheet.right(x, y, label, 7.5, bold=True)
        ctx.amount(x, y - 20, value, 9, bold)
    return y - 50


def tax_breakdown(ctx: Ctx, y: float, x: float = 50.0) -> float:
    """The VAT breakdown: rate, base and tax per rate, then their sums."""
    sheet = ctx.sheet
    heads = (ctx.label("rate"), ctx.label("base"), ctx.label("tax_col"))
    edges = (x + 60, x + 160, x + 250)
    for edge, head in zip(edges, heads, strict=True):
        sheet.right(edge, y, head, 8, bold=True)
    sheet.rule(y - 4, x, x + 255)
    for row in ctx.inv.tax_rows:
        y -= 13
        sheet.right(edges[0], y, ctx.fmt.rate(row.rate), 8)
        ctx.amount(edges[1], y, row.base, 8)
        ctx.amount(edges[2], y, row.tax, 8)
    sheet.rule(y - 4, x, x + 255)
    y -= 14
    sheet.text(x, y, ctx.label("sum"), 8, bold=True)
    ctx.amount(edges[1], y, ctx.inv.subtotal, 8, bold=True)
    ctx.amount(edges[2], y, ctx.inv.tax, 8, bold=True)
    return y - 16


def bank_lines(ctx: Ctx, *, holder: bool = False) -> list[str]:
    inv = ctx.inv
    lines = [f"{ctx.label('bank_name')}: {inv.bank_name}"]
    if holder:
        lines.append(f"{ctx.label('holder')}: {inv.seller.name}")
    grouped = ctx.rng.random() < 0.7
    lines += [f"IBAN: {ctx.fmt.iban(inv.iban, grouped)}", f"BIC: {inv.bic}"]
    return lines


def seller_columns(ctx: Ctx) -> list[list[str]]:
    """The seller's particulars as a footer prints them, in three columns."""
    s = ctx.inv.seller
    return [
        [s.name, s.street, s.city_line, f"{ctx.label('phone')} {s.phone}"],
        [vat_line(ctx, s), s.register, f"{ctx.label('director')}: {s.director}"],
        bank_lines(ctx),
    ]


def footer_columns(ctx: Ctx, columns: Sequence[Sequence[str]], y: float = 70) -> None:
    """Small print in columns across the bottom of the page, under a rule."""
    ctx.sheet.rule(y + 12)
    width = (RIGHT - LEFT) / len(columns)
    for index, lines in enumerate(columns):
        ctx.sheet.paragraph(LEFT + index * width, y, list(lines), 6.5)
