"""The random content of one generated invoice, and its truth in the extractor's field names.

`make_invoice(language, rng, options)` draws everything a layout prints: the number, dates
(issue, due from the payment terms, service period and delivery date near the issue date), the
seller and the buyer (legal forms, addresses, a VAT id and an IBAN whose check digits are valid
by `bastion.business_ids`), line items whose amounts add up, one to three VAT rates, optional
charges, allowances and a prepaid amount. Amounts are `Decimal` cents, rounded half up per
line and per VAT rate, so subtotal + tax = total holds exactly.

Amounts are kept positive; `Invoice.sign` is -1 for a credit note, whose layouts print every
amount negative. `Invoice.truth()` gives the fields an extractor should find:

- `subtotal`: the total without VAT (EN 16931 BT-109: lines + charges - allowances);
- `tax`: the VAT total (BT-110); `total`: the total with VAT (BT-112), not the amount due after
  a prepaid amount;
- a credit note's amounts as printed, negative (`CREDIT_NOTE_SIGN`), and no due date;
- `vat_id` and `iban` compact (no spaces), `issuer` and `customer` the legal names.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bastion.business_ids import check_vat_id, iban_valid
from bastion.pipeline.generated.vocabulary import (
    BANKS,
    CONTACT,
    NUMBER_PATTERNS,
    PEOPLE,
    TRADE_NAMES,
    Country,
    Language,
)

__all__ = [
    "CREDIT_NOTE_SIGN",
    "Adjustment",
    "ContentOptions",
    "Invoice",
    "Line",
    "Party",
    "TaxRow",
    "make_invoice",
]

# The sign a credit note's truth amounts carry: -1, the amounts as printed (negative). The one
# place to change should the convention become "credit notes are scored as positive amounts".
CREDIT_NOTE_SIGN = -1

CENT = Decimal("0.01")
_FIRST_DAY = dt.date(2023, 1, 1)
_TERMS_DAYS = (10, 14, 21, 30, 45, 60)


@dataclass(frozen=True)
class Party:
    """A seller or a buyer."""

    name: str  # the legal name, with its legal form
    trade_name: str | None  # a brand printed above the legal name, or None
    street: str
    city: str
    city_line: str  # postcode and city in the country's order
    country: Country
    vat_id: str  # compact
    register: str  # the company register line
    phone: str
    email: str
    director: str


@dataclass(frozen=True)
class Line:
    description: str
    unit: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    rate: Decimal


@dataclass(frozen=True)
class Adjustment:
    """A document-level charge (added) or allowance (deducted), with its VAT rate."""

    kind: str  # "charge" or "allowance"
    amount: Decimal  # positive
    rate: Decimal


@dataclass(frozen=True)
class TaxRow:
    rate: Decimal
    base: Decimal
    tax: Decimal


@dataclass(frozen=True)
class ContentOptions:
    """What a layout family asks of the content (ranges are inclusive)."""

    items: tuple[int, int] = (1, 5)
    rates: tuple[int, int] = (1, 1)
    charges: bool = False
    prepaid: bool = False
    credit_note: bool = False


@dataclass(frozen=True)
class Invoice:
    language: Language
    credit_note: bool
    number: str
    issue_date: dt.date
    due_date: dt.date | None
    terms_days: int
    period: tuple[dt.date, dt.date]
    delivery_date: dt.date
    currency: str
    seller: Party
    buyer: Party
    iban: str
    bic: str
    bank_name: str
    customer_id: str
    order_ref: str
    lines: tuple[Line, ...]
    adjustments: tuple[Adjustment, ...]
    lines_total: Decimal
    subtotal: Decimal
    tax_rows: tuple[TaxRow, ...]
    tax: Decimal
    total: Decimal
    prepaid: Decimal
    amount_due: Decimal

    @property
    def sign(self) -> int:
        """How amounts are printed: -1 on a credit note."""
        return -1 if self.credit_note else 1

    def truth(self) -> dict[str, Any]:
        """The fields an extractor should read, in its names (see the module docstring)."""
        sign = CREDIT_NOTE_SIGN if self.credit_note else 1
        return {
            "invoice_number": self.number,
            "issue_date": self.issue_date.isoformat(),
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "currency": self.currency,
            "issuer": self.seller.name,
            "customer": self.buyer.name,
            "subtotal": float(sign * self.subtotal),
            "tax": float(sign * self.tax),
            "total": float(sign * self.total),
            "vat_id": self.seller.vat_id,
            "iban": self.iban,
        }


def _fill(template: str, rng: random.Random) -> str:
    """A template's characters drawn: 9 a digit, 1 a digit 1-9, A a letter, X either."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    pools = {"9": "0123456789", "1": "123456789", "A": letters, "X": letters + "0123456789"}
    return "".join(rng.choice(pools[ch]) if ch in pools else ch for ch in template)


