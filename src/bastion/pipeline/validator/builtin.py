"""Built-in validation rule types and the interface every rule type implements.

A rule type has a pydantic model for its `params` (checked when the rules file is loaded), a set
of named checks (each with a default message template and the placeholders it fills) and an async
`evaluate` that returns `Emission`s. The engine in `rules.py` turns emissions into `Finding`s with
the rule's id, severity and message template.
"""

from __future__ import annotations

import dataclasses
import math
import string
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bastion.config import DEFAULT_REVIEW_CONFIDENCE
from bastion.pipeline.model import DuplicateClaim, ExtractionResult, Outcome, Severity
from bastion.pipeline.validator.checks import (
    VAT_COUNTRIES,
    WITHDRAWN_CURRENCIES,
    CheckResult,
    check_bic,
    check_iban,
    check_vat_id,
    currency_minor_units,
    is_currency_code,
)


@dataclass(frozen=True)
class InvoiceKey:
    """What the duplicate rule claims: a document's issuer and invoice number, with its amount.
    `eligible` is False when the document's other rules already make it invalid: it is then
    checked against the holder but claims nothing."""

    issuer: str
    invoice_number: str
    total: Any
    currency: Any
    eligible: bool


ClaimInvoice = Callable[[InvoiceKey], Awaitable[DuplicateClaim]]
"""`claim_invoice(key)` -> the archive's atomic answer: is another document the holder?"""

# Placeholders every message template may use, whatever the check.
COMMON_PLACEHOLDERS: frozenset[str] = frozenset({"rule_id", "document_type", "field", "detail"})

SEVERITY_RANK: Mapping[Severity, int] = {"info": 0, "warning": 1, "error": 2}


def template_fields(template: str) -> set[str]:
    """The placeholder names in a message template.

    Only plain `{name}` placeholders are allowed: no conversions, format specs, attribute or
    index access. Raises ValueError with the reason otherwise (including unbalanced braces).
    """
    names: set[str] = set()
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"placeholder {{{name}}} must be a plain name")
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} must not have a format spec or conversion")
        names.add(name)
    return names


@dataclass(frozen=True)
class Check:
    """One thing a rule type can report: its default message and the placeholders it fills."""

    default: str
    extra: frozenset[str] = frozenset()
    # Appended to the rule's id in the finding, for a check that deserves its own finding id.
    rule_suffix: str = ""

    @property
    def placeholders(self) -> frozenset[str]:
        return COMMON_PLACEHOLDERS | self.extra | template_fields(self.default)


@dataclass(frozen=True)
class Emission:
    """A problem a rule type found. `max_severity` caps the rule's severity for this check."""

    check: str
    field: str | None
    values: Mapping[str, str] = dataclasses.field(default_factory=dict)
    max_severity: Severity | None = None


@dataclass(frozen=True)
class RuleContext:
    """What a rule sees: the extraction, today's date, the required fields, the archive's
    claims, the confidence below which a field goes to review (`pipeline.review_confidence`)
    and, for a rule type that `runs_last`, the outcome of all the other rules."""

    result: ExtractionResult
    today: date
    required_fields: tuple[str, ...] = ()
    claim_invoice: ClaimInvoice | None = None
    outcome_so_far: Outcome | None = None
    review_confidence: float = DEFAULT_REVIEW_CONFIDENCE


P = TypeVar("P", bound=BaseModel)


