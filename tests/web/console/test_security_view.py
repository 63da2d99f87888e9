"""The console's Security view over real HTTP: refusals made through the gateway (bad API keys,
a principal without the action, a WAF block, a rate limit) show in its charts with their
counts, and each bar links to the Audit view listing exactly its records; the range selector,
a bad range (400 page), the view's own refusals (no session, no grant, a foreign CSRF), the
guardrail charts from the guardrail service's decisions, and SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bastion.config import Settings
from bastion.core.audit_entry import AuditEntry
from bastion.guardrails.engine import Engine as GuardEngine
from bastion.guardrails.service import GuardService
from bastion.storage.database import migrate, shared_engine
from tests.guardrails.test_service import ATTACK, CARD
from tests.security.test_audit_verify import write_entries
from tests.web.console.conftest import ConsoleSite, start_site
from tests.web.console.html_tables import table_rows
from tests.web.console.view_refusals import check_read_only_view

SQLI = "1' UNION SELECT password FROM users--"
UNKNOWN_KEY = "bst_aaaaaaaaaaaa_" + "0" * 64


@dataclass
class Attacked:
    site: ConsoleSite
    admin: httpx.Client
    cids: dict[str, set[str]]  # outcome -> the correlation ids of its refusals
    waf_rules: list[str]


def _cid(response: httpx.Response) -> str:
    return response.headers["x-correlation-id"]


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Attacked]:
    tmp = tmp_path_factory.mktemp("security-view")
    db_url = f"sqlite:///{tmp / 'bastion.db'}"
    migrate(db_url)

    def limited(settings: Settings) -> None:
        settings.rate_limit.principals["submitter"] = "2/minute"

    with start_site(tmp, db_url, limited) as site, site.browser() as admin:
        keys, url = site.project.keys, site.url
        cids: dict[str, set[str]] = {}

        def refused(outcome: str, response: httpx.Response, status: int) -> httpx.Response:
            assert response.status_code == status, response.text
            cids.setdefault(outcome, set()).add(_cid(response))
            return response

        with httpx.Client(base_url=url, timeout=10) as api:
            for key in ("not-a-key", UNKNOWN_KEY):
                r = api.get("/api/documents", headers={"X-API-Key": key})
                refused("denied:authenticate", r, 401)
            r = api.get("/api/documents", headers={"X-API-Key": keys["monitoring"]})
            refused("denied:authorize", r, 403)
            r = api.get("/api/documents", params={"q": SQLI}, headers={"X-API-Key": keys["admin"]})
            blocked = refused("denied:waf", r, 403)
            for _ in range(2):
                ok = api.get("/api/documents", headers={"X-API-Key": keys["submitter"]})
                assert ok.status_code == 200
            r = api.get("/api/documents", headers={"X-API-Key": keys["submitter"]})
            refused("denied:rate_limit", r, 429)
        expected = {cid for group in cids.values() for cid in group}
        site.project.audit_records(lambda a: a.correlation_id in expected, at_least=len(expected))
        assert site.sign_in(admin).status_code == 303
        yield Attacked(site, admin, cids, blocked.json()["rule_ids"])


def _chart(page: str, name: str) -> dict[str, tuple[int, str]]:
    """label -> (count, link) of a chart's table."""
    out: dict[str, tuple[int, str]] = {}
    for label, count in table_rows(page, f"chart-{name}-table"):
        assert label.href is not None
        out[label.text] = (int(count.text), label.href)
    return out


def _listed(client: httpx.Client, href: str) -> list[str]:
    """The correlation ids the Audit view lists at `href` (one page)."""
    page = client.get(href)
    assert page.status_code == 200, page.text
    if 'id="audit-results"' not in page.text:
        return []
    return [row[7].text for row in table_rows(page.text, "audit-results")]


def test_the_charts_count_the_refusals_and_link_to_their_records(attacked: Attacked) -> None:
    page = attacked.admin.get("/console/security", params={"range": "1h"})
    assert page.status_code == 200
    assert "style=" not in page.text  # presentation attributes only: the CSP allows no inline style
    assert "style-src 'self'" in page.headers["content-security-policy"]
    charts = {
        name: _chart(page.text, name)
        for name in ("auth_failures", "rbac_denials", "rate_limited", "waf_blocks")
    }
    assert {k: n for k, (n, _) in charts["auth_failures"].items()} == {
        "malformed": 1,
        "unknown_key": 1,
    }
    assert {k: n for k, (n, _) in charts["rbac_denials"].items()} == {
        "monitoring list_documents": 1
    }
    assert {k: n for k, (n, _) in charts["rate_limited"].items()} == {"submitter": 1}
    assert {k: n for k, (n, _) in charts["waf_blocks"].items()} == dict.fromkeys(
        attacked.waf_rules, 1
    )
    by_outcome = {
        "auth_failures": "denied:authenticate",
        "rbac_denials": "denied:authorize",
        "rate_limited": "denied:rate_limit",
        "waf_blocks": "denied:waf",
    }
    for name, outcome in by_outcome.items():
        listed: set[str] = set()
        for _count, href in charts[name].values():
            assert href.startswith("/console/audit?")
            assert f'href="{href.replace("&", "&amp;")}" tabindex="-1"' in page.text  # its bar
            listed |= set(_listed(attacked.admin, href))
        assert listed == attacked.cids[outcome], name
    [(_n, href)] = charts["rbac_denials"].values()
    assert _listed(attacked.admin, href) == sorted(attacked.cids["denied:authorize"])


