"""Every view in the console's navigation, as admin and as monitoring: it opens (200) with a
heading, marked as the current page, without console errors or CSP violations, and without
serious accessibility violations (the other scenarios take the screenshots)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.console import sign_in
from tests.browser.deployment import Deployment
from tests.browser.pagecheck import accessibility_problems

# One deployment for the package, on one worker; its start counts in the first test's time.
pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(300)]


@pytest.mark.parametrize("principal", ["admin", "monitoring"])
def test_every_view_in_the_navigation_opens(
    page: Page, deployment: Deployment, principal: str
) -> None:
    sign_in(page, deployment.keys[principal])
    expect(page.get_by_text("Signed in as")).to_contain_text(principal)
    links = page.get_by_role("navigation", name="Console views").get_by_role("link")
    expect(links.first).to_be_visible()
    views = [(link.inner_text(), link.get_attribute("href") or "") for link in links.all()]
    assert len(views) == 6, views  # the monitoring role reads every view, as admin does

    problems = []
    for title, path in views:
        response = page.goto(path)
        assert response is not None
        if response.status != 200:
            problems.append(f"{title} ({path}): HTTP {response.status}")
            continue
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        expect(page.get_by_role("link", name=title)).to_have_attribute("aria-current", "page")
        problems += [f"{title}: {found}" for found in accessibility_problems(page)]
    assert not problems, "\n".join(problems)