class Params(BaseModel):
    """Base of every rule type's params: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleType(ABC, Generic[P]):
    """A kind of rule the rules file can name in `type:`."""

    name: ClassVar[str]
    params_model: type[P]
    checks: ClassVar[Mapping[str, Check]]
    # Evaluated after every other rule, with their outcome in `RuleContext.outcome_so_far`.
    runs_last: ClassVar[bool] = False

    @abstractmethod
    async def evaluate(self, params: P, ctx: RuleContext) -> list[Emission]:
        """Inspect the extraction; return one emission per problem found."""


# --------------------------------------------------------------------------------------------
# Value helpers


def show(value: Any, limit: int = 60) -> str:
    """A short, single-line rendering of a document value for a message."""
    if value is None:
        return "(missing)"
    if isinstance(value, str):
        text = value if len(value) <= limit else value[: limit - 3] + "..."
        return repr(text)
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict | set):
        return len(value) == 0
    return False


class NotANumber(ValueError):
    """A value that should be an amount but is not a finite number."""


def to_decimal(value: Any) -> Decimal:
    """An amount as a Decimal (floats via their shortest repr, so 0.1 stays 0.1)."""
    if isinstance(value, bool):
        raise NotANumber(value)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise NotANumber(value)
        number = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise NotANumber(value) from None
    else:
        raise NotANumber(value)
    if not number.is_finite():
        raise NotANumber(value)
    # Bound magnitude and precision so arithmetic and formatting on hostile values stay cheap.
    if number:
        digits = "".join(map(str, number.as_tuple().digits))
        exponent = number.as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        significant = digits.rstrip("0")
        smallest = exponent + len(digits) - len(significant)
        if len(significant) > 40 or number.adjusted() > 18 or smallest < -20:
            raise NotANumber(value)
    return number


def fmt_amount(amount: Decimal, places: int) -> str:
    """Fixed-point with the currency's decimals, or more if the value itself has more."""
    exponent = amount.as_tuple().exponent
    own = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    text = f"{amount:.{max(places, own)}f}"
    if own > places:  # drop trailing zeros beyond the currency's decimals
        head, _, tail = text.partition(".")
        tail = tail.rstrip("0").ljust(places, "0")
        text = f"{head}.{tail}" if tail else head
    return text


