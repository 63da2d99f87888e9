"""Console sign-in, the session cookie, CSRF, the WebSocket origin check and sign-out, over real
HTTP against the gateway (with every rejection path)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from bastion.config import Settings
from bastion.web.console.pages import CSP
from tests.web.console.conftest import ConsoleSite, csrf_of, sign_in, start_site


def set_cookies(response: httpx.Response) -> dict[str, str]:
    return {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}


def test_login_page_is_strict(site: ConsoleSite) -> None:
    with site.browser() as b:
        page = b.get("/login")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "unsafe-eval" not in CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert '<label for="credential">' in page.text
    assert "<script>" not in page.text  # no inline script
    csrf = set_cookies(page)["bastion_csrf"]
    assert "HttpOnly" in csrf and "SameSite=Strict" in csrf and "Secure" not in csrf


def test_sign_in_with_an_api_key_sets_a_strict_session_cookie(site: ConsoleSite) -> None:
    with site.browser() as b:
        r = site.sign_in(b)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = set_cookies(r)["bastion_session"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=" in cookie
        assert site.project.keys["admin"] not in cookie  # a token, never the key itself
        index = b.get("/")
        assert index.status_code == 303 and index.headers["location"] == "/console/documents"
        # The cookie is a credential for the JSON API too.
        assert b.get("/api/documents").status_code == 200
    rows = site.project.audit_records(
        lambda a: a.method == "console_sign_in" and a.principal == "admin"
    )
    assert rows[0].outcome == "ok"


def service_token(site: ConsoleSite, principal: str) -> str:
    """A token of the built-in token service (the archivist's) for `principal`'s key."""
    answer = httpx.post(
        site.project.settings.agents["archivist"].url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(principal, site.project.keys[principal]),
        timeout=10,
    )
    token: str = answer.json()["access_token"]
    return token


def test_sign_in_with_a_token_from_the_token_service(site: ConsoleSite) -> None:
    token = service_token(site, "monitoring")
    with site.browser() as b:
        r = sign_in(b, token)
        assert r.status_code == 303
        assert b.get("/console/session").json()["principal"] == "monitoring"


@pytest.mark.parametrize(
    "credential",
    ["bst_notakey", "bst_AAAAAAAAAAAA_" + "x" * 40, "eyJhbGciOiJub25lIn0.e30.", "", "x" * 9000],
)
def test_a_bad_credential_is_refused_with_one_message(site: ConsoleSite, credential: str) -> None:
    with site.browser() as b:
        r = sign_in(b, credential)
        assert r.status_code == 401
        assert "was not accepted" in r.text
        assert "bastion_session" not in set_cookies(r)
        assert b.get("/", follow_redirects=False).headers["location"] == "/login"


def test_a_forged_token_is_refused(site: ConsoleSite) -> None:
    token = service_token(site, "admin")
    head, payload, sig = token.split(".")
    forged = ".".join([head, payload, sig[::-1]])
    with site.browser() as b:
        assert sign_in(b, forged).status_code == 401
    rows = site.project.audit_records(
        lambda a: a.method == "console_sign_in" and a.outcome == "denied:authenticate"
    )
    assert rows and all(token not in (a.detail or "") for a in rows)


def test_csrf_is_required_for_sign_in_and_state_changes(site: ConsoleSite) -> None:
    with site.browser() as b:
        page = b.get("/login")
        key = site.project.keys["admin"]
        assert b.post("/login", data={"credential": key}).status_code == 403
        assert b.post("/login", data={"credential": key, "csrf_token": "wrong"}).status_code == 403
        cross = b.post(
            "/login",
            data={"credential": key, "csrf_token": csrf_of(page)},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403 and cross.json()["error"]["code"] == "csrf_failed"
        assert site.sign_in(b).status_code == 303
        # With the session cookie, a state-changing API call needs the token too ...
        files = {"file": ("a.pdf", b"%PDF-1.4 x", "application/pdf")}
        assert b.post("/api/documents", files=files).status_code == 403
        # ... which the page gives (the header form, as the page script sends it).
        token = csrf_of(b.get("/login"))
        ok = b.post("/api/documents", files=files, headers={"X-CSRF-Token": token})
        assert ok.status_code != 403
    # A script with its own credential needs no CSRF token, cookie or not.
    r = httpx.get(site.url + "/api/documents", headers={"X-API-Key": key}, timeout=10)
    assert r.status_code == 200


def test_views_follow_the_policy(site: ConsoleSite) -> None:
    with site.browser() as b:
        site.sign_in(b, "submitter")
        index = b.get("/")
        assert index.status_code == 403 and "No console views" in index.text
        refused = b.get("/console/session")
        assert refused.status_code == 403
    with site.browser() as b:
        site.sign_in(b, "monitoring")
        page = b.get("/login")
        assert b.get("/", follow_redirects=False).status_code == 303
        assert page.status_code == 200


def test_an_open_redirect_is_not_followed(site: ConsoleSite) -> None:
    with site.browser() as b:
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
            r = sign_in(b, site.project.keys["admin"], next_path=target)
            assert r.headers["location"] == "/"


def test_sign_out_revokes_the_session_but_not_the_key(site: ConsoleSite) -> None:
    with site.browser() as b:
        site.sign_in(b)
        old = b.cookies["bastion_session"]
        token = csrf_of(b.get("/login"))
        out = b.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert "Max-Age=0" in set_cookies(out)["bastion_session"]
    replay = httpx.get(site.url + "/api/documents", cookies={"bastion_session": old}, timeout=10)
    assert replay.status_code == 401
    keepalive = httpx.get(
        site.url + "/console/session", cookies={"bastion_session": old}, timeout=10
    )
    assert keepalive.status_code == 401
    page = httpx.get(site.url + "/", cookies={"bastion_session": old}, timeout=10)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    key = site.project.keys["admin"]
    assert httpx.get(site.url + "/api/documents", headers={"X-API-Key": key}).status_code == 200
    rows = site.project.audit_records(lambda a: a.method == "console_sign_out")
    assert rows[0].principal == "admin" and rows[0].outcome == "ok"


def ws_url(site: ConsoleSite, path: str) -> str:
    return site.url.replace("http://", "ws://") + path


def test_websockets_take_the_cookie_from_the_own_origin_only(site: ConsoleSite) -> None:
    with site.browser() as b:
        site.sign_in(b, "monitoring")
        cookie = f"bastion_session={b.cookies['bastion_session']}"
    headers = {"Cookie": cookie}
    with connect(
        ws_url(site, "/ws/events"),
        additional_headers=headers,
        origin=site.url,  # type: ignore[arg-type]
        subprotocols=["bastion.v1"],  # type: ignore[list-item]
    ) as ws:
        ws.send(json.dumps({"subscribe": []}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
    for origin in ("https://evil.example", None):
        with connect(
            ws_url(site, "/ws/events"),
            additional_headers=headers,
            origin=origin,  # type: ignore[arg-type]
            subprotocols=["bastion.v1"],  # type: ignore[list-item]
        ) as ws:
            with pytest.raises(Exception) as closed:
                ws.recv(timeout=10)
            assert "4003" in str(closed.value)


def test_the_session_is_renewed_past_half_its_life(tmp_path: Path, sqlite_url: str) -> None:
    def short_tokens(settings: Settings) -> None:
        settings.auth.token_service.ttl_seconds = 4

    with start_site(tmp_path, sqlite_url, short_tokens) as short, short.browser() as b:
        short.sign_in(b)
        first = b.cookies["bastion_session"]
        deadline = time.monotonic() + 30  # hang guard: renewal is due 2 s after sign-in
        renewed = None
        while renewed is None and time.monotonic() < deadline:
            answer = b.get("/console/session")
            assert answer.status_code == 200
            renewed = set_cookies(answer).get("bastion_session")
            if renewed is None:
                time.sleep(0.2)  # polling the keep-alive, as the page script does
        assert renewed is not None and "Max-Age=" in renewed and "HttpOnly" in renewed
        assert b.cookies["bastion_session"] != first
        assert b.get("/api/documents").status_code == 200
