"""Scraping `GET /metrics` like Prometheus does, and reading samples from the text format."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Scrape:
    """One parsed scrape: sample name -> labels -> value."""

    samples: dict[str, dict[Labels, float]]

    def value(self, name: str, **labels: str) -> float:
        """The value of the sample with exactly these labels, 0 when absent."""
        return self.samples.get(name, {}).get(frozenset(labels.items()), 0.0)

    def since(self, before: Scrape, name: str, **labels: str) -> float:
        """How much the sample grew since the `before` scrape."""
        return self.value(name, **labels) - before.value(name, **labels)

    def has(self, name: str, **labels: str) -> bool:
        return frozenset(labels.items()) in self.samples.get(name, {})

    def label_values(self, label: str) -> set[str]:
        """Every value `label` takes in any sample."""
        return {
            v for series in self.samples.values() for key in series for k, v in key if k == label
        }


def parse(text: str) -> Scrape:
    samples: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return Scrape(samples)


def scrape(url: str, headers: dict[str, str]) -> Scrape:
    """`GET url/metrics` with `headers`; it must answer 200 in the Prometheus text format."""
    r = httpx.get(url + "/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)