def test_each_chart_has_a_text_alternative_and_a_series(attacked: Attacked) -> None:
    page = attacked.admin.get("/console/security").text  # the default range: 24 hours
    svg = re.search(r'<svg class="chart bars" id="chart-auth_failures-bars"[^>]*>', page)
    assert svg is not None and 'aria-hidden="true"' in svg.group(0)
    assert "Authentication failures by reason, 2 in all. malformed: 1; unknown_key: 1." in page
    series = table_rows(page, "chart-auth_failures-series-table")
    assert len(series) == 24
    counted = [row for row in series if row[1].text != "0"]
    assert sum(int(row[1].text) for row in counted) == 2
    listed = {cid for row in counted for cid in _listed(attacked.admin, row[1].href or "")}
    assert listed == attacked.cids["denied:authenticate"]
    assert 'id="chart-guardrail_actions"' in page and "None in this range." in page
    totals = re.search(r'<ul class="cards" id="security-totals">.*?</ul>', page, re.S)
    assert totals is not None and '<span class="count">2</span> Authentication failures' in (
        totals.group(0)
    )


def test_the_range_selector(attacked: Attacked) -> None:
    page = attacked.admin.get("/console/security", params={"range": "7d"}).text
    assert '<label for="security-range">Time range</label>' in page
    assert '<option value="7d" selected>' in page
    assert len(table_rows(page, "chart-auth_failures-series-table")) == 28
    custom = attacked.admin.get("/console/security", params={"since": "2020-01-01T00:00"})
    assert custom.status_code == 400 and "31 days at most" in custom.text
    window = {"since": "2020-01-01T00:00", "until": "2020-01-02T00:00"}
    quiet = attacked.admin.get("/console/security", params=window)
    assert quiet.status_code == 200 and "From 2020-01-01 00:00:00 UTC" in quiet.text
    assert quiet.text.count("None in this range.") == 6


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"range": "2y"}, "range must be one of 1h, 6h, 24h, 7d"),
        ({"since": "yesterday"}, "since must be a UTC time"),
        ({"since": "nan"}, "since must be a finite number"),
        ({"since": "200", "until": "100"}, "until must be after since"),
        ({"since": "1e300"}, "since must be a time between 1970 and the year 9999"),
        ({"range": "1h", "since": "100"}, "either range or since/until"),
        ({"until": "100"}, "since is missing"),
        ({"bogus": "1"}, "unknown parameter"),
    ],
)
def test_a_bad_range_is_a_400_page(
    attacked: Attacked, params: dict[str, str], message: str
) -> None:
    page = attacked.admin.get("/console/security", params=params)
    assert page.status_code == 400
    assert 'id="security-error"' in page.text and message in page.text
    assert 'id="security-range-form"' in page.text  # the form again, to pick a range


def test_refusals(site: ConsoleSite) -> None:
    page = check_read_only_view(site, "/console/security?range=1h", "chart-waf_blocks")
    assert "Authentication failures" in page


def test_charts_links_and_chains_on_each_database(tmp_path: Path, db_url: str) -> None:
    with start_site(tmp_path, db_url) as site, site.browser() as admin:
        with httpx.Client(base_url=site.url, timeout=10) as api:
            bad = api.get("/api/documents", headers={"X-API-Key": UNKNOWN_KEY})
            waf = api.get(
                "/api/documents",
                params={"q": SQLI},
                headers={"X-API-Key": site.project.keys["admin"]},
            )
        assert (bad.status_code, waf.status_code) == (401, 403)
        cids = {_cid(bad), _cid(waf)}
        site.project.audit_records(lambda a: a.correlation_id in cids, at_least=2)
        assert site.sign_in(admin).status_code == 303
        page = admin.get("/console/security", params={"range": "6h"}).text
        [(count, href)] = _chart(page, "auth_failures").values()
        assert count == 1 and _listed(admin, href) == [_cid(bad)]
        for count, href in _chart(page, "waf_blocks").values():
            assert count == 1 and _listed(admin, href) == [_cid(waf)]
        chains = table_rows(admin.get("/console/audit").text, "audit-chains")
        assert {row[0].text: row[1].text for row in chains}["gateway"] == "ok"


async def test_guardrail_charts_link_to_their_decisions(tmp_path: Path, site: ConsoleSite) -> None:
    entries: list[AuditEntry] = []
    guard = GuardService(GuardEngine(), principal="research", agent="planner", audit=entries.append)
    guard.scan(ATTACK, "user_input", "input")
    guard.scan(f"card {CARD} for jane.doe@example.com", "user_input", "input")
    guard.scan("What is the capital of France?", "user_input", "input")
    engine = shared_engine(site.project.settings.database_url())
    await write_entries(engine, tmp_path / "planner-checkpoints", "planner", entries)
    with site.browser() as admin:
        assert site.sign_in(admin).status_code == 303
        page = admin.get("/console/security", params={"range": "1h"}).text
        actions = _chart(page, "guardrail_actions")
        assert {label: n for label, (n, _) in actions.items()} == {"BLOCKED": 1, "ANONYMIZED": 1}
        types = _chart(page, "guardrail_types")
        assert types["PROMPT_ATTACK"][0] == 1 and types["CREDIT_DEBIT_CARD_NUMBER"][0] == 1
        for count, href in [*actions.values(), *types.values()]:
            assert len(_listed(admin, href)) == count
