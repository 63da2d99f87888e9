"""The page checks themselves catch what they are for: an inline script the CSP blocks, an
inline style it blocks, a console error, an uncaught error; and a page with a serious
accessibility violation is reported."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.browser.pagecheck import CSP_RECORD, PageWatch, accessibility_problems

# One deployment for the package, on one worker; its start counts in the first test's time.
pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(300)]


def seen(watch: PageWatch, page: Page, kind: str) -> list[str]:
    """The problems of `kind` so far (taken out of the watch: this test expects them)."""
    found = [p for p in watch.problems if p.startswith(kind)]
    watch.problems = [p for p in watch.problems if not p.startswith(kind)]
    return found


def test_a_blocked_inline_script_and_style_are_csp_violations(page: Page, watch: PageWatch) -> None:
    page.goto("/login")
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.head.append(script);
          const style = document.createElement("style");
          style.textContent = "body { background: red }";
          document.head.append(style);
        }"""
    )
    # Both recorded in the page: their reports to the test were sent before this answer.
    page.wait_for_function(f"() => window.{CSP_RECORD}.length >= 2")
    assert page.evaluate("window.injected") is None  # the CSP blocked it
    violations = seen(watch, page, "CSP violation")
    assert any('"script-src-elem"' in v for v in violations), violations
    assert any('"style-src-elem"' in v for v in violations), violations
    seen(watch, page, "CSP console message")


def test_console_and_uncaught_errors_are_problems(page: Page, watch: PageWatch) -> None:
    page.goto("/login")
    page.evaluate("console.error('a page that logs an error')")
    page.evaluate("setTimeout(() => { throw new Error('an uncaught error') }, 0)")
    # Answered after the timer that throws: the error's report was sent before this answer.
    page.wait_for_function("() => new Promise((done) => setTimeout(() => done(true), 0))")
    assert any("a page that logs an error" in p for p in seen(watch, page, "console error"))
    assert any("an uncaught error" in p for p in seen(watch, page, "uncaught error"))


def test_a_serious_accessibility_violation_is_reported(page: Page) -> None:
    page.goto("/login")
    page.evaluate("document.getElementById('credential').labels[0].remove()")
    problems = accessibility_problems(page)
    assert any(p.startswith("label (critical)") for p in problems), problems