def to_date(value: Any) -> date:
    """An ISO date (or datetime) string, or a date, as a date. Raises ValueError otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            return datetime.fromisoformat(text).date()
    raise ValueError(f"not a date: {value!r}")


def iter_texts(value: Any) -> Iterator[Any]:
    """The value itself, or each element when the field holds a list."""
    if isinstance(value, list | tuple):
        yield from value
    else:
        yield value


def _currency_of(ctx: RuleContext, field_name: str) -> str | None:
    value = ctx.result.value(field_name)
    return value.strip().upper() if isinstance(value, str) and value.strip() else None


def _iso_codes(codes: list[str] | None) -> list[str] | None:
    if codes is None:
        return None
    out = [code.strip().upper() for code in codes]
    bad = [code for code in out if not is_currency_code(code)]
    if bad:
        raise ValueError(f"not ISO 4217 currency codes: {', '.join(bad)}")
    return out


# --------------------------------------------------------------------------------------------
# required


class RequiredParams(Params):
    fields: list[str] = Field(min_length=1)


class RequiredRule(RuleType[RequiredParams]):
    """Fields that must be present and non-empty."""

    name = "required"
    params_model = RequiredParams
    checks = {"missing": Check("required field {field} is missing")}

    async def evaluate(self, params: RequiredParams, ctx: RuleContext) -> list[Emission]:
        return [
            Emission("missing", name)
            for name in params.fields
            if is_missing(ctx.result.value(name))
        ]


# --------------------------------------------------------------------------------------------
# arithmetic


class ArithmeticParams(Params):
    abs_tolerance: float = Field(0.01, ge=0)
    rel_tolerance: float = Field(0.0, ge=0, le=1)
    # Allow half a minor unit per line item when summing lines (each line may have been rounded).
    line_rounding: bool = True
    check_line_amounts: bool = True
    line_items_field: str = "line_items"
    subtotal_field: str = "subtotal"
    tax_field: str = "tax"
    total_field: str = "total"
    currency_field: str = "currency"


class ArithmeticRule(RuleType[ArithmeticParams]):
    """Line items add up to the subtotal; subtotal + tax = total; quantity x unit price = amount.

    Tolerance: `max(abs_tolerance, rel_tolerance * |expected|)`; summing n line items adds
    `n * half a minor unit` when `line_rounding` is on, and a line's quantity x unit price may be
    off by half a minor unit more (the amount was rounded). Comparisons are decimal, so a
    difference exactly equal to the tolerance passes. Line items are compared with the subtotal,
    or with the total when there is neither subtotal nor tax.
    """

    name = "arithmetic"
    params_model = ArithmeticParams
    checks = {
        "line_sum": Check(
            "line items sum to {computed}, but {field} is {expected} "
            "(difference {difference}, tolerance {tolerance})"
        ),
        "total": Check(
            "{subtotal_field} {subtotal} + {tax_field} {tax} = {computed}, "
            "but {field} is {expected}"
        ),
        "line_amount": Check(
            "line item {index} ({description}): quantity {quantity} x unit price "
            "{unit_price} = {computed}, but amount is {expected}"
        ),
        "not_a_number": Check("{what} is not a number: {value}"),
    }

    async def evaluate(self, params: ArithmeticParams, ctx: RuleContext) -> list[Emission]:
        out: list[Emission] = []
        places = currency_minor_units(_currency_of(ctx, params.currency_field))
        half_unit = Decimal(5) * Decimal(10) ** -(places + 1)
        abs_tol = to_decimal(params.abs_tolerance)
        rel_tol = to_decimal(params.rel_tolerance)

        def tolerance(expected: Decimal, rounded_terms: int) -> Decimal:
            base = max(abs_tol, rel_tol * abs(expected))
            return base + (half_unit * rounded_terms if params.line_rounding else 0)

        def amount(name: str) -> Decimal | None:
            value = ctx.result.value(name)
            if is_missing(value):
                return None
            try:
                return to_decimal(value)
            except NotANumber:
                out.append(Emission("not_a_number", name, {"what": name, "value": show(value)}))
                return None

        subtotal = amount(params.subtotal_field)
        tax = amount(params.tax_field)
        total = amount(params.total_field)

        line_sum = self._line_sum(params, ctx, out, places, tolerance)
        if line_sum is not None:
            target_name, target = params.subtotal_field, subtotal
            if subtotal is None and tax is None:
                target_name, target = params.total_field, total
            if target is not None:
                computed, n = line_sum
                diff = computed - target
                tol = tolerance(target, n)
                if abs(diff) > tol:
                    out.append(
                        Emission(
                            "line_sum",
                            target_name,
                            {
                                "computed": fmt_amount(computed, places),
                                "expected": fmt_amount(target, places),
                                "difference": fmt_amount(abs(diff), places),
                                "tolerance": fmt_amount(tol, places),
                            },
                        )
                    )

        if subtotal is not None and tax is not None and total is not None:
            computed = subtotal + tax
            if abs(computed - total) > tolerance(total, 0):
                out.append(
                    Emission(
                        "total",
                        params.total_field,
                        {
                            "subtotal_field": params.subtotal_field,
                            "subtotal": fmt_amount(subtotal, places),
                            "tax_field": params.tax_field,
                            "tax": fmt_amount(tax, places),
                            "computed": fmt_amount(computed, places),
                            "expected": fmt_amount(total, places),
                        },
                    )
                )
        return out

    def _line_sum(
        self,
        params: ArithmeticParams,
        ctx: RuleContext,
        out: list[Emission],
        places: int,
        tolerance: Callable[[Decimal, int], Decimal],
    ) -> tuple[Decimal, int] | None:
        """Sum of the line amounts and the number of lines, or None when it cannot be computed."""
        items = ctx.result.value(params.line_items_field)
        if not isinstance(items, list) or not items:
            return None
        total = Decimal(0)
        complete = True
        for index, item in enumerate(items, start=1):
            if not isinstance(item, Mapping):
                complete = False
                continue
            parts: dict[str, Decimal | None] = {}
            for key in ("quantity", "unit_price", "amount"):
                raw = item.get(key)
                if is_missing(raw):
                    parts[key] = None
                    continue
                try:
                    parts[key] = to_decimal(raw)
                except NotANumber:
                    out.append(
                        Emission(
                            "not_a_number",
                            params.line_items_field,
                            {"what": f"line item {index} {key}", "value": show(raw)},
                        )
                    )
                    parts[key] = None
                    if key == "amount":
                        complete = False
            quantity, unit_price, line_amount = (
                parts["quantity"],
                parts["unit_price"],
                parts["amount"],
            )
            product = (
                quantity * unit_price if quantity is not None and unit_price is not None else None
            )
            if line_amount is None:
                if product is None:
                    complete = False
                    continue
                line_amount = product
            elif (
                params.check_line_amounts
                and product is not None
                and abs(product - line_amount) > tolerance(line_amount, 1)
            ):
                out.append(
                    Emission(
                        "line_amount",
                        params.line_items_field,
                        {
                            "index": str(index),
                            "description": show(item.get("description"), 40),
                            "quantity": fmt_amount(quantity or Decimal(0), 0),
                            "unit_price": fmt_amount(unit_price or Decimal(0), places),
                            "computed": fmt_amount(product, places),
                            "expected": fmt_amount(line_amount, places),
                        },
                    )
                )
            total += line_amount
        return (total, len(items)) if complete else None


# --------------------------------------------------------------------------------------------
# dates


class DateOrder(Params):
    earlier: str
    later: str


class DatesParams(Params):
    order: list[DateOrder] = Field(
        default_factory=lambda: [DateOrder(earlier="issue_date", later="due_date")]
    )
    not_in_future: list[str] = Field(default_factory=lambda: ["issue_date"])
    future_grace_days: int = Field(0, ge=0)


class DatesRule(RuleType[DatesParams]):
    """Date pairs in order (the later one may equal the earlier); dates not in the future."""

    name = "dates"
    params_model = DatesParams
    checks = {
        "order": Check("{field} {later} is before {earlier_field} {earlier}"),
        "future": Check("{field} {value} is in the future (today is {today})"),
        "not_a_date": Check("{field} is not a date: {value}"),
    }

    async def evaluate(self, params: DatesParams, ctx: RuleContext) -> list[Emission]:
        out: list[Emission] = []
        parsed: dict[str, date | None] = {}

        def get(name: str) -> date | None:
            if name not in parsed:
                value = ctx.result.value(name)
                if is_missing(value):
                    parsed[name] = None
                else:
                    try:
                        parsed[name] = to_date(value)
                    except ValueError:
                        out.append(Emission("not_a_date", name, {"value": show(value)}))
                        parsed[name] = None
            return parsed[name]

        for pair in params.order:
            earlier, later = get(pair.earlier), get(pair.later)
            if earlier is not None and later is not None and later < earlier:
                out.append(
                    Emission(
                        "order",
                        pair.later,
                        {
                            "later": later.isoformat(),
                            "earlier_field": pair.earlier,
                            "earlier": earlier.isoformat(),
                        },
                    )
                )
        latest = ctx.today + timedelta(days=params.future_grace_days)
        for name in params.not_in_future:
            value = get(name)
            if value is not None and value > latest:
                out.append(
                    Emission(
                        "future",
                        name,
                        {"value": value.isoformat(), "today": ctx.today.isoformat()},
                    )
                )
        return out


# --------------------------------------------------------------------------------------------
# currency


class CurrencyParams(Params):
    field: str = "currency"
    allowed: list[str] | None = None
    allow_withdrawn: bool = False

    @field_validator("allowed")
    @classmethod
    def _codes(cls, codes: list[str] | None) -> list[str] | None:
        return _iso_codes(codes)


class CurrencyRule(RuleType[CurrencyParams]):
    """A current ISO 4217 code (case-insensitive); optionally one of an accepted list.

    A recently withdrawn code (e.g. HRK) is reported as at most a warning.
    """

    name = "currency"
    params_model = CurrencyParams
    checks = {
        "invalid": Check("{field} {value} is not an ISO 4217 currency code"),
        "withdrawn": Check("{field} {value} has been withdrawn from ISO 4217"),
        "not_allowed": Check("{field} {value} is not an accepted currency ({allowed})"),
    }

    async def evaluate(self, params: CurrencyParams, ctx: RuleContext) -> list[Emission]:
        value = ctx.result.value(params.field)
        if is_missing(value):
            return []
        code = value.strip().upper() if isinstance(value, str) else None
        shown = {"value": show(value)}
        if code is None or not is_currency_code(code):
            if code in WITHDRAWN_CURRENCIES:
                if params.allow_withdrawn:
                    return []
                return [Emission("withdrawn", params.field, shown, max_severity="warning")]
            return [Emission("invalid", params.field, shown)]
        if params.allowed is not None and code not in params.allowed:
            return [
                Emission(
                    "not_allowed",
                    params.field,
                    {**shown, "allowed": ", ".join(params.allowed)},
                )
            ]
        return []


# --------------------------------------------------------------------------------------------
# iban, bic


class IdentifierParams(Params):
    field: str


class IbanParams(IdentifierParams):
    field: str = "iban"


class BicParams(IdentifierParams):
    field: str = "bic"


def invalid_identifiers(
    ctx: RuleContext, field: str, check: Callable[[str], CheckResult]
) -> list[Emission]:
    """An `invalid` emission for each value in `field` that `check` rejects."""
    out: list[Emission] = []
    value = ctx.result.value(field)
    if is_missing(value):
        return out
    for item in iter_texts(value):
        problem = check(item).problem if isinstance(item, str) else "it is not text"
        if problem:
            out.append(Emission("invalid", field, {"value": show(item), "problem": problem}))
    return out


class IbanRule(RuleType[IbanParams]):
    """Each IBAN in the field has its country's length and a valid mod-97 checksum."""

    name = "iban"
    params_model = IbanParams
    checks = {"invalid": Check("{field} {value} is not a valid IBAN: {problem}")}

    async def evaluate(self, params: IbanParams, ctx: RuleContext) -> list[Emission]:
        return invalid_identifiers(ctx, params.field, check_iban)