def _vat_id(country: Country, rng: random.Random) -> str:
    """A VAT id in the country's format whose check digits `check_vat_id` accepts."""
    prefix = "EL" if country.code == "GR" else country.code
    for _ in range(10_000):
        candidate = prefix + _fill(country.vat_template, rng)
        if check_vat_id(candidate).ok:
            return candidate
    raise RuntimeError(f"no valid {country.code} VAT id drawn")  # pragma: no cover


def _iban(country: Country, rng: random.Random) -> str:
    """An IBAN of the country's length with the check digits that make it valid."""
    bban = _fill(country.iban_bban, rng)
    for check in range(2, 99):
        candidate = f"{country.code}{check:02d}{bban}"
        if iban_valid(candidate):
            return candidate
    raise RuntimeError(f"no valid {country.code} IBAN for {bban}")  # pragma: no cover


def _company(language: Language, rng: random.Random, avoid: str = "") -> str:
    """A company name; none of its words before the legal form is one of `avoid`'s, so a
    seller and its buyer never share a name but for the legal form."""
    first, second, legal = language.company
    while True:
        a, b = rng.choice(first), rng.choice(second)
        if a not in avoid and b not in avoid:
            return language.company_order.format(a=a, b=b, legal=rng.choice(legal))


def _slug(name: str) -> str:
    words = [w for w in name.lower().split() if w.isalpha()][:2]
    return "".join(ch for ch in "-".join(words) if ch.isascii())


def _party(language: Language, country: Country, rng: random.Random, avoid: str = "") -> Party:
    name = _company(language, rng, avoid)
    postcode, city = rng.choice(country.cities)
    vat_id = _vat_id(country, rng)
    siren = vat_id[4:]
    register = rng.choice(country.register).format(
        n=f"{rng.randint(100000, 999999)}",
        city=city,
        siren=f"{siren[:3]} {siren[3:6]} {siren[6:]}",
    )
    dial, tld = CONTACT[country.code]
    return Party(
        name=name,
        trade_name=rng.choice(TRADE_NAMES) if rng.random() < 0.5 else None,
        street=rng.choice(language.streets).format(n=rng.randint(1, 120)),
        city=city,
        city_line=country.address_line.format(postcode=postcode, city=city),
        country=country,
        vat_id=vat_id,
        register=register,
        phone=f"+{dial} {rng.randint(10, 99)} {rng.randint(100000, 9999999)}",
        email=f"{rng.choice(('info', 'billing', 'accounts'))}@{_slug(name) or 'mail'}.{tld}",
        director=rng.choice(PEOPLE[language.code]),
    )


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _lines(
    language: Language, rates: tuple[Decimal, ...], count: int, rng: random.Random
) -> tuple[Line, ...]:
    lines = []
    for index in range(count):
        description, unit = rng.choice(language.items)
        if unit in ("h", "Std.", "uur"):
            quantity = Decimal(rng.randint(1, 24)) / 2
        else:
            quantity = Decimal(rng.randint(1, 12))
        price = Decimal(rng.randint(250, 95_000)) / 100
        rate = rates[index] if index < len(rates) else rng.choice(rates)
        lines.append(Line(description, unit, quantity, price, _cents(quantity * price), rate))
    return tuple(lines)


