"""Money as the archive compares it: amounts as canonical decimal text, currencies as codes.

Two claims on one invoice number are the same amount when their canonical texts are equal
(`1487.50` and `1487.5` are). The migrations use these functions too, so this module imports
nothing from the rest of bastion.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["canonical_amount", "canonical_currency"]


def canonical_amount(value: Any) -> str | None:
    """An amount as canonical decimal text (`1487.5`, `100`), or None if it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return format(amount.normalize(), "f")[:64]


def canonical_currency(value: Any) -> str | None:
    """A currency code, upper-cased, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().upper()[:8]
