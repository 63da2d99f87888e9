"""The console's Audit view over real HTTP: searching by correlation id, principal and outcome,
keyset pages, a bad filter (400 page, never a 500), each hash chain's verification (ok, and
problems once a record is edited in the database, `unchecked` past the time budget),
`audit_path` for the Documents view, and the view's refusals."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from bastion.config import Settings
from bastion.security import ChainMonitor
from bastion.storage.database import shared_engine
from bastion.web.console.views import audit as audit_view
from bastion.web.console.views.audit import audit_path, audit_path_source
from bastion.web.console.views.audit_chains import (
    NO_KEY,
    STILL_RUNNING,
    ChainWatch,
    monitor_for,
)
from tests.web.console.conftest import ConsoleSite
from tests.web.console.html_tables import Cell, table_rows
from tests.web.console.view_refusals import check_read_only_view

COLUMNS = ("time", "agent", "principal", "method", "outcome", "status", "latency", "cid")


def _cid(n: int, tag: str = "a") -> str:
    return f"{tag * 16}-{n:08x}"


def _call(site: ConsoleSite, principal: str | None, cid: str, path: str = "/api/documents") -> int:
    headers = {"X-Correlation-ID": cid}
    if principal is not None:
        headers["X-API-Key"] = site.project.keys[principal]
    return httpx.get(site.url + path, headers=headers, timeout=10).status_code


def _flushed(site: ConsoleSite, cids: set[str]) -> None:
    site.project.audit_records(
        lambda a: a.correlation_id in cids and a.agent == "gateway", at_least=len(cids)
    )


def _rows(page: httpx.Response) -> list[dict[str, Cell]]:
    assert page.status_code == 200, page.text
    if 'id="audit-results"' not in page.text:
        return []
    return [dict(zip(COLUMNS, row, strict=False)) for row in table_rows(page.text, "audit-results")]


@pytest.fixture
def admin(site: ConsoleSite) -> Iterator[httpx.Client]:
    with site.browser() as client:
        assert site.sign_in(client).status_code == 303
        yield client


def test_search_by_correlation_id_principal_and_outcome(
    site: ConsoleSite, admin: httpx.Client
) -> None:
    assert _call(site, "submitter", _cid(1)) == 200
    assert _call(site, "monitoring", _cid(2)) == 403
    assert _call(site, None, _cid(3)) == 401
    _flushed(site, {_cid(1), _cid(2), _cid(3)})

    rows = _rows(admin.get("/console/audit", params={"correlation_id": _cid(1)}))
    # The gateway's record, and the archivist's for the call the gateway made for it.
    assert sorted(r["agent"].text for r in rows) == ["archivist", "gateway"]
    [gateway] = [r for r in rows if r["agent"].text == "gateway"]
    assert (gateway["principal"].text, gateway["method"].text) == ("submitter", "list_documents")
    assert (gateway["outcome"].text, gateway["status"].text) == ("ok", "200")
    assert gateway["cid"].href == f"/console/audit?correlation_id={_cid(1)}"

    denied = _rows(
        admin.get("/console/audit", params={"principal": "monitoring", "outcome": "denied"})
    )
    assert [(r["cid"].text, r["outcome"].text) for r in denied] == [(_cid(2), "denied:authorize")]
    anyone = {"principal": "-", "outcome": "denied", "method": "list_*", "agent": "gateway"}
    assert [r["cid"].text for r in _rows(admin.get("/console/audit", params=anyone))] == [_cid(3)]
    form = admin.get(
        "/console/audit", params={"outcome": "any", "principal": "", "agent": "gateway"}
    )
    assert {r["agent"].text for r in _rows(form)} == {"gateway"}  # empty fields mean "any"
    assert '<option value="any" selected>' in form.text


def test_the_search_form(site: ConsoleSite, admin: httpx.Client) -> None:
    page = admin.get("/console/audit", params={"outcome": "denied:waf", "waf_rule": "sqli-1"})
    assert page.status_code == 200
    for name in ("correlation_id", "principal", "method", "agent", "since", "until", "outcome"):
        assert f'<label for="audit-{name}">' in page.text and f'id="audit-{name}"' in page.text
    # A chart link's exact outcome is selected; its other filters are kept for the next search.
    assert '<option value="denied:waf" selected>denied:waf</option>' in page.text
    assert '<input type="hidden" name="waf_rule" value="sqli-1">' in page.text
    # Epoch seconds (what chart links carry) are shown as UTC beside the field.
    dated = admin.get("/console/audit", params={"since": "0", "until": "2026-12-07T22:30"})
    assert 'value="0"' in dated.text and "1970-01-01 00:00:00 UTC" in dated.text
    assert "2026-12-07 22:30:00 UTC" in dated.text
    # What the WAF lets through is escaped where the form shows it again.
    hostile = admin.get("/console/audit", params={"principal": '" autofocus data-x="1'})
    assert hostile.status_code == 200 and 'value="&#34; autofocus data-x=&#34;1"' in hostile.text


def test_pages_of_records(
    site: ConsoleSite, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    cids = [_cid(n, "b") for n in range(5)]
    for cid in cids:
        assert _call(site, "submitter", cid) == 200
    _flushed(site, set(cids))
    monkeypatch.setattr(audit_view, "PAGE_SIZE", 2)
    search = {"principal": "submitter", "agent": "gateway", "method": "list_documents"}
    page = admin.get("/console/audit", params=search)
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        seen += [r["cid"].text for r in _rows(page)]
        if 'id="audit-older"' not in page.text:
            break
        href = page.text.split('id="audit-older" href="', 1)[1].split('"', 1)[0]
        page = admin.get(href.replace("&amp;", "&"))
        assert 'id="audit-newest"' in page.text
    assert seen == list(reversed(cids)) and pages == 3  # newest first, two a page


BAD_FILTERS = [
    ({"since": "yesterday"}, "since must be a UTC time"),
    ({"until": "inf"}, "until must be a finite number"),
    ({"since": "1e20"}, "since must be a time between 1970 and the year 9999"),
    ({"until": "-5"}, "until must be a time between 1970"),
    ({"cursor": "not-a-cursor"}, "invalid cursor"),
    ({"bogus": "1"}, "unknown filter"),
    ({"auth_reason": "guessing"}, "auth_reason must be one of"),
    ({"method": "*"}, "method `*` matches everything"),
    ({"principal": "p" * 300}, "principal must be a non-empty text"),
]


def test_a_bad_filter_is_a_400_page(admin: httpx.Client) -> None:
    for params, message in BAD_FILTERS:
        page = admin.get("/console/audit", params=params)
        assert page.status_code == 400, params
        assert 'id="audit-error"' in page.text and message in page.text, params
        assert 'id="audit-search-form"' in page.text


def _chains(page: httpx.Response) -> dict[str, list[str]]:
    assert page.status_code == 200, page.text
    return {row[0].text: [c.text for c in row[1:]] for row in table_rows(page.text, "audit-chains")}


def test_chain_status_ok(site: ConsoleSite) -> None:
    assert _call(site, "submitter", _cid(7, "c")) == 200
    _flushed(site, {_cid(7, "c")})
    with site.browser() as admin:
        assert site.sign_in(admin).status_code == 303
        chains = _chains(admin.get("/console/audit"))
        assert chains["gateway"][0] == "ok" and chains["archivist"][0] == "ok"
        assert int(chains["gateway"][1]) >= 1 and chains["gateway"][2].endswith("UTC")


def test_an_edited_record_shows_as_problems(site: ConsoleSite) -> None:
    assert _call(site, "submitter", _cid(8, "d")) == 200
    _flushed(site, {_cid(8, "d")})
    engine = shared_engine(site.project.settings.database_url())
    with engine.begin() as conn:
        changed = conn.execute(
            text("UPDATE audit_records SET principal = 'admin' WHERE correlation_id = :c"),
            {"c": _cid(8, "d")},
        ).rowcount
    assert changed >= 1
    with site.browser() as admin:
        assert site.sign_in(admin).status_code == 303
        chains = _chains(admin.get("/console/audit"))
    assert chains["gateway"][0] == "problems" and "problem" in chains["gateway"][4]


async def test_a_check_past_the_wait_shows_unchecked(site: ConsoleSite) -> None:
    assert _call(site, "submitter", _cid(9, "e")) == 200
    _flushed(site, {_cid(9, "e")})
    release = threading.Event()

    def slow(settings: Settings) -> ChainMonitor:
        release.wait(30)
        return monitor_for(settings)

    watch = ChainWatch(site.project.settings, wait_seconds=0.01, make_monitor=slow)
    shown = await watch.status()
    assert shown.note == STILL_RUNNING
    states = {c.chain: (c.state, c.head_seq) for c in shown.chains}
    assert states["gateway"][0] == "unchecked" and states["gateway"][1] >= 1
    release.set()
    watch_done = ChainWatch(site.project.settings, wait_seconds=30, make_monitor=monitor_for)
    done = await watch_done.status()
    assert done.note is None and {c.state for c in done.chains} == {"ok"}


def test_audit_path_lists_one_request_oldest_first(site: ConsoleSite) -> None:
    assert _call(site, "submitter", _cid(10, "f")) == 200
    site.project.audit_records(lambda a: a.correlation_id == _cid(10, "f"), at_least=2)
    path = audit_path(site.project.settings, _cid(10, "f"))
    assert sorted(step["agent"] for step in path) == ["archivist", "gateway"]
    assert [step["ts"] for step in path] == sorted(step["ts"] for step in path)
    assert set(path[0]) == {"ts", "agent", "principal", "method", "outcome", "status", "latency_ms"}
    assert audit_path(site.project.settings, _cid(11, "f")) == []
    assert asyncio.run(audit_path_source(site.project.settings)(_cid(10, "f"))) == path
    with pytest.raises(ValueError, match="correlation_id"):
        audit_path(site.project.settings, "")


def test_refusals(site: ConsoleSite) -> None:
    page = check_read_only_view(site, "/console/audit?principal=monitoring", "audit-search-form")
    assert 'id="audit-chains-heading"' in page


async def test_an_unreadable_audit_key_is_said_on_the_page(site: ConsoleSite) -> None:
    settings = site.project.settings.model_copy(deep=True)
    settings.audit.hmac_key = "secret://file/secrets/no-such.key"
    shown = await ChainWatch(settings).status()
    assert (shown.chains, shown.note) == ([], NO_KEY)
