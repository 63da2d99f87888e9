"""The Dead letters view in a real browser: an admin redrives a dead letter and sees it leave
the list; monitoring sees the dead letters but no redrive button, and a forged redrive from
its session is refused with a 403 page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.browser.archive import dead_letter, invoice, poison, settled, upload
from tests.browser.console import sign_in
from tests.browser.deployment import Deployment
from tests.browser.pagecheck import PageWatch, check_view

# One deployment for the package, on one worker; its start counts in the first test's time.
pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def poisoned(deployment: Deployment) -> Iterator[str]:
    """A document the pipeline gives up on: its message stays on the dead-letter queue."""
    doc_id = upload(deployment, poison(), "poison.pdf")
    assert settled(deployment, doc_id, {"failed", "archived"})["status"] == "failed"
    yield doc_id


def dead_letter_row(page: Page, doc_id: str) -> str:
    """The id of the dead-letter row that links to `doc_id`."""
    link = page.locator(f'a[href="/console/documents/{doc_id}"]')  # within the row
    row = page.locator("#dlq-table tbody tr", has=link)
    expect(row).to_have_count(1)
    row_id = row.get_attribute("id")
    assert row_id is not None
    return row_id


def test_admin_redrives_a_dead_letter(page: Page, deployment: Deployment, poisoned: str) -> None:
    # A dead letter whose redrive succeeds: an archived document's message, dead-lettered.
    doc_id = upload(deployment, invoice(42), "redrive-me.pdf")
    settled(deployment, doc_id, {"archived"})
    message_id = dead_letter(deployment, doc_id, "browser_redrive_test")

    sign_in(page, deployment.keys["admin"], "/console/dlq")
    expect(page).to_have_url(re.compile(r"/console/dlq$"))
    row = page.locator(f"#dlq-{message_id}")
    expect(row.locator(".dlq-reason")).to_have_text("browser_redrive_test")
    poison_row = page.locator(f"#{dead_letter_row(page, poisoned)}")
    expect(poison_row.locator(".dlq-reason")).to_have_text("truncated")
    check_view(page, "dead-letters")

    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("button", name=f"Redrive message {message_id}").click()
    expect(page.locator(f"#dlq-{message_id}")).to_have_count(0)
    expect(page.locator("#dlq-result")).not_to_be_empty()
    assert asked == ["Redrive this message back onto the queue?"]
    expect(poison_row).to_have_count(1)


def test_monitoring_sees_no_redrive_and_a_forged_one_is_refused(
    page: Page, deployment: Deployment, poisoned: str, watch: PageWatch
) -> None:
    sign_in(page, deployment.keys["monitoring"], "/console/dlq")
    expect(page).to_have_url(re.compile(r"/console/dlq$"))
    row_id = dead_letter_row(page, poisoned)
    expect(page.get_by_role("button", name=re.compile("Redrive"))).to_have_count(0)
    expect(page.locator("form[action='/console/dlq/redrive']")).to_have_count(0)

    # The form an admin's page would have, forged into monitoring's page and submitted with
    # its own session and CSRF token.
    watch.allow(r"status of 403")  # the browser logs the refused page's status
    page.evaluate(
        """(messageId) => {
          const form = document.createElement("form");
          form.method = "post";
          form.action = "/console/dlq/redrive";
          for (const [name, value] of [["csrf_token", document.body.dataset.csrf],
                                       ["message_id", messageId]]) {
            const input = document.createElement("input");
            input.type = "hidden"; input.name = name; input.value = value;
            form.append(input);
          }
          document.body.append(form);
          form.submit();
        }""",
        row_id.removeprefix("dlq-"),
    )
    expect(page.get_by_role("heading", level=1)).to_contain_text("403")
    page.goto("/console/dlq")
    expect(page.locator(f"#{row_id}")).to_have_count(1)  # still dead-lettered
