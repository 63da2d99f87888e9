"""Signing out ends the session for good: the old cookie, replayed in a new browser context,
is refused by the pages (back to the sign-in form) and by the API (401)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import NewContext
from tests.browser.console import LOGIN_URL, sign_in, sign_out
from tests.browser.deployment import Deployment

# One deployment for the package, on one worker; its start counts in the first test's time.
pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(300)]


def test_an_old_session_cookie_is_refused_after_sign_out(
    page: Page, deployment: Deployment, new_context: NewContext
) -> None:
    sign_in(page, deployment.keys["admin"])
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    cookies = page.context.cookies()
    assert any(c["httpOnly"] for c in cookies), cookies  # the session cookie is there
    assert page.context.request.get("/api/documents").status == 200

    sign_out(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the console")

    replay = new_context()
    replay.add_cookies(cookies)  # type: ignore[arg-type]
    again = replay.new_page()
    again.goto("/console/documents")
    expect(again).to_have_url(LOGIN_URL)
    expect(again).to_have_url(re.compile(r"next=%2Fconsole%2Fdocuments"))
    assert replay.request.get("/api/documents").status == 401
