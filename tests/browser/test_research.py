"""The Research view in a real browser: a question asked on the page runs on the deployment's
research agents (offline, on the bundled corpus), and the plan, the sources with their
credibility and the report stream into the page, then the citations; monitoring may read the
view but is not offered the question form."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.console import sign_in
from tests.browser.deployment import Deployment
from tests.browser.pagecheck import check_view

# One deployment for the package, on one worker; its start counts in the first test's time.
pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(300)]

QUESTION = "When was the designer of the Eiffel Tower born?"
RUN_TIMEOUT_MS = 120_000  # a hang guard: the whole run, planner to critic, on a loaded machine

# Counts the report's pieces as they arrive, before the run is done (then the page renders the
# report with its citation links in one go).
COUNT_STREAMED = """() => {
  window.bastionStreamed = 0;
  const report = document.getElementById("research-report");
  new MutationObserver((changes) => {
    if (!report.classList.contains("streaming")) return;
    for (const change of changes) window.bastionStreamed += change.addedNodes.length;
  }).observe(report, { childList: true });
}"""


def test_a_question_streams_its_plan_sources_and_report(page: Page, deployment: Deployment) -> None:
    sign_in(page, deployment.keys["admin"], "/console/research")
    expect(page).to_have_url(re.compile(r"/console/research$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Research")
    ask = page.get_by_role("button", name="Ask")
    expect(ask).to_be_enabled()  # the page script is running
    page.evaluate(COUNT_STREAMED)

    page.get_by_role("textbox", name="Question").fill(QUESTION)
    ask.click()

    status = page.locator("#research-status")
    expect(status).to_have_text(
        re.compile(r"^Done: the report cites \d+ sources"), timeout=RUN_TIMEOUT_MS
    )
    expect(page.locator("#research-plan > li").first).to_be_visible()
    sources = page.locator("#research-sources tbody tr")
    expect(sources.first).to_be_visible()
    expect(sources.first.locator(".credibility")).not_to_be_empty()
    expect(page.locator("#research-report")).to_contain_text("1832")
    expect(page.locator("#research-citations > li").first).to_contain_text("Eiffel")
    assert page.evaluate("window.bastionStreamed") > 0, "the report arrived only at the end"
    check_view(page, "research")

    page.get_by_role("link", name="Open this conversation").click()
    expect(page).to_have_url(re.compile(r"/console/research/conversations/"))
    expect(page.locator("#main")).to_contain_text(QUESTION)
    expect(page.locator("#main")).to_contain_text("1832")
    check_view(page, "research-conversation")


def test_monitoring_reads_research_but_cannot_ask(page: Page, deployment: Deployment) -> None:
    sign_in(page, deployment.keys["monitoring"], "/console/research")
    expect(page).to_have_url(re.compile(r"/console/research$"))
    expect(page.locator("#research-ask-refused")).not_to_be_empty()
    expect(page.locator("#research-form")).to_have_count(0)
