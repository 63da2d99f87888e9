"""`bastion submit` against the real gateway over HTTP: with only the gateway and the archivist
(uploads, `--no-wait`, rejections, credentials, a timeout) and with the whole pipeline (results
of archived and failed documents)."""

from __future__ import annotations

import hashlib
import json
import re
import stat
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from typer.testing import Result

from bastion.agents.registry import definition_for
from bastion.cli import common
from bastion.config import Settings, load_settings
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.samples import bundled_dir
from bastion.project import init_project
from bastion.runtime.agent import AgentApp
from bastion.security.secrets import resolve
from bastion.security.stack import build_api_key_store
from bastion.storage.database import shared_engine
from bastion.testing import serve_in_thread
from bastion.testing.pipeline_stack import assign_ports, pipeline_in_threads
from bastion.web.gateway import build_gateway
from tests.cli.test_cli import one_line_error, run
from tests.pipeline import hostile

INVOICE = bundled_dir() / "invoice_en_line_items.pdf"
WRONG_TOTAL = bundled_dir() / "invoice_en_wrong_total.pdf"
REPORT = bundled_dir() / "report_quarterly.pdf"
NOT_A_PDF = bundled_dir() / "not_a_pdf.pdf"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def submitter_key(settings: Settings) -> str:
    assert settings.pipeline.submit_api_key is not None
    return resolve(settings.pipeline.submit_api_key, settings.base_dir).get()


