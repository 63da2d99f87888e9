"""A pipeline project on the test database (`db_url`), and its services on real loopback ports.

`make_project` lays out a folder with `bastion init`, points it at the test database and gives
every principal a key there (service keys also go to `secrets/`, where the config expects them).
The archivist and gateway tests, and the ingest and watch tests, build on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bastion.config import Settings, load_settings
from bastion.pipeline.agents.archivist import definition as archivist_definition
from bastion.pipeline.archive_calls import ArchiveCalls, archivist_client
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.ingest import Ingest
from bastion.pipeline.model import ExtractionResult, Outcome, ValidationResult
from bastion.pipeline.stores import open_pipeline_queue
from bastion.project import CLIENT_PRINCIPALS, SERVICE_PRINCIPALS, init_project
from bastion.runtime.agent import AgentApp
from bastion.security.secrets import SecretValue, write_secret_file
from bastion.security.stack import build_api_key_store
from bastion.storage.database import shared_engine
from bastion.storage.models import AuditRecord
from bastion.storage.queue import Message
from bastion.testing import LiveServer, serve_in_thread
from tests.audit_rows import audit_rows


@dataclass
class Project:
    dir: Path
    settings: Settings
    keys: dict[str, str]  # principal -> API key, valid in the test database

    @property
    def repo(self) -> ArchiveRepository:
        return ArchiveRepository(shared_engine(self.settings.database_url()))

    def queued(self) -> list[Message]:
        """Every message on the pipeline queue (received with a zero visibility timeout)."""
        queue = open_pipeline_queue(self.settings)
        try:
            return queue.receive(100, visibility_timeout=0)
        finally:
            queue.close()

    def archive(
        self, document_id: str, outcome: Outcome, correlation_id: str | None = None
    ) -> None:
        """Archive an invoice's extraction with validation `outcome`, as the orchestrator does."""
        self.repo.archive(
            document_id,
            ExtractionResult(document_type="invoice", confidence=0.9),
            ValidationResult(outcome=outcome),
            correlation_id=correlation_id,
            principal="orchestrator",
        )

    def audit_records(
        self, where: Callable[[AuditRecord], bool], *, at_least: int = 1
    ) -> list[AuditRecord]:
        """Audit rows matching `where`, waiting for the writers' next flush."""
        return audit_rows(self.settings, where, at_least=at_least)


def record_new_upload(
    repo: ArchiveRepository, principal: str = "submitter", correlation_id: str | None = None
) -> str:
    """Record the upload of new (random) bytes by `principal`, as the ingest does: its id."""
    return repo.record_upload(
        hashlib.sha256(os.urandom(16)).hexdigest(),
        owner=principal,
        filename="x.pdf",
        content_type="application/pdf",
        size=1,
        principal=principal,
        correlation_id=correlation_id,
    ).id


def make_project(
    tmp_path: Path, db_url: str, configure: Callable[[Settings], None] | None = None
) -> Project:
    res = init_project(tmp_path / "proj")
    settings = load_settings(res.config)
    settings.database.url = db_url
    settings.auth.api_key_cache_seconds = 0
    settings.policy.reload_check_seconds = 0
    # The writer's own process is tested in tests/security; in-process starts much faster.
    settings.audit.writer = "in_process"
    if configure is not None:
        configure(settings)
    store = build_api_key_store(settings)
    keys: dict[str, str] = {}
    for principal in ("admin", *SERVICE_PRINCIPALS, *CLIENT_PRINCIPALS):
        keys[principal] = store.create(principal, label="test")
        if principal != "admin":
            write_secret_file(res.directory / "secrets" / f"{principal}.key", keys[principal])
    return Project(res.directory, settings, keys)


@contextmanager
def serve_archivist(project: Project) -> Iterator[LiveServer]:
    """The archivist on a free port; `agents.archivist.url` then points at it."""
    app = AgentApp(archivist_definition(project.settings), project.settings)
    with serve_in_thread(app) as srv:
        project.settings.agents["archivist"].url = srv.url
        yield srv


@contextmanager
def project_with_archivist(
    tmp_path: Path, db_url: str, configure: Callable[[Settings], None] | None = None
) -> Iterator[Project]:
    """`make_project` with its archivist served."""
    project = make_project(tmp_path, db_url, configure)
    with serve_archivist(project):
        yield project


@asynccontextmanager
async def gateway_ingest(project: Project) -> AsyncIterator[Ingest]:
    """The gateway's ingest for the project, recording through its (served) archivist."""
    service = Ingest(project.settings, archive_calls(project, "gateway"))
    try:
        yield service
    finally:
        service.close()
        await service.archive.aclose()


def archive_calls(project: Project, principal: str) -> ArchiveCalls:
    """Calls to the project's (served) archivist as `principal`, with its own key; close with
    `aclose()` in the loop that used it."""
    key = SecretValue(project.keys[principal])
    return ArchiveCalls(archivist_client(project.settings, principal, key))


def rpc(
    url: str, method: str, params: Any, key: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    return httpx.post(
        url + "/message", json=body, headers={"X-API-Key": key, **(headers or {})}, timeout=10
    )


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `check()` is true (polling), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
