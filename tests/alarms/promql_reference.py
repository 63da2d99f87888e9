"""A reference evaluator for the PromQL the alarm rules are written as, for the agreement test.

It reads the expression text (not the rule) and evaluates it over regularly scraped series the
way Prometheus does when, as in the test's data, the first sample of a range lies one scrape
interval after the range's start and the last at its end: `rate` is then the counter's increase
(resets added back) over the time between the first and last samples, and `delta` the change
scaled from that time to the whole range.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

Series = dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:e[+-]?\d+)?)(?P<unit>[smh])?|(?P<name>[a-zA-Z_:][\w:]*)"
    r'|(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|==|!=|[><(){}\[\]/,=]))'
)
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_AGGREGATES: dict[str, Callable[[list[float]], float]] = {"sum": math.fsum, "max": max, "min": min}
_UNITS = {"s": 1, "m": 60, "h": 3600}


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match is not None and match.end() > pos, f"cannot read {text[pos:]!r}"
        pos = match.end()
        if match["num"] is not None:
            out.append(match["num"] + (match["unit"] or ""))
        else:
            out.append(match["name"] or match["str"] or match["op"])
    return out


@dataclass
class Reference:
    """Evaluates an expression at `now` over `series`."""

    series: Series
    now: float

    def value(self, text: str) -> float | None:
        self._toks, self._i = _tokens(text), 0
        result = self._expr()
        assert self._i == len(self._toks), f"unread: {self._toks[self._i :]}"
        return result

    def alert(self, text: str) -> bool:
        """Whether the alert expression returns a sample (its condition holds)."""
        value, op, threshold = self._split(text)
        found = self.value(value)
        return found is not None and _COMPARE[op](found, threshold)

    @staticmethod
    def _split(text: str) -> tuple[str, str, float]:
        match = re.fullmatch(r"(.*) (>=|<=|==|!=|>|<) (\S+)", text)
        assert match is not None
        return match[1], match[2], float(match[3])

    def _peek(self) -> str | None:
        return self._toks[self._i] if self._i < len(self._toks) else None

    def _take(self, expected: str | None = None) -> str:
        tok = self._toks[self._i]
        assert expected is None or tok == expected, f"expected {expected}, got {tok}"
        self._i += 1
        return tok

    def _expr(self) -> float | None:
        left = self._term()
        if self._peek() == "/":
            self._take()
            right = self._term()
            if left is None or right is None:
                return None
            return left / right if right else math.nan
        return left

    def _term(self) -> float | None:
        if self._peek() == "(":
            self._take("(")
            inner = self._expr()
            self._take(")")
            return inner
        how = _AGGREGATES[self._take()]
        self._take("(")
        values = self._vector()
        self._take(")")
        return how(values) if values else None

    def _vector(self) -> list[float]:
        if self._toks[self._i + 1] == "(":  # rate( or delta(
            function = self._take()
            self._take("(")
            points_of = self._selector()
            self._take("[")
            window = self._duration(self._take())
            self._take("]")
            self._take(")")
            ranged = [self._range(points, window, function) for points in points_of]
            return [v for v in ranged if v is not None]
        return [points[-1][1] for points in self._selector() if points[-1][0] == self.now]

    def _selector(self) -> list[list[tuple[float, float]]]:
        name = self._take()
        wanted: dict[str, str] = {}
        if self._peek() == "{":
            self._take("{")
            while self._peek() != "}":
                label = self._take()
                self._take("=")
                wanted[label] = self._take()[1:-1]
                if self._peek() == ",":
                    self._take(",")
            self._take("}")
        return [
            points
            for (metric, labels), points in self.series.items()
            if metric == name and all(dict(labels).get(k) == v for k, v in wanted.items())
        ]

    @staticmethod
    def _duration(token: str) -> float:
        return float(token[:-1]) * _UNITS[token[-1]]

    def _range(
        self, points: list[tuple[float, float]], window: float, function: str
    ) -> float | None:
        inside = [p for p in points if self.now - window < p[0] <= self.now]
        if len(inside) < 2:
            return None
        covered = inside[-1][0] - inside[0][0]
        if function == "delta":
            return (inside[-1][1] - inside[0][1]) * window / covered
        increase = 0.0
        for (_, before), (_, after) in itertools.pairwise(inside):
            increase += after - before if after >= before else after
        return increase / covered
