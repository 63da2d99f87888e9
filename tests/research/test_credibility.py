"""Credibility: domain and provider tiers from YAML, recency against `now`, agreement between
independent origins, clamping, reasons, a configurable rules file and the shipped default."""

from __future__ import annotations

import fnmatch
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from bastion.research.credibility import (
    CredibilityError,
    agreeing_origins,
    load_credibility_rules,
    origin,
    score_source,
    score_sources,
)
from bastion.research.sources import Source

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000.0
DAY = 86_400.0
RULES = load_credibility_rules()


def source(
    id: str,
    url: str | None = None,
    *,
    provider: str = "web",
    text: str = "",
    published_at: float | None = None,
) -> Source:
    return Source(id=id, title=id, provider=provider, retrieved_at=NOW, snippet=text, text=text,
                  url=url, published_at=published_at)  # fmt: skip


@pytest.mark.parametrize(
    ("url", "provider", "value", "reason"),
    [
        ("https://www.nasa.gov/x", "web", 1.0, "government domain (www.nasa.gov under gov)"),
        (
            "https://www.ons.gov.uk/data",
            "web",
            1.0,
            "government domain (www.ons.gov.uk under gov.uk)",
        ),
        ("https://ec.europa.eu/eurostat", "web", 1.0, "under europa.eu"),
        ("https://www.un.org/en", "web", 1.0, "government domain (www.un.org under un.org)"),
        ("https://cs.stanford.edu/p", "web", 0.9, "education domain"),
        ("https://www.ox.ac.uk/", "web", 0.9, "under ac.uk"),
        ("https://www.reuters.com/world/", "web", 0.8, "wire service domain"),
        ("https://apnews.com/article/1", "web", 0.8, "under apnews.com"),
        ("https://en.wikipedia.org/wiki/X", "web", 0.7, "organisation domain"),
        ("https://blog.example.com/post", "web", 0.5, "other (host blog.example.com)"),
        ("https://notreuters.com/x", "web", 0.5, "other (host notreuters.com)"),  # not a suffix
        (None, "web", 0.5, "other (no URL)"),
        (None, "corpus", 0.8, "local corpus (provider corpus)"),
        ("https://example.gov/doc", "corpus", 0.8, "local corpus"),  # the provider tier wins
    ],
)
def test_base_tiers(url: str | None, provider: str, value: float, reason: str) -> None:
    score = score_source(source("s", url, provider=provider), RULES, NOW)
    assert score.value == value
    assert reason in score.reasons[0]
    assert score.reasons[1] == "publication date unknown: no recency adjustment"


def test_recency_adjusts_by_age() -> None:
    def value(age_days: float) -> tuple[float, str]:
        score = score_source(
            source("s", "https://a.example.com", published_at=NOW - age_days * DAY), RULES, NOW
        )
        return score.value, score.reasons[1]

    assert value(30) == (0.55, "published 30 days ago (within 365): +0.05")
    assert value(1000) == (0.5, "published 1000 days ago: no recency adjustment")
    assert value(2000) == (0.4, "published 2000 days ago (over 1825): -0.10")
    assert value(-30) == (0.5, "publication date in the future: no recency adjustment")
    later = score_source(source("s", published_at=NOW - 30 * DAY), RULES, NOW + 400 * DAY)
    assert later.value == 0.5  # the same source, judged later: `now` is a parameter


CLAIM = "The northern breakwater will be rebuilt over the next two years."


def test_agreement_between_independent_hosts_raises_each() -> None:
    sources = [
        source("a", "https://www.reuters.com/a", text=f"Storm news. {CLAIM}"),
        source(
            "b",
            "https://apnews.com/b",
            text="The northern breakwater is to be rebuilt over two years.",
        ),
        source("c", "https://reuters.com/c", text=CLAIM),  # same origin as a: not independent
        source("d", "https://blog.example.com/d", text="Puffins nest on the cliffs every spring."),
        source("e", None, provider="corpus", text=CLAIM),
    ]
    assert [origin(s) for s in sources] == [
        "reuters.com", "apnews.com", "reuters.com", "blog.example.com", "corpus:e",
    ]  # fmt: skip
    assert agreeing_origins(sources, RULES.agreement) == [
        ("apnews.com", "corpus:e"),
        ("corpus:e", "reuters.com"),
        ("apnews.com", "corpus:e"),
        (),
        ("apnews.com", "reuters.com"),
    ]
    scores = score_sources(sources, RULES, NOW)
    assert [s.value for s in scores] == [0.9, 0.9, 0.9, 0.5, 0.9]
    assert (
        scores[0].reasons[-1] == "agrees with 2 independent sources (apnews.com, corpus:e): +0.10"
    )
    assert len(scores[3].reasons) == 2  # no agreement reason


def test_agreement_bonus_is_capped_and_the_score_clamped() -> None:
    hosts = ["a.gov", "b.gov", "c.gov", "d.gov", "e.gov", "f.gov"]
    sources = [source(h, f"https://{h}/", text=CLAIM, published_at=NOW) for h in hosts]
    scores = score_sources(sources, RULES, NOW)
    assert all(s.value == 1.0 for s in scores)  # 1.0 + 0.05 + 0.15, clamped
    assert scores[0].reasons[-1].endswith("+0.15")
    assert "agrees with 5 independent sources" in scores[0].reasons[-1]


def test_short_sentences_are_no_claims() -> None:
    sources = [
        source("a", "https://a.org", text="Yes indeed."),
        source("b", "https://b.org", text="Yes indeed."),
    ]
    assert agreeing_origins(sources, RULES.agreement) == [(), ()]


def test_a_rules_file_of_ones_own(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "default: {label: unknown, score: 0.3}\n"
        "providers:\n  corpus: {label: vetted library, score: 0.95}\n"
        "tiers:\n  - {label: partner, score: 0.85, domains: [partner.example]}\n"
        "recency: {fresh_days: 10, fresh_bonus: 0.1, stale_days: 20, stale_penalty: 0.2}\n",
        encoding="utf-8",
    )
    rules = load_credibility_rules(path)
    assert score_source(source("a", provider="corpus"), rules, NOW).value == 0.95
    assert score_source(source("b", "https://x.partner.example/"), rules, NOW).value == 0.85
    assert score_source(source("c", "https://www.nasa.gov/"), rules, NOW).value == 0.3
    old = score_source(source("d", "https://q.example/", published_at=NOW - 30 * DAY), rules, NOW)
    assert old.value == 0.1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("default: [", "invalid YAML"),
        ("tiers: []\n", "default: Field required"),
        (
            "default: {label: x, score: 1.5}\n",
            "default.score: Input should be less than or equal to 1",
        ),
        ("default: {label: x, score: 0.5}\nbogus: 1\n", "bogus: Extra inputs are not permitted"),
    ],
)
def test_bad_rules_file_says_what_to_fix(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CredibilityError, match=message):
        load_credibility_rules(path)
    with pytest.raises(CredibilityError, match="cannot be read"):
        load_credibility_rules(tmp_path / "missing.yaml")


def test_default_rules_ship_as_package_data() -> None:
    resource = resources.files("bastion.research").joinpath("credibility.yaml")
    assert resource.is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["bastion"]
    assert any(fnmatch.fnmatch("research/credibility.yaml", p) for p in patterns)
    assert [t.label for t in RULES.tiers] == [
        "government",
        "education",
        "wire service",
        "organisation",
    ]
    assert RULES.default.score == 0.5 and RULES.providers["corpus"].score == 0.8
