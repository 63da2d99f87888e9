"""The browser tests' fixtures: one real `bastion up` and one headless Chromium (Debian's,
never a downloaded one) for the package's tests, and a fresh browser context per test whose
pages are watched for console errors, uncaught errors and CSP violations (`pagecheck`).

Every browser test is marked `xdist_group("browser")`, so that with `--dist loadgroup` they
share this one deployment on one worker; it stops once the package's last test has run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.browser.deployment import Deployment, bastion_up
from tests.browser.pagecheck import PageWatch

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Hang guards for a loaded 2-core machine, not expectations of speed.
TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="package")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with bastion_up(tmp_path_factory.mktemp("browser")) as running:
        yield running


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch()


NewContext = Callable[[], BrowserContext]


@pytest.fixture
def new_context(browser: Browser, deployment: Deployment, watch: PageWatch) -> Iterator[NewContext]:
    """Makes fresh contexts (no cookies) on the deployment's gateway, their pages watched;
    they are closed after the test."""
    made: list[BrowserContext] = []

    def make() -> BrowserContext:
        ctx = browser.new_context(base_url=deployment.url, viewport=VIEWPORT)
        ctx.set_default_timeout(TIMEOUT_MS)
        ctx.set_default_navigation_timeout(TIMEOUT_MS)
        watch.attach(ctx)
        made.append(ctx)
        return ctx

    try:
        yield make
    finally:
        for ctx in made:
            ctx.close()


@pytest.fixture
def context(new_context: NewContext) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a browser test's body, its pages' problems fail it (as a failure, not an error)."""
    result = yield
    watch = getattr(item, "funcargs", {}).get("watch")
    if isinstance(watch, PageWatch):
        watch.check()
    return result
