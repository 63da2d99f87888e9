"""The Alarms view in a real browser: an injected condition (refused API keys at the gateway)
fires the deployment's `BrowserAuthFailures` rule and, once it stops, resolves it; the page
shows both live (it refreshes itself) and announces them politely."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.console import sign_in
from tests.browser.deployment import ALARM_INTERVAL_SECONDS, INJECTED_ALARM, Deployment
from tests.browser.pagecheck import check_view

# One deployment for the package, on one worker; its start counts in the first test's time.
pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(300)]

BURST = 3
BURSTS = 5
# A few evaluation rounds: the rule needs two scrapes of the counter within its window.
FIRE_WAIT_MS = int(ALARM_INTERVAL_SECONDS * 4 * 1000)
RESOLVE_WAIT_MS = 90_000  # its 10 s window, then a round or two; a hang guard


def refused_credentials(deployment: Deployment) -> None:
    """A burst of API calls with a key the gateway refuses (401 each)."""
    with httpx.Client(base_url=deployment.url, timeout=30) as client:
        for _ in range(BURST):
            answer = client.get("/api/documents", headers={"X-API-Key": "bst_refused_by_design"})
            assert answer.status_code == 401, answer.text


def test_an_injected_condition_fires_and_resolves_live(page: Page, deployment: Deployment) -> None:
    sign_in(page, deployment.keys["admin"], "/console/alarms")
    expect(page).to_have_url(re.compile(r"/console/alarms$"))
    state = page.locator(f"#alarm-state-{INJECTED_ALARM}")
    # Refusals made by an earlier test may still count: start from a quiet state.
    expect(state).not_to_have_text(re.compile("firing|pending"), timeout=RESOLVE_WAIT_MS)
    page.evaluate("window.bastionNotReloaded = true")

    # Bursts until the rule fires: a counter's first scrape alone gives no rate yet.
    for _ in range(BURSTS):
        refused_credentials(deployment)
        try:
            expect(state).to_have_text("firing", timeout=FIRE_WAIT_MS)
            break
        except AssertionError:
            continue
    expect(state).to_have_text("firing")
    expect(page.locator("#alarms-announce")).to_contain_text(f"{INJECTED_ALARM} is now firing")
    expect(page.locator("#alarms-firing-count")).not_to_have_text("0")
    fired = page.locator(f'#alarm-history tr[data-alarm="{INJECTED_ALARM}"][data-event="firing"]')
    expect(fired.first).to_be_visible()
    check_view(page, "alarms")

    # No more refusals: the rate falls to 0 once the window has passed, and the alarm resolves.
    expect(state).to_have_text("resolved", timeout=RESOLVE_WAIT_MS)
    expect(page.locator("#alarms-announce")).to_contain_text(f"{INJECTED_ALARM} is now resolved")
    resolved = page.locator(
        f'#alarm-history tr[data-alarm="{INJECTED_ALARM}"][data-event="resolved"]'
    )
    expect(resolved.first).to_be_visible()
    assert page.evaluate("window.bastionNotReloaded") is True