class BicRule(RuleType[BicParams]):
    """Each BIC in the field has the ISO 9362 shape."""

    name = "bic"
    params_model = BicParams
    checks = {"invalid": Check("{field} {value} is not a valid BIC: {problem}")}

    async def evaluate(self, params: BicParams, ctx: RuleContext) -> list[Emission]:
        return invalid_identifiers(ctx, params.field, check_bic)


# --------------------------------------------------------------------------------------------
# vat_id


class VatIdParams(Params):
    field: str = "vat_id"
    countries: list[str] | None = None
    unknown_country_severity: Severity = "warning"

    @field_validator("countries")
    @classmethod
    def _known(cls, countries: list[str] | None) -> list[str] | None:
        if countries is None:
            return None
        out = [c.strip().upper() for c in countries]
        bad = [c for c in out if c not in VAT_COUNTRIES]
        if bad:
            known = ", ".join(sorted(VAT_COUNTRIES))
            raise ValueError(f"unsupported VAT country prefixes {', '.join(bad)} (known: {known})")
        return out


class VatIdRule(RuleType[VatIdParams]):
    """The VAT id matches its country's format (and check digits where defined).

    An id without a known country prefix cannot be checked: it is reported with at most
    `unknown_country_severity`.
    """

    name = "vat_id"
    params_model = VatIdParams
    checks = {
        "invalid": Check("{field} {value} is not a valid VAT id: {problem}"),
        "unknown_country": Check("{field} {value} cannot be checked: {problem}"),
        "not_allowed": Check(
            "{field} {value} is from {country}, which is not accepted ({allowed})"
        ),
    }

    async def evaluate(self, params: VatIdParams, ctx: RuleContext) -> list[Emission]:
        out: list[Emission] = []
        value = ctx.result.value(params.field)
        if is_missing(value):
            return out
        for item in iter_texts(value):
            shown = show(item)
            if not isinstance(item, str):
                out.append(
                    Emission("invalid", params.field, {"value": shown, "problem": "not text"})
                )
                continue
            result = check_vat_id(item)
            if result.country is None:
                out.append(
                    Emission(
                        "unknown_country",
                        params.field,
                        {"value": shown, "problem": result.problem},
                        max_severity=params.unknown_country_severity,
                    )
                )
            elif not result.ok:
                out.append(
                    Emission("invalid", params.field, {"value": shown, "problem": result.problem})
                )
            elif params.countries is not None and result.country not in params.countries:
                out.append(
                    Emission(
                        "not_allowed",
                        params.field,
                        {
                            "value": shown,
                            "country": result.country,
                            "allowed": ", ".join(params.countries),
                        },
                    )
                )
        return out


