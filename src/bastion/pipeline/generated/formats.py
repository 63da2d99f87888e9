"""How a generated invoice prints its values: amounts, dates, rates and quantities.

`Formats` holds one document's choices: the language (decimal and group separators, month
names), the date style (`numeric` as the language writes it, `long` written out, `iso`), the
money style (`symbol` where the language puts it, `code` as "EUR", `plain` a bare number) and
the minus style of negative amounts (`leading` "-12,00", `trailing` "12,00-", `apart`: the
number is printed unsigned and the layout draws the minus itself, on another baseline).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from bastion.pipeline.generated.vocabulary import Language

__all__ = ["DATE_STYLES", "MINUS_STYLES", "MONEY_STYLES", "Formats"]

DATE_STYLES = ("numeric", "long", "iso")
MONEY_STYLES = ("symbol", "code", "plain")
MINUS_STYLES = ("leading", "trailing", "apart")
_SYMBOLS = {"EUR": "€", "GBP": "£"}


@dataclass(frozen=True)
class Formats:
    language: Language
    currency: str
    dates: str = "numeric"
    money: str = "symbol"
    minus: str = "leading"

    def number(self, value: Decimal, places: int = 2) -> str:
        """`value` unsigned, with the language's separators: 1.234,56 / 1,234.56 / 1 234,56."""
        text = f"{abs(value):,.{places}f}"
        lang = self.language
        return text.replace(",", "\0").replace(".", lang.decimal).replace("\0", lang.group)

    def signed(self, value: Decimal) -> str:
        """The number with its minus as the minus style places it (none when `apart`)."""
        text = self.number(value)
        if value >= 0 or self.minus == "apart":
            return text
        return text + "-" if self.minus == "trailing" else "-" + text

    def amount(self, value: Decimal) -> str:
        """A money amount with the currency as the money style prints it."""
        text = self.signed(value)
        lang = self.language
        if self.money == "plain":
            return text
        if self.money == "code":
            return f"{self.currency} {text}" if lang.symbol_first else f"{text} {self.currency}"
        symbol = _SYMBOLS.get(self.currency, self.currency)
        space = " " if lang.symbol_space else ""
        return f"{symbol}{space}{text}" if lang.symbol_first else f"{text}{space}{symbol}"

    def quantity(self, value: Decimal) -> str:
        return (
            self.number(value, 0) if value == value.to_integral_value() else self.number(value, 1)
        )

    def rate(self, value: Decimal) -> str:
        places = 0 if value == value.to_integral_value() else 1
        return self.number(value, places) + (" %" if self.language.rate_space else "%")

    def date(self, value: dt.date) -> str:
        lang = self.language
        if self.dates == "iso":
            return value.isoformat()
        if self.dates == "long":
            day = lang.first_day if value.day == 1 else str(value.day)
            return lang.long_date.format(day=day, month=lang.months[value.month - 1], y=value.year)
        return lang.numeric_date.format(d=value.day, m=value.month, y=value.year)

    def iban(self, iban: str, grouped: bool = True) -> str:
        """An IBAN in groups of four (as printed on paper) or compact."""
        if not grouped:
            return iban
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
