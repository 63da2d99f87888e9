"""Signing in and out in a real browser against a real `bastion up`."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.console import LOGIN_URL, sign_in
from tests.browser.deployment import Deployment
from tests.browser.pagecheck import PageWatch, check_view

# One deployment for the package, on one worker; its start counts in the first test's time.
pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(300)]


def test_sign_in_form(page: Page) -> None:
    page.goto("/")
    expect(page).to_have_url(LOGIN_URL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the console")
    check_view(page, "sign-in")


def test_admin_signs_in_with_an_api_key(page: Page, deployment: Deployment) -> None:
    sign_in(page, deployment.keys["admin"])
    expect(page).to_have_url(re.compile(r"/console/documents"))
    expect(page.get_by_text("Signed in as")).to_contain_text("admin")
    expect(page.get_by_role("navigation", name="Console views")).to_be_visible()


def test_a_wrong_key_shows_the_error(page: Page, watch: PageWatch) -> None:
    watch.allow(r"status of 401")  # the browser logs the refused form post's status
    sign_in(page, "bst_not-a-real-key")
    expect(page).to_have_url(LOGIN_URL)
    error = page.get_by_role("alert")
    expect(error).to_have_text("That API key or token was not accepted. Check it and try again.")
    expect(page.get_by_label("API key or token")).to_have_attribute("aria-invalid", "true")
    check_view(page, "sign-in-refused")


def test_keyboard_only_sign_in(page: Page, deployment: Deployment) -> None:
    page.goto("/login")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("API key or token")).to_be_focused()
    page.keyboard.type(deployment.keys["admin"])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/documents$"))


def test_a_principal_without_console_views_is_told_so(
    page: Page, deployment: Deployment, watch: PageWatch
) -> None:
    watch.allow(r"status of 403")  # the browser logs the refused page's status
    sign_in(page, deployment.keys["submitter"])
    expect(page.get_by_role("heading", level=1)).to_have_text("No console views for submitter")
    expect(page.get_by_role("navigation", name="Console views")).to_have_count(0)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.goto("/console/dlq")
    expect(page.get_by_role("heading", level=1)).to_contain_text("403")
    check_view(page, "forbidden")