def _number(language: Language, credit: bool, issue: dt.date, rng: random.Random) -> str:
    patterns = NUMBER_PATTERNS[language.code][1 if credit else 0]
    return rng.choice(patterns).format(
        y=issue.year, yy=f"{issue.year % 100:02d}", m=issue.month, n=rng.randint(1, 9999)
    )


def _tax_rows(lines: tuple[Line, ...], adjustments: tuple[Adjustment, ...]) -> tuple[TaxRow, ...]:
    bases: dict[Decimal, Decimal] = {}
    for line in lines:
        bases[line.rate] = bases.get(line.rate, Decimal(0)) + line.amount
    for adj in adjustments:
        signed = adj.amount if adj.kind == "charge" else -adj.amount
        bases[adj.rate] = bases.get(adj.rate, Decimal(0)) + signed
    rows = sorted(bases.items(), key=lambda item: -item[0])
    return tuple(TaxRow(rate, base, _cents(base * rate / 100)) for rate, base in rows)


def make_invoice(language: Language, rng: random.Random, options: ContentOptions) -> Invoice:
    """One invoice's content, drawn from `rng` (the same state gives the same invoice)."""
    country = rng.choice(language.countries)
    issue = _FIRST_DAY + dt.timedelta(days=rng.randint(0, 1000))
    terms = rng.choice(_TERMS_DAYS)
    month_start = issue.replace(day=1)
    period_end = month_start - dt.timedelta(days=1)
    n_rates = min(rng.randint(*options.rates), len(country.rates))
    rates = country.rates[:n_rates]
    lines = _lines(language, rates, max(rng.randint(*options.items), n_rates), rng)
    lines_total = sum((line.amount for line in lines), Decimal(0))
    adjustments: tuple[Adjustment, ...] = ()
    if options.charges:
        allowance = _cents(lines_total * Decimal(rng.choice((2, 3, 5, 10))) / 100)
        charge = Decimal(rng.randint(500, 9_000)) / 100
        adjustments = (
            Adjustment("allowance", allowance, rates[0]),
            Adjustment("charge", charge, rates[0]),
        )
    tax_rows = _tax_rows(lines, adjustments)
    subtotal = sum((row.base for row in tax_rows), Decimal(0))
    tax = sum((row.tax for row in tax_rows), Decimal(0))
    total = subtotal + tax
    prepaid = Decimal(0)
    if options.prepaid:
        prepaid = _cents(total * Decimal(rng.randint(20, 50)) / 100).to_integral_value() or CENT
    seller = _party(language, country, rng)
    buyer = _party(language, rng.choice(language.countries), rng, avoid=seller.name)
    iban = _iban(country, rng)
    bank_code = iban[4:8] if iban[4:8].isalpha() else _fill("AAAA", rng)
    bic = bank_code + country.code + _fill(country.bic_location, rng)
    return Invoice(
        language=language,
        credit_note=options.credit_note,
        number=_number(language, options.credit_note, issue, rng),
        issue_date=issue,
        due_date=None if options.credit_note else issue + dt.timedelta(days=terms),
        terms_days=terms,
        period=(period_end.replace(day=1), period_end),
        delivery_date=issue - dt.timedelta(days=rng.randint(1, 6)),
        currency=country.currency,
        seller=seller,
        buyer=buyer,
        iban=iban,
        bic=bic + ("XXX" if rng.random() < 0.3 else ""),
        bank_name=rng.choice(BANKS[country.code]).format(city=rng.choice(country.cities)[1]),
        customer_id=_fill(rng.choice(("K19999", "10999", "C-99999")), rng),
        order_ref=_fill(rng.choice(("PO-99999", "B-9999-999", "ORD99999")), rng),
        lines=lines,
        adjustments=adjustments,
        lines_total=lines_total,
        subtotal=subtotal,
        tax_rows=tax_rows,
        tax=tax,
        total=total,
        prepaid=prepaid,
        amount_due=total - prepaid,
    )
