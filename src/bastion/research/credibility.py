"""Source credibility: a score in [0, 1] from transparent rules, with every rule that applied.

The rules live in a YAML file (the shipped `credibility.yaml` beside this module, or the file
`research.credibility` names). A source's score is, in order:

1. its base: the tier of its provider (a local corpus document: "local corpus", 0.8), else the
   tier of its URL's host (the most specific matching domain: `gov`, `gov.uk`, `europa.eu`,
   `reuters.com`, `org`; a domain matches itself and its subdomains), else the default (0.5);
2. recency: `published_at` within `fresh_days` of `now` adds `fresh_bonus`; older than
   `stale_days` takes off `stale_penalty`; unknown (or in the future) changes nothing;
3. agreement between independent sources: two sentences agree when both have at least
   `min_words` content words and the Jaccard similarity of their content-word sets is at least
   `similarity`. A source's agreeing origins are the other origins (a URL's host without
   `www.`; a source without a URL is its own origin, `provider:id`) with a sentence agreeing
   with one of its sentences; each adds `bonus_per_source`, up to `max_bonus`;

and is clamped to [0, 1] and rounded to 4 places. All functions are pure: time is a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bastion.research.sources import Source
from bastion.research.text import content_words, jaccard, split_sentences

__all__ = [
    "CredibilityError",
    "CredibilityRules",
    "Score",
    "agreeing_origins",
    "load_credibility_rules",
    "origin",
    "score_source",
    "score_sources",
]

_DAY = 86_400.0


class CredibilityError(ValueError):
    """The credibility rules file cannot be used; the message says what to fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    label: str
    score: float = Field(ge=0.0, le=1.0)
    domains: tuple[str, ...] = ()


class Recency(_Strict):
    fresh_days: float = Field(default=365, gt=0)
    fresh_bonus: float = Field(default=0.05, ge=0, le=1)
    stale_days: float = Field(default=1825, gt=0)
    stale_penalty: float = Field(default=0.1, ge=0, le=1)


class Agreement(_Strict):
    similarity: float = Field(default=0.6, gt=0, le=1)
    min_words: int = Field(default=4, ge=1)
    bonus_per_source: float = Field(default=0.05, ge=0, le=1)
    max_bonus: float = Field(default=0.15, ge=0, le=1)


class CredibilityRules(_Strict):
    default: Tier
    providers: dict[str, Tier] = Field(default_factory=dict)
    tiers: tuple[Tier, ...] = ()
    recency: Recency = Recency()
    agreement: Agreement = Agreement()


@dataclass(frozen=True, slots=True)
class Score:
    """A credibility score in [0, 1] and the reasons behind it, in the order they applied."""

    value: float
    reasons: tuple[str, ...]


def load_credibility_rules(path: Path | None = None) -> CredibilityRules:
    """The rules in `path`, or the shipped defaults when `path` is None."""
    if path is None:
        resource = resources.files("bastion.research").joinpath("credibility.yaml")
        text, where = resource.read_text(encoding="utf-8"), "the shipped credibility.yaml"
    else:
        try:
            text, where = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise CredibilityError(
                f"credibility rules {path} cannot be read ({exc.strerror}); "
                "fix research.credibility"
            ) from None
    try:
        return CredibilityRules.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise CredibilityError(f"credibility rules {where}: invalid YAML ({exc})") from None
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        raise CredibilityError(f"credibility rules {where}: {field}: {problem['msg']}") from None


def origin(source: Source) -> str:
    """Who published `source`: its URL's host (lowercase, without `www.`), else provider:id."""
    host = (urlsplit(source.url).hostname or "") if source.url else ""
    host = host.rstrip(".").removeprefix("www.")
    return host or f"{source.provider}:{source.id}"


