"""The Security and Audit views in a real browser: refused credentials and an RBAC denial made
through the API show in the security charts, a chart leads to its audit records, and the audit
view shows the hash chains verified."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.archive import invoice
from tests.browser.console import sign_in
from tests.browser.deployment import Deployment
from tests.browser.pagecheck import check_view

# One deployment for the package, on one worker; its start counts in the first test's time.
pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(300)]


def refusals(deployment: Deployment) -> None:
    """A refused API key, and monitoring uploading a document (its role may not)."""
    with httpx.Client(base_url=deployment.url, timeout=30) as client:
        refused = client.get("/api/documents", headers={"X-API-Key": "bst_unknown_key"})
        assert refused.status_code == 401, refused.text
    with deployment.api("monitoring") as api:
        files = {"file": ("denied.pdf", invoice(43), "application/pdf")}
        denied = api.post("/api/documents", files=files)
        assert denied.status_code == 403, denied.text


def test_refusals_show_in_security_and_lead_to_their_audit_records(
    page: Page, deployment: Deployment
) -> None:
    refusals(deployment)
    sign_in(page, deployment.keys["admin"], "/console/security")
    expect(page).to_have_url(re.compile(r"/console/security$"))
    auth = page.locator("#chart-auth_failures")
    expect(auth.locator("#chart-auth_failures-table tbody tr").first).to_be_visible()
    rbac = page.locator("#chart-rbac_denials-table")
    expect(rbac).to_contain_text("monitoring")
    expect(rbac).to_contain_text("upload_document")
    check_view(page, "security")

    auth.get_by_role("link", name=re.compile(r"^List all its records")).click()
    expect(page).to_have_url(re.compile(r"/console/audit\?"))
    results = page.locator("#audit-results tbody tr")
    expect(results.first).to_be_visible()
    expect(results.first).to_contain_text("denied:authenticate")


def test_the_audit_view_searches_and_shows_the_chains_verified(
    page: Page, deployment: Deployment
) -> None:
    sign_in(page, deployment.keys["admin"], "/console/audit")
    expect(page).to_have_url(re.compile(r"/console/audit$"))
    gateway = page.locator("#chain-gateway")
    expect(gateway.locator("td").first).to_have_text("ok")
    expect(gateway).to_contain_text("records verified")

    page.get_by_label("Principal", exact=True).fill("admin")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"principal=admin"))
    rows = page.locator("#audit-results tbody tr")
    expect(rows.first).to_be_visible()
    expect(rows.first.locator("td").nth(2)).to_have_text("admin")
    check_view(page, "audit")
