"""Steps a person takes in the console, as the browser tests drive them."""

from __future__ import annotations

import re
from urllib.parse import quote

from playwright.sync_api import Page, expect

LOGIN_URL = re.compile(r"/login(\?.*)?$")


def sign_in(page: Page, credential: str, next_path: str = "/") -> None:
    """Fill the sign-in form with `credential` and submit it."""
    page.goto(f"/login?next={quote(next_path, safe='')}")
    page.get_by_label("API key or token").fill(credential)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(LOGIN_URL)