# --------------------------------------------------------------------------------------------
# duplicate


class DuplicateParams(Params):
    issuer_field: str = "issuer"
    number_field: str = "invoice_number"
    total_field: str = "total"
    currency_field: str = "currency"


_HOLDER = frozenset({"other", "other_id"})


class DuplicateRule(RuleType[DuplicateParams]):
    """Another document already holds the same issuer and invoice number.

    Runs last and claims the invoice through the engine's `claim_invoice` (an atomic claim in
    the archive, so that of several copies processed at once exactly one holds it); a document
    the other rules find invalid is checked but claims nothing. The same number with another
    total or currency is its own finding (`<rule id>.amount_differs`): a reused number or an
    altered copy. The holder is named only when the archive says its uploader may read it.
    Without `claim_invoice` the rule does nothing; a failing claim is reported as at most a
    warning, so the document goes to review instead of passing unchecked.
    """

    name = "duplicate"
    params_model = DuplicateParams
    runs_last = True
    checks = {
        "duplicate": Check(
            "{field} {number} from {issuer} is already held by {other}: a duplicate invoice",
            _HOLDER,
        ),
        "amount_differs": Check(
            "{field} {number} from {issuer} is already held by {other} with a different amount"
            " (here {amount}): a reused invoice number or an altered copy",
            _HOLDER,
            rule_suffix=".amount_differs",
        ),
        "lookup_failed": Check("could not check {field} {number} for duplicates: {error}"),
    }

    async def evaluate(self, params: DuplicateParams, ctx: RuleContext) -> list[Emission]:
        issuer = ctx.result.value(params.issuer_field)
        number = ctx.result.value(params.number_field)
        if ctx.claim_invoice is None or is_missing(issuer) or is_missing(number):
            return []
        key = InvoiceKey(
            issuer=issuer.strip() if isinstance(issuer, str) else str(issuer),
            invoice_number=number.strip() if isinstance(number, str) else str(number),
            total=ctx.result.value(params.total_field),
            currency=ctx.result.value(params.currency_field),
            eligible=ctx.outcome_so_far != "invalid",
        )
        shown = {"number": show(key.invoice_number), "issuer": show(key.issuer)}
        try:
            claim = await ctx.claim_invoice(key)
        except Exception as exc:
            return [
                Emission(
                    "lookup_failed",
                    params.number_field,
                    {**shown, "error": show(f"{type(exc).__name__}: {exc}", 120)},
                    max_severity="warning",
                )
            ]
        if not claim.duplicate:
            return []
        other = f"document {claim.other_id}" if claim.other_id else "a document of another uploader"
        holder = {"other": other, "other_id": claim.other_id or "(not shown)"}
        if claim.same_amount:
            return [Emission("duplicate", params.number_field, {**shown, **holder})]
        amount = show(" ".join(str(v) for v in (key.total, key.currency) if not is_missing(v)))
        return [
            Emission("amount_differs", params.number_field, {**shown, **holder, "amount": amount})
        ]