def _base(source: Source, rules: CredibilityRules) -> tuple[float, str]:
    tier = rules.providers.get(source.provider)
    if tier is not None:
        return tier.score, f"{tier.label} (provider {source.provider}): {tier.score:.2f}"
    host = (urlsplit(source.url).hostname or "").rstrip(".") if source.url else ""
    best: tuple[int, Tier, str] | None = None
    for tier in rules.tiers:
        for domain in tier.domains:
            domain = domain.lower().strip(".")
            if (host == domain or host.endswith("." + domain)) and (
                best is None or len(domain) > best[0]
            ):
                best = (len(domain), tier, domain)
    if best is not None:
        _, tier, domain = best
        return tier.score, f"{tier.label} domain ({host} under {domain}): {tier.score:.2f}"
    what = f"host {host}" if host else "no URL"
    return rules.default.score, f"{rules.default.label} ({what}): {rules.default.score:.2f}"


def _recency(published_at: float | None, now: float, rules: Recency) -> tuple[float, str]:
    if published_at is None:
        return 0.0, "publication date unknown: no recency adjustment"
    age_days = (now - published_at) / _DAY
    if age_days < -1:
        return 0.0, "publication date in the future: no recency adjustment"
    if age_days <= rules.fresh_days:
        return rules.fresh_bonus, (
            f"published {max(age_days, 0):.0f} days ago (within {rules.fresh_days:g}): "
            f"+{rules.fresh_bonus:.2f}"
        )
    if age_days > rules.stale_days:
        return -rules.stale_penalty, (
            f"published {age_days:.0f} days ago (over {rules.stale_days:g}): "
            f"-{rules.stale_penalty:.2f}"
        )
    return 0.0, f"published {age_days:.0f} days ago: no recency adjustment"


def _claims(source: Source, min_words: int) -> list[frozenset[str]]:
    sentences = source.sentences or split_sentences(source.text or source.snippet)
    claims = [frozenset(content_words(sentence)) for sentence in sentences]
    return [claim for claim in claims if len(claim) >= min_words]


def agreeing_origins(sources: Sequence[Source], rules: Agreement) -> list[tuple[str, ...]]:
    """For each source (same order), the other origins with a sentence agreeing with one of
    its sentences, sorted."""
    origins = [origin(s) for s in sources]
    claims = [_claims(s, rules.min_words) for s in sources]
    agreeing: list[set[str]] = [set() for _ in sources]
    for i in range(len(sources)):
        for j in range(i):
            if origins[i] == origins[j] or (
                origins[j] in agreeing[i] and origins[i] in agreeing[j]
            ):
                continue
            if any(jaccard(a, b) >= rules.similarity for a in claims[i] for b in claims[j]):
                agreeing[i].add(origins[j])
                agreeing[j].add(origins[i])
    return [tuple(sorted(found)) for found in agreeing]


def score_source(
    source: Source, rules: CredibilityRules, now: float, agreeing: Sequence[str] = ()
) -> Score:
    """`source`'s score at time `now`, given the other origins that agree with it."""
    value, base_reason = _base(source, rules)
    reasons = [base_reason]
    delta, recency_reason = _recency(source.published_at, now, rules.recency)
    value += delta
    reasons.append(recency_reason)
    if agreeing:
        bonus = min(len(agreeing) * rules.agreement.bonus_per_source, rules.agreement.max_bonus)
        value += bonus
        plural = "source" if len(agreeing) == 1 else "sources"
        reasons.append(
            f"agrees with {len(agreeing)} independent {plural} ({', '.join(agreeing)}): "
            f"+{bonus:.2f}"
        )
    return Score(round(min(max(value, 0.0), 1.0), 4), tuple(reasons))


def score_sources(sources: Sequence[Source], rules: CredibilityRules, now: float) -> list[Score]:
    """Every source's score (same order), agreement counted among `sources`."""
    agreeing = agreeing_origins(sources, rules.agreement)
    return [score_source(s, rules, now, found) for s, found in zip(sources, agreeing, strict=True)]
