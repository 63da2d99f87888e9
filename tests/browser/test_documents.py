"""The Documents view in a real browser: a document uploaded through the API appears and
reaches `archived` live (no reload), and its detail shows the fields with their evidence, its
audit path and its trace."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.archive import invoice, upload
from tests.browser.console import sign_in
from tests.browser.deployment import Deployment
from tests.browser.pagecheck import check_view

# One deployment for the package, on one worker; its start counts in the first test's time.
pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(300)]

SEED = 41
INVOICE_NUMBER = f"INV-{SEED:02d}-000001"


def test_upload_reaches_archived_live_and_its_detail_shows_evidence(
    page: Page, deployment: Deployment
) -> None:
    sign_in(page, deployment.keys["admin"])
    expect(page).to_have_url(re.compile(r"/console/documents$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Documents")
    # A mark on this document: gone if the page were reloaded.
    page.evaluate("window.bastionNotReloaded = true")
    total = int(page.locator("#count-total").inner_text())

    doc_id = upload(deployment, invoice(SEED), "browser-invoice.pdf")

    row = page.locator(f"#doc-{doc_id}")
    expect(row.locator('[data-field="status"]')).to_have_text("archived")
    expect(row.locator('[data-field="filename"]')).to_have_text("browser-invoice.pdf")
    expect(page.locator("#documents-live")).not_to_be_empty()
    expect(page.locator("#count-total")).to_have_text(str(total + 1))
    assert page.evaluate("window.bastionNotReloaded") is True
    check_view(page, "documents")

    row.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/console/documents/{doc_id}$"))
    expect(page.locator("#document-status")).to_have_text("archived")
    expect(page.locator("#document-filename")).to_have_text("browser-invoice.pdf")
    fields = page.locator("#document-fields")
    number = fields.locator("tr", has_text=INVOICE_NUMBER)
    expect(number).to_have_count(1)
    # Its evidence: the page it was read on and the rule that read it.
    expect(number.locator("code")).not_to_be_empty()
    expect(number).not_to_contain_text("no evidence stored")
    # Its path through the agents: the audit records of its correlation ID, and its trace
    # (steps that ended before the archiving the page showed, so they are recorded by now).
    audit = page.locator("#audit-table tbody")
    expect(audit).to_contain_text("upload_document")
    expect(audit).to_contain_text("extract")
    expect(page.locator("#trace-waterfall")).to_be_visible()
    expect(page.locator("#trace-table")).to_contain_text("upload_document")
    expect(page.locator("#trace-table")).to_contain_text("extract")
    check_view(page, "document-detail")