# --------------------------------------------------------------------------------------------
# threshold


class ThresholdParams(Params):
    field: str = "total"
    currency_field: str = "currency"
    above: float | None = None
    per_currency: dict[str, float] = Field(default_factory=dict)

    @field_validator("per_currency")
    @classmethod
    def _codes(cls, limits: dict[str, float]) -> dict[str, float]:
        codes = _iso_codes(list(limits)) or []
        return dict(zip(codes, limits.values(), strict=True))

    @model_validator(mode="after")
    def _some_limit(self) -> ThresholdParams:
        if self.above is None and not self.per_currency:
            raise ValueError("set `above` or `per_currency` (or both)")
        return self


class ThresholdRule(RuleType[ThresholdParams]):
    """An amount strictly above the limit for its currency (else `above`) is reported."""

    name = "threshold"
    params_model = ThresholdParams
    checks = {"above": Check("{field} {amount} is above the review threshold of {limit}")}

    async def evaluate(self, params: ThresholdParams, ctx: RuleContext) -> list[Emission]:
        value = ctx.result.value(params.field)
        if is_missing(value):
            return []
        try:
            amount = to_decimal(value)
        except NotANumber:
            return []  # the arithmetic rule reports numbers that are not numbers
        currency = _currency_of(ctx, params.currency_field)
        limit_value = params.per_currency.get(currency or "", params.above)
        if limit_value is None:
            return []
        limit = to_decimal(limit_value)
        if amount <= limit:
            return []
        places = currency_minor_units(currency)
        suffix = f" {currency}" if currency else ""
        return [
            Emission(
                "above",
                params.field,
                {
                    "amount": fmt_amount(amount, places) + suffix,
                    "limit": fmt_amount(limit, places) + suffix,
                },
            )
        ]


