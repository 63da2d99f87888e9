"""The totals model: of the labelled amount candidates, the assignment of the document-level
totals that the arithmetic of an invoice supports.

The terms (EN 16931): net total without VAT (BT-109), VAT total (BT-110), gross total with VAT
(BT-112), prepaid (BT-113) and amount due (BT-115). The relations scored:

    net + VAT = gross            (VAT: one printed total, or the sum of the per-rate rows)
    gross - prepaid = due        (no prepaid: gross = due)
    line sum - allowances + charges = net

Every candidate brings the score of its label; an assignment gains when a relation holds and
loses when one is broken. A total word that does not say which ("Total") may be the gross
total or the amount due. The gross total is the invoice's `total`: an amount due after a
prepayment is not. When the gross total is not printed it is derived from the amount due and
the prepayment, or from net + VAT.

Credit notes: amounts are reported as printed, so a credit note printed with negative amounts
has a negative total, VAT and net; the relations hold the same way with negative numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations

from bastion.pipeline.extract.invoice.amounts import _Amount, _close

Choice = dict[str, tuple[_Amount, float]]
_NONE: tuple[None] = (None,)


@dataclass(slots=True)
class _Part:
    """The best choice of one part of the model for a given gross total."""

    score: float
    picks: tuple[_Amount | None, ...]
    holds: bool


def _top(cands: list[_Amount], n: int = 6) -> list[_Amount]:
    """The `n` best candidates with distinct values."""
    best: dict[float, _Amount] = {}
    for c in cands:
        key = round(c.value, 2)
        if key not in best or c.score > best[key].score:
            best[key] = c
    return sorted(best.values(), key=lambda c: -c.score)[:n]


def _sums(rows: list[_Amount], scale: float) -> list[_Amount]:
    """Sums of rows of one kind (one row per VAT rate): every row together first, then subsets."""
    by_row = {r.where: r for r in sorted(rows, key=lambda r: r.score)}
    distinct = list(by_row.values())
    out: list[_Amount] = []
    if len(distinct) < 2:
        return out
    for k in range(min(len(distinct), 4), 1, -1):
        for combo in combinations(distinct, k):
            score = min(c.score for c in combo) * scale
            value = round(sum(c.value for c in combo), 2)
            out.append(_Amount(value, score, combo[-1].page, (-1, -1), rule="rows_sum"))
    return out


def _rate_rows(rows: list[_Amount]) -> list[_Amount]:
    """The options a VAT breakdown's column gives: its rows' sum, or one row alone (a single
    rate), or its last row when that row is the sum of those above it (a totals row)."""
    ordered = sorted({r.where: r for r in rows}.values(), key=lambda r: r.where)
    if not ordered:
        return []
    last, above = ordered[-1], ordered[:-1]
    if above and _close(sum(r.value for r in above), last.value):
        return [last] + [replace(r, score=0.7 * r.score) for r in above]
    out = _sums(ordered, 0.95)[:1]
    out += [replace(r, score=0.7 * r.score) for r in ordered]
    return out


def _net_tax(
    gross: float | None,
    nets: list[_Amount | None],
    taxes: list[_Amount | None],
    line_net: list[float],
) -> _Part:
    """The best net total and VAT total for a gross total (None: not printed)."""
    best = _Part(float("-inf"), (None, None), False)
    for s in nets:
        for t in taxes:
            score = (s.score if s else 0.0) + (t.score if t else 0.0)
            holds = False
            if gross is not None and s and t:
                if _close(s.value + t.value, gross):
                    score += 1.5
                    holds = True
                else:
                    score -= 0.8
            elif gross is not None and s:
                if _close(gross, s.value):
                    score += 0.1
                else:
                    score -= 0.6 if abs(gross) < abs(s.value) else 0.3
            elif gross is not None and t:
                score -= 0.6 if abs(t.value) >= abs(gross) else 0.0
            elif s and t:
                score -= 0.6 if abs(t.value) >= abs(s.value) else 0.0
            if s and t and s.where == t.where and not (s.per_rate and t.per_rate):
                score -= 1.0
            if s and any(_close(v, s.value) for v in line_net):
                score += 0.5
            elif not s and gross is not None and any(_close(v, gross) for v in line_net):
                score += 0.3
            if score > best.score:
                best = _Part(score, (s, t), holds)
    return best


def _due_prepaid(
    gross: float | None, dues: list[_Amount | None], prepaids: list[_Amount | None]
) -> _Part:
    """The best amount due and prepayment for a gross total (None: not printed)."""
    best = _Part(float("-inf"), (None, None), False)
    for d in dues:
        for p in prepaids:
            score = (d.score if d else 0.0) + (p.score if p else 0.0)
            holds = False
            if d and gross is not None:
                paid = p.value if p else 0.0
                if _close(gross - paid, d.value):
                    score += 1.0 if p and paid else 0.3
                    holds = True
                else:
                    score -= 0.5
            elif p and d is None:
                score -= 0.5 * p.score  # a prepayment with nothing due adds nothing
            if score > best.score:
                best = _Part(score, (d, p), holds)
    return best


def choose_totals(found: dict[str, list[_Amount]], line_sum: float | None) -> Choice:
    """The document's `total` (gross), `subtotal` (net), `tax`, `due` and `prepaid`, each
    with a confidence, chosen by the totals model."""
    nets = _top([a for a in found.get("net", []) if not a.per_rate])
    nets += _rate_rows([a for a in found.get("net", []) if a.per_rate])
    nets += [replace(a, score=0.8 * a.score) for a in _top(found.get("line_sum", []), 2)]
    taxes = _top([a for a in found.get("tax", []) if not a.per_rate])
    rate_taxes = [a for a in found.get("tax", []) if a.per_rate]
    taxes += _rate_rows(rate_taxes)
    # Several rows of VAT outside a breakdown table (one per rate): their sums too.
    taxes += _sums(taxes[:4], 0.9) if not rate_taxes else []
    weak = _top(found.get("total", []), 4)
    grosses = _top(found.get("gross", [])) + [replace(w, score=w.score * 0.95) for w in weak]
    dues = _top(found.get("due", []), 3) + weak
    prepaids = _top(found.get("prepaid", []), 2)
    line_net = _line_net(found, line_sum)

    net_opts: list[_Amount | None] = [*nets, None]
    tax_opts: list[_Amount | None] = [*taxes, None]
    due_opts: list[_Amount | None] = [*dues, None]
    pre_opts: list[_Amount | None] = [*prepaids, None]
    best: tuple[float, _Amount | None, _Part, _Part] | None = None
    for g in [*grosses, None]:
        value = g.value if g else None
        nt = _net_tax(value, net_opts, tax_opts, line_net)
        if g is None:
            s, t = nt.picks
            value = round(s.value + t.value, 2) if s and t else None
        dp = _due_prepaid(value, due_opts, pre_opts)
        score = (g.score if g else 0.0) + nt.score + dp.score
        d = dp.picks[0]
        if g and d and g.where == d.where and not _close(g.value, d.value):
            score -= 1.0
        if g and d and g.where == d.where and _close(g.value, d.value):
            score -= d.score  # one printed total counted once
        if best is None or score > best[0]:
            best = (score, g, nt, dp)
    if best is None:
        return {}
    _score, gross, nt, dp = best
    net, tax = nt.picks
    due, prepaid = dp.picks
    out: Choice = {}
    if gross is None and due is not None and not (prepaid and prepaid.value):
        gross = due  # nothing paid before: the amount due is the total
    elif gross is None and due is not None:
        # Not printed: the gross total is what is due plus what was paid before.
        paid = prepaid.value if prepaid else 0.0
        gross = _Amount(
            round(due.value + paid, 2), due.score, due.page, due.where, rule="due_plus_prepaid"
        )
    elif gross is None and net is not None and tax is not None:
        # Neither printed: net + VAT, as sure as the less sure of the two.
        gross = _Amount(round(net.value + tax.value, 2), 0.6 * min(net.score, tax.score),
                        tax.page, tax.where, rule="arithmetic")  # fmt: skip
    for name, amt in (
        ("total", gross),
        ("subtotal", net),
        ("tax", tax),
        ("due", due),
        ("prepaid", prepaid),
    ):
        if amt is not None:
            conf = 0.96 if nt.holds else min(0.85, 0.5 + 0.35 * amt.score)
            if name in ("due", "prepaid"):
                conf = 0.9 if dp.holds else min(0.8, 0.5 + 0.3 * amt.score)
            out[name] = (amt, conf)
    return out


def _line_net(found: dict[str, list[_Amount]], line_sum: float | None) -> list[float]:
    """What the net total should be by the lines: their sum, less the allowances and plus the
    charges printed apart from them."""
    if line_sum is None:
        return []
    allowances = sum(-abs(a.value) for a in _top(found.get("allowance", []), 4))
    charges = sum(a.value for a in _top(found.get("charge", []), 4))
    out = [line_sum]
    if allowances or charges:
        out.append(round(line_sum + allowances + charges, 2))
    return out
