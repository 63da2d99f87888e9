"""The console's Alarms view over real HTTP: a rule tripped for real (refused API keys) shows
pending, then firing, then resolved once the refusals stop, with its changes and its webhook
posts (to a real loopback receiver) listed; the live fragment; the refusals; the engine off."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.config import Settings
from tests.alarms.servers import Receiver, webhook_receiver
from tests.web.console.alarm_drill import (
    DRILL,
    FRAGMENT,
    QUIET,
    console_site,
    drill_alarms,
    refuse_a_key,
    wait_for_page,
)
from tests.web.console.conftest import ConsoleSite

HOOK_PATH = "/services/T000/B000/not-for-the-page"


def state_of(html: str, alarm: str) -> str | None:
    match = re.search(rf'id="alarm-row-{alarm}" data-alarm="{alarm}" data-state="(\w+)"', html)
    return match.group(1) if match else None


def table(html: str, name: str) -> str:
    match = re.search(rf'<table id="alarm-{name}">(.*?)</table>', html, re.S)
    return match.group(1) if match else ""


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    hooks = Receiver()
    with webhook_receiver(hooks) as server:
        yield hooks, server.url


@pytest.fixture
def drill_site(
    tmp_path: Path, sqlite_url: str, receiver: tuple[Receiver, str]
) -> Iterator[ConsoleSite]:
    def configure(settings: Settings) -> None:
        settings.alarms = drill_alarms(receiver[1] + HOOK_PATH)

    with console_site(tmp_path, sqlite_url, configure) as site:
        yield site


def test_a_real_condition_fires_and_resolves_in_the_page(
    drill_site: ConsoleSite, receiver: tuple[Receiver, str]
) -> None:
    hooks, hook_url = receiver
    with drill_site.browser() as b:
        drill_site.sign_in(b, "monitoring")  # read-only: the view needs no more
        page = b.get("/console/alarms")
        assert page.status_code == 200
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        html = page.text
        assert 'id="alarms-announce"' in html and 'aria-live="polite"' in html
        assert 'data-fragment="/console/alarms?fragment=1"' in html
        assert "sum(rate(bastion_auth_failures_total{agent=&#34;gateway&#34;}[3s])) &gt; 0" in html
        assert state_of(html, DRILL) in ("nodata", "inactive")
        assert 'id="alarms-disabled"' not in html

        # Both scraped processes are up; the quiet rule has a value and stays inactive.
        html = wait_for_page(
            b, lambda h: len(re.findall(r'data-up="up"', h)) >= 2, what="the targets up"
        )
        assert re.search(r'data-target="gateway" data-up="up"', html)
        assert re.search(r'data-target="archivist" data-up="up"', html)
        html = wait_for_page(b, lambda h: state_of(h, QUIET) == "inactive", what="a value")

        # The drill: refused API keys until the alarm fires (the first post is answered 500).
        hooks.statuses.append(500)
        html = wait_for_page(
            b,
            lambda h: state_of(h, DRILL) == "firing",
            meanwhile=lambda: refuse_a_key(drill_site),
            what=f"{DRILL} firing",
        )
        assert re.search(rf'id="alarm-state-{DRILL}" class="state state-firing">firing<', html)
        changes = re.findall(rf'data-alarm="{DRILL}" data-event="(\w+)"', table(html, "history"))
        assert changes[:2] == ["firing", "pending"]  # newest first

        # Posted to the receiver, listed with the destination redacted to scheme and host.
        html = wait_for_page(
            b,
            lambda h: f'data-alarm="{DRILL}" data-event="firing" data-outcome="ok"' in h,
            what="the firing notification",
        )
        assert f"<code>{hook_url}</code>" in html and HOOK_PATH not in html
        sent = re.findall(
            rf'data-alarm="{DRILL}" data-event="firing" data-outcome="(\w+)">.*?'
            r"<td>(\d+)</td>.*?<td>([^<]*)</td>\s*</tr>",
            table(html, "notifications"),
            re.S,
        )
        assert sent == [("ok", "2", "HTTP 200"), ("error", "1", "HTTP 500")]  # newest first
        assert hooks.paths[0] == HOOK_PATH and "[FIRING] " + DRILL in hooks.bodies[0]["text"]

        # The refusals stop: the rate falls to 0 and the alarm is resolved.
        html = wait_for_page(
            b, lambda h: state_of(h, DRILL) == "resolved", what=f"{DRILL} resolved"
        )
        assert f'data-alarm="{DRILL}" data-event="resolved"' in html
        html = wait_for_page(
            b,
            lambda h: f'data-alarm="{DRILL}" data-event="resolved" data-outcome="ok"' in h,
            what="the resolved notification",
        )
        assert state_of(html, QUIET) == "inactive"
        assert any("[RESOLVED] " + DRILL in body["text"] for body in hooks.bodies)


def test_the_fragment_is_the_live_part_only(drill_site: ConsoleSite) -> None:
    with drill_site.browser() as b:
        drill_site.sign_in(b, "admin")
        fragment = b.get(FRAGMENT)
        assert fragment.status_code == 200
        assert fragment.text.lstrip().startswith('<div id="alarms-live">')
        assert "<html" not in fragment.text and "Sign out" not in fragment.text
        assert 'id="alarm-states"' in fragment.text and f'id="alarm-row-{DRILL}"' in fragment.text
        assert fragment.headers["content-security-policy"].startswith("default-src 'none'")
        assert fragment.headers["cache-control"] == "no-store"
        script = b.get("/static/alarms.js")
        assert script.status_code == 200 and "DOMParser" in script.text
        assert not re.search(r"\.(innerHTML|outerHTML)|insertAdjacentHTML|eval\(", script.text)
        assert '"/static/alarms.js"' in b.get("/static/console.js").text


@pytest.mark.parametrize("path", ["/console/alarms", FRAGMENT])
def test_refusals(site: ConsoleSite, path: str) -> None:
    with site.browser() as b:
        anonymous = b.get(path, follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/login?next=%2Fconsole%2Falarms")
    with site.browser() as b:
        site.sign_in(b, "submitter")  # no console view granted
        refused = b.get(path)
        assert refused.status_code == 403 and "ConsoleDrill" not in refused.text
        assert "alarm-states" not in refused.text and "Correlation ID" in refused.text
    with site.browser() as b:
        site.sign_in(b, "monitoring")
        assert b.get(path).status_code == 200
        # Read-only: nothing answers a state-changing method, with or without the CSRF token.
        token = b.cookies.get("bastion_csrf") or ""
        assert b.post(path, headers={"X-CSRF-Token": token}).status_code in (403, 405)
        assert b.post(path).status_code == 403


def test_the_shipped_rules_are_listed_before_any_round(site: ConsoleSite) -> None:
    with site.browser() as b:
        site.sign_in(b, "admin")
        html = b.get("/console/alarms").text
    for rule in ("HttpServerErrorRatio", "AuthFailureSpike", "CircuitBreakerOpen"):
        assert state_of(html, rule) == "nodata"
    assert 'id="alarm-targets-none"' in html and 'id="alarm-history-none"' in html
    assert 'id="alarm-webhooks-none"' in html and "alarms.webhooks" in html


def test_a_disabled_engine_says_how_to_enable_it(tmp_path: Path, sqlite_url: str) -> None:
    def configure(settings: Settings) -> None:
        settings.alarms = drill_alarms(None, enabled=False)

    with console_site(tmp_path, sqlite_url, configure) as site, site.browser() as b:
        site.sign_in(b, "admin")
        html = b.get("/console/alarms").text
    assert 'id="alarms-disabled"' in html and "alarms.enabled: true" in html
    assert state_of(html, DRILL) == "nodata"
