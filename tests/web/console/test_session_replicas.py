"""Two gateway replicas sharing Redis: a sign-out on one is honoured by the other (the token
denylist is in the shared Redis), and a session from one is good on the other (they share the
signing keys and the API keys)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from bastion.config import Settings
from bastion.testing import serve_in_thread
from bastion.web import build_gateway
from tests.web.console.conftest import csrf_of, start_site


def test_sign_out_on_one_replica_is_refused_on_the_other(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    prefix = f"bastion-test-{os.urandom(6).hex()}:"

    def shared(settings: Settings) -> None:
        settings.rate_limit.backend = "redis"
        settings.rate_limit.redis_url = redis_url
        settings.rate_limit.redis_key_prefix = prefix

    with (
        start_site(tmp_path, sqlite_url, shared) as one,
        serve_in_thread(build_gateway(one.project.settings)) as other,
    ):
        with one.browser() as b:
            one.sign_in(b)
            cookie = {"bastion_session": b.cookies["bastion_session"]}
            assert httpx.get(other.url + "/api/documents", cookies=cookie).status_code == 200
            out = b.post("/logout", data={"csrf_token": csrf_of(b.get("/login"))})
            assert out.status_code == 303
        refused = httpx.get(other.url + "/api/documents", cookies=cookie, timeout=10)
        assert refused.status_code == 401
        key = one.project.keys["admin"]
        kept = httpx.get(other.url + "/api/documents", headers={"X-API-Key": key}, timeout=10)
        assert kept.status_code == 200
