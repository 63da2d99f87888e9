"""Over TLS the console's cookies are Secure (and over plain HTTP they are not: see
test_session.py)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import trustme

from bastion.testing import serve_in_thread
from bastion.web import build_gateway
from tests.web.conftest import make_project, serve_archivist
from tests.web.console.conftest import sign_in


def test_cookies_are_secure_over_tls(tmp_path: Path, sqlite_url: str) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = (tmp_path / n for n in ("gw.pem", "gw.key", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    project = make_project(tmp_path, sqlite_url)
    options = {"ssl_certfile": str(cert_file), "ssl_keyfile": str(key_file)}
    with (
        serve_archivist(project),
        serve_in_thread(build_gateway(project.settings), ssl_options=options) as gw,
    ):
        assert gw.url.startswith("https://")
        with httpx.Client(
            base_url=gw.url,
            verify=ssl.create_default_context(cafile=str(ca_file)),
            headers={"Origin": gw.url},
            timeout=10,
        ) as b:
            signed_in = sign_in(b, project.keys["admin"])
            assert signed_in.status_code == 303
            cookies = signed_in.headers.get_list("set-cookie")
            session = next(c for c in cookies if c.startswith("bastion_session="))
            csrf = next(c for c in cookies if c.startswith("bastion_csrf="))
            for cookie in (session, csrf):
                assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert b.get("/api/documents").status_code == 200