@dataclass
class Project:
    config: Path
    settings: Settings

    def submit(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        return run("submit", *args, "--config", str(self.config), env=env)

    def document_id(self, path: Path) -> str:
        """The id of the submitter's document for the bytes of `path`."""
        repo = ArchiveRepository(shared_engine(self.settings.database_url()))
        docs, _ = repo.list_documents(owner="submitter", limit=500)
        (doc_id,) = [d["id"] for d in docs if d["sha256"] == sha256(path)]
        return str(doc_id)


@pytest.fixture(autouse=True)
def _console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Wide tables; and the services' logs (they run in this process) on stderr, as
    `bastion serve` writes them, never in the command's stdout that the tests parse. The
    logging configuration is put back afterwards (no logger cached with it)."""
    monkeypatch.setattr(common.console, "width", 250)
    previous = structlog.get_config()
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.__stderr__),
        cache_logger_on_first_use=False,
    )
    yield
    structlog.configure(**previous)


def project(tmp_path: Path) -> Project:
    result = init_project(tmp_path / "proj")
    assign_ports(result.config)
    return Project(result.config, load_settings(result.config))


@pytest.fixture
def gateway_only(tmp_path: Path) -> Iterator[Project]:
    """The gateway and the archivist it reads through; no worker, so nothing gets processed."""
    proj = project(tmp_path)
    settings = proj.settings
    with ExitStack() as stack:
        archivist = AgentApp(definition_for("archivist", settings), settings)
        port = int(settings.agents["archivist"].url.rsplit(":", 1)[1])
        stack.enter_context(serve_in_thread(archivist, port=port))
        port = int(settings.pipeline.gateway_url.rsplit(":", 1)[1])
        stack.enter_context(serve_in_thread(build_gateway(settings), port=port))
        yield proj


def test_no_wait_prints_the_ids(gateway_only: Project) -> None:
    result = gateway_only.submit(str(INVOICE), str(REPORT), "--no-wait")
    assert result.exit_code == 0, result.output
    ids = [gateway_only.document_id(INVOICE), gateway_only.document_id(REPORT)]
    assert result.stdout.splitlines() == ids
    # Each document's correlation id, for `bastion audit tail --correlation`, on stderr.
    shown = re.findall(r"^(\S+): document (\S+), correlation id (\S+)$", result.stderr, re.M)
    assert [(name, doc_id) for name, doc_id, _ in shown] == [
        (INVOICE.name, ids[0]),
        (REPORT.name, ids[1]),
    ]
    for _, doc_id, correlation_id in shown:
        answer = httpx.get(
            f"{gateway_only.settings.pipeline.gateway_url}/api/documents/{doc_id}",
            headers={"X-API-Key": submitter_key(gateway_only.settings)},
        )
        assert answer.json()["correlation_id"] == correlation_id
    # The same bytes again: the same id (the gateway answers 200 with the current status).
    result = gateway_only.submit(str(INVOICE), "--no-wait", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == ids[:1]


def test_the_object_store_is_created_private(gateway_only: Project) -> None:
    objects = gateway_only.settings.path(gateway_only.settings.pipeline.objects_dir)
    result = gateway_only.submit(str(INVOICE), "--no-wait")
    assert result.exit_code == 0, result.output
    stored = objects / sha256(INVOICE)[0:2] / sha256(INVOICE)[2:4] / sha256(INVOICE)
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    for folder in (objects, stored.parent.parent, stored.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_rejected_upload_is_reported_and_fails_the_command(gateway_only: Project) -> None:
    result = gateway_only.submit(str(NOT_A_PDF), str(INVOICE), "--no-wait")
    assert result.exit_code == 1
    # The good file still went through.
    assert result.stdout.splitlines() == [gateway_only.document_id(INVOICE)]
    assert "not_a_pdf.pdf: HTTP 415 not_pdf: the file is not a PDF" in result.stderr
    assert "error: 1 of 2 upload(s) rejected (reasons above)" in result.stderr


def test_waiting_times_out(gateway_only: Project) -> None:
    result = gateway_only.submit(str(INVOICE), "--timeout", "0.5", "--json")
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert row["id"] == gateway_only.document_id(INVOICE)
    assert row["status"] == "queued"
    assert row["file"] == str(INVOICE)
    message = one_line_error(result)
    assert "timed out after 0.5 s with 1 document(s) still queued or processing" in message
    assert "is the worker running (`bastion up`)?" in message


def test_credentials(gateway_only: Project) -> None:
    for args, env in (
        (["--api-key", "bst_bogus"], None),
        ([], {"BASTION_API_KEY": "bst_bogus"}),
    ):
        result = gateway_only.submit(str(INVOICE), "--no-wait", *args, env=env)
        assert "the gateway rejected the API key (HTTP 401" in one_line_error(result)
    # A valid key without the grant to upload.
    key = build_api_key_store(gateway_only.settings).create("monitoring")
    result = gateway_only.submit(str(INVOICE), "--no-wait", "--api-key", key)
    message = one_line_error(result)
    assert "the API key may not upload documents (gateway.upload_document)" in message
    assert "HTTP 403" in message


def test_gateway_unreachable(tmp_path: Path) -> None:
    proj = project(tmp_path)  # nothing serves its ports
    result = proj.submit(str(INVOICE))
    message = one_line_error(result)
    assert f"cannot reach the gateway at {proj.settings.pipeline.gateway_url}" in message
    assert message.endswith("is `bastion up` running?")


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    proj = project(tmp_path)
    result = proj.submit(str(tmp_path / "missing.pdf"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_no_key_configured(tmp_path: Path) -> None:
    proj = project(tmp_path)
    text = proj.config.read_text()
    proj.config.write_text(
        "\n".join(line for line in text.splitlines() if "submit_api_key" not in line) + "\n"
    )
    result = proj.submit(str(INVOICE), env={"BASTION_API_KEY": None})
    assert "no API key to upload with: set pipeline.submit_api_key" in one_line_error(result)


def test_whole_pipeline_results(tmp_path: Path) -> None:
    proj = project(tmp_path)
    encrypted = tmp_path / "locked.pdf"
    encrypted.write_bytes(hostile.encrypted_with_password())
    files = [INVOICE, WRONG_TOTAL, encrypted]
    with pipeline_in_threads(proj.config):
        result = proj.submit(*map(str, files), "--json", "--timeout", "90")
        assert result.exit_code == 0, result.output
        rows: dict[str, dict[str, Any]] = {
            Path(r["file"]).name: r for r in json.loads(result.stdout)
        }
        invoice, wrong, locked = (rows[f.name] for f in files)
        doc_id = proj.document_id(INVOICE)
        assert invoice["id"] == doc_id
        assert (invoice["status"], invoice["outcome"], invoice["document_type"]) == (
            "archived",
            "valid",
            "invoice",
        )
        assert invoice["findings"] == 0
        assert (wrong["status"], wrong["outcome"]) == ("archived", "invalid")
        assert wrong["findings"] >= 1
        assert (locked["status"], locked["failure_reason"]) == ("failed", "encrypted")
        assert "1 document(s) failed in the pipeline" in result.stderr

        # The table, for people: one row per file, ids and correlation ids whole.
        result = proj.submit(str(INVOICE), str(encrypted))
        assert result.exit_code == 0, result.output
        table = result.stdout
        assert "submitted documents" in table
        for column in ("file", "id", "correlation id", "status", "outcome", "type", "findings"):
            assert column in table
        assert invoice["id"] in table and locked["id"] in table
        assert invoice["correlation_id"] and invoice["correlation_id"] in table
        assert locked["correlation_id"] and locked["correlation_id"] in table
        assert "encrypted" in table and "archived" in table
