"""What every browser test checks on every page it opens: no console error, no uncaught error,
no Content-Security-Policy violation; on the main views, no serious or critical accessibility
violation (axe-core, bundled in the axe-playwright-python package); and screenshots of them.

A test that expects an error (the browser logs a refused request's status, e.g. the 401 of a
wrong key) says so with `watch.allow(pattern)`: only messages matching it are let through.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, ConsoleMessage, Page

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
BLOCKING_IMPACTS = {"serious", "critical"}

CSP_BINDING = "bastionCspViolation"
CSP_RECORD = "bastionCspViolations"
# Runs in every document before its own scripts (the CSP does not apply to it): every
# violation the page reports is recorded on `window` and handed to the test at once.
CSP_LISTENER = f"""
window.{CSP_RECORD} = [];
document.addEventListener("securitypolicyviolation", (event) => {{
  const violation = {{
    directive: event.violatedDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
    line: event.lineNumber,
    sample: event.sample,
  }};
  window.{CSP_RECORD}.push(violation);
  window.{CSP_BINDING}(violation);
}});
"""

_axe = Axe()


@dataclass
class PageWatch:
    """The problems seen in a browser context's pages, and the ones a test expects."""

    problems: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Let console errors matching `pattern` (a regular expression) through."""
        self.allowed.append(re.compile(pattern))

    def attach(self, context: BrowserContext) -> None:
        context.expose_binding(CSP_BINDING, self._csp)
        context.add_init_script(CSP_LISTENER)
        context.on("page", self._watch_page)

    def _watch_page(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught error: {error}"))

    def _csp(self, _source: Any, violation: dict[str, Any]) -> None:
        self.problems.append(f"CSP violation: {json.dumps(violation, sort_keys=True)}")

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.problems.append(f"CSP console message: {text}")
        elif message.type == "error" and not any(p.search(text) for p in self.allowed):
            self.problems.append(f"console error: {text} ({message.location})")

    def check(self) -> None:
        """Fail with every problem seen so far."""
        assert not self.problems, "\n".join(self.problems)


def accessibility_problems(page: Page) -> list[str]:
    """The page's serious and critical axe-core violations, one line each."""
    results = _axe.run(page)
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in BLOCKING_IMPACTS:
            targets = [node["target"] for node in violation["nodes"]]
            rule = f"{violation['id']} ({violation['impact']})"
            found.append(f"{rule}: {violation['help']} {targets}")
    return found


def check_view(page: Page, name: str) -> None:
    """A main view, as it is now: no serious accessibility violation, then its screenshot in
    test-artifacts/screenshots/<name>.png (overwritten each run)."""
    problems = accessibility_problems(page)
    assert not problems, f"{name}: " + "\n".join(problems)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
