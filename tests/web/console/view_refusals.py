"""The refusals every read-only console view owes, checked over real HTTP in one place."""

from __future__ import annotations

from urllib.parse import quote

from tests.web.console.conftest import ConsoleSite, csrf_of


def check_read_only_view(site: ConsoleSite, target: str, marker: str) -> str:
    """Without a session `target` is the sign-in form (back here afterwards); a principal
    without the view's grant (submitter) gets a 403 page without the view (`marker`, an element
    id of its own); monitoring reads it; an unsafe method needs the CSRF token and then finds
    nothing to change (405). Returns the page monitoring saw."""
    with site.browser() as anonymous:
        r = anonymous.get(target)
        assert r.status_code == 303
        assert r.headers["location"] == f"/login?next={quote(target, safe='')}"
    with site.browser() as submitter:
        assert site.sign_in(submitter, "submitter").status_code == 303
        refused = submitter.get(target)
        assert refused.status_code == 403 and f'id="{marker}"' not in refused.text
    path = target.split("?", 1)[0]
    with site.browser() as monitoring:
        assert site.sign_in(monitoring, "monitoring").status_code == 303
        page = monitoring.get(target)
        assert page.status_code == 200 and f'id="{marker}"' in page.text
        assert monitoring.post(path, data={}).status_code == 403  # no CSRF token
        assert monitoring.post(path, data={"csrf_token": csrf_of(page)}).status_code == 405
        return page.text
