"""The gateway with its console on a fresh project (archivist served), and a browser-like client:
cookies kept, the CSRF token read from the page like a form would send it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bastion.config import Settings
from bastion.security.stack import build_api_key_store
from bastion.testing import serve_in_thread
from bastion.web import build_gateway
from tests.web.conftest import Project, make_project, serve_archivist

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class ConsoleSite:
    project: Project
    url: str

    def browser(self) -> httpx.Client:
        """A client that keeps cookies and sends the gateway's own Origin, like a browser."""
        return httpx.Client(base_url=self.url, timeout=10, headers={"Origin": self.url})

    def sign_in(self, client: httpx.Client, principal: str = "admin") -> httpx.Response:
        return sign_in(client, self.project.keys[principal])


def csrf_of(page: httpx.Response) -> str:
    match = CSRF_RE.search(page.text)
    assert match is not None, "the page has no CSRF field"
    return match.group(1)


def sign_in(client: httpx.Client, credential: str, next_path: str = "/") -> httpx.Response:
    form = client.get("/login")
    data = {"credential": credential, "csrf_token": csrf_of(form), "next": next_path}
    return client.post("/login", data=data)


@contextmanager
def start_site(
    tmp_path: Path, db_url: str, configure: Callable[[Settings], None] | None = None
) -> Iterator[ConsoleSite]:
    """A project (keys for admin, monitoring and the rest), its archivist and its gateway."""
    project = make_project(tmp_path, db_url, configure)
    project.keys["monitoring"] = build_api_key_store(project.settings).create("monitoring")
    with serve_archivist(project), serve_in_thread(build_gateway(project.settings)) as gw:
        yield ConsoleSite(project, gw.url)


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str) -> Iterator[ConsoleSite]:
    with start_site(tmp_path, sqlite_url) as started:
        yield started