# --------------------------------------------------------------------------------------------
# low_confidence


class LowConfidenceParams(Params):
    # None: `pipeline.review_confidence` (the engine's `review_confidence`).
    threshold: float | None = Field(None, ge=0, le=1)
    # None: every field extracted.
    fields: list[str] | None = None
    # The document's own (classification) confidence; None: not checked.
    document_threshold: float | None = Field(None, ge=0, le=1)


def _conf(value: float) -> str:
    return f"{round(value, 3):g}"


class LowConfidenceRule(RuleType[LowConfidenceParams]):
    """A field (every extracted one, or those listed) extracted with confidence strictly below
    the threshold (by default `pipeline.review_confidence`). Confidences are calibrated: one
    below 0.5 is more likely wrong than right."""

    name = "low_confidence"
    params_model = LowConfidenceParams
    checks = {
        "field": Check(
            "{field} was extracted with confidence {confidence}, below {threshold}: check it "
            "against the page (its evidence says where it was read) and correct it"
        ),
        "document": Check(
            "the document was classified as {document_type} with confidence {confidence}, "
            "below {threshold}"
        ),
    }

    async def evaluate(self, params: LowConfidenceParams, ctx: RuleContext) -> list[Emission]:
        out: list[Emission] = []
        result = ctx.result
        if params.document_threshold is not None and result.confidence < params.document_threshold:
            out.append(
                Emission(
                    "document",
                    None,
                    {
                        "confidence": _conf(result.confidence),
                        "threshold": _conf(params.document_threshold),
                    },
                )
            )
        names = params.fields if params.fields is not None else list(result.fields)
        threshold = ctx.review_confidence if params.threshold is None else params.threshold
        for name in names:
            extracted = result.fields.get(name)
            if extracted is None or is_missing(extracted.value):
                continue
            if extracted.confidence < threshold:
                out.append(
                    Emission(
                        "field",
                        name,
                        {
                            "confidence": _conf(extracted.confidence),
                            "threshold": _conf(threshold),
                        },
                    )
                )
        return out


# --------------------------------------------------------------------------------------------
# guardrail


class GuardrailParams(Params):
    prefix: str = Field("guardrail.", min_length=1)


class GuardrailRule(RuleType[GuardrailParams]):
    """Findings the extraction stage recorded under `guardrail.*` (e.g. prompt injection)."""

    name = "guardrail"
    params_model = GuardrailParams
    checks = {"flagged": Check("{source_rule} flagged the document: {source_message}")}

    async def evaluate(self, params: GuardrailParams, ctx: RuleContext) -> list[Emission]:
        return [
            Emission(
                "flagged",
                finding.field,
                {
                    "source_rule": finding.rule_id,
                    "source_message": show(finding.message, 200),
                },
            )
            for finding in ctx.result.findings
            if finding.rule_id.startswith(params.prefix)
        ]


# --------------------------------------------------------------------------------------------
# extraction_finding


class ExtractionFindingParams(Params):
    rule_id: str = Field(min_length=1, max_length=100)


class ExtractionFindingRule(RuleType[ExtractionFindingParams]):
    """A finding the extraction stage recorded under `rule_id`, given the rule's severity with
    its message kept (`no_text_layer`: scanned pages that OCR could not read)."""

    name = "extraction_finding"
    params_model = ExtractionFindingParams
    checks = {"found": Check("{source_message}")}

    async def evaluate(self, params: ExtractionFindingParams, ctx: RuleContext) -> list[Emission]:
        return [
            Emission("found", finding.field, {"source_message": finding.message})
            for finding in ctx.result.findings
            if finding.rule_id == params.rule_id
        ]


BUILTIN_RULE_TYPES: Mapping[str, RuleType[Any]] = {
    rule_type.name: rule_type
    for rule_type in (
        RequiredRule(),
        ArithmeticRule(),
        DatesRule(),
        CurrencyRule(),
        IbanRule(),
        BicRule(),
        VatIdRule(),
        DuplicateRule(),
        ThresholdRule(),
        LowConfidenceRule(),
        GuardrailRule(),
        ExtractionFindingRule(),
    )
}
