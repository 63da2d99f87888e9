"""`bastion submit` follows the gateway's live event stream (`WS /ws/events`) with the whole
pipeline running, and falls back to polling, with a warning, when the stream is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bastion.cli import submit_cmd
from bastion.testing.pipeline_stack import pipeline_in_threads
from tests.audit_rows import audit_rows
from tests.cli.test_submit_cli import (  # noqa: F401 (`_console` is an autouse fixture)
    INVOICE,
    Project,
    _console,
    project,
)
from tests.pipeline import hostile


def files(tmp_path: Path) -> list[Path]:
    encrypted = tmp_path / "locked.pdf"
    encrypted.write_bytes(hostile.encrypted_with_password())
    return [INVOICE, encrypted]


def check_results(proj: Project, result: Any, invoice: Path, locked: Path) -> None:
    assert result.exit_code == 0, result.output
    rows = {Path(r["file"]).name: r for r in json.loads(result.stdout)}
    assert rows[invoice.name]["id"] == proj.document_id(invoice)
    assert (rows[invoice.name]["status"], rows[invoice.name]["outcome"]) == ("archived", "valid")
    assert (rows[locked.name]["status"], rows[locked.name]["failure_reason"]) == (
        "failed",
        "encrypted",
    )


def test_progress_comes_from_the_event_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = project(tmp_path)

    def no_polling(*_: Any) -> bool:
        raise AssertionError("submit polled instead of following the event stream")

    monkeypatch.setattr(submit_cmd, "_wait", no_polling)
    invoice, locked = files(tmp_path)
    with pipeline_in_threads(proj.config):
        result = proj.submit(str(invoice), str(locked), "--json", "--timeout", "90")
        check_results(proj, result, invoice, locked)
        assert "warning" not in result.stderr
        (stream,) = audit_rows(
            proj.settings, lambda a: a.method == "events" and a.principal == "submitter"
        )
        assert (stream.outcome, stream.status, stream.auth_method) == ("ok", 101, "api_key")


def test_falls_back_to_polling_when_the_stream_is_refused(tmp_path: Path) -> None:
    proj: Project = project(tmp_path)
    policy_file = proj.settings.path(proj.settings.policy.file)
    policy = json.loads(policy_file.read_text())
    policy["allow"]["submitter"].remove("gateway.events")
    policy_file.write_text(json.dumps(policy))
    invoice, locked = files(tmp_path)
    with pipeline_in_threads(proj.config):
        result = proj.submit(str(invoice), str(locked), "--json", "--timeout", "90")
    check_results(proj, result, invoice, locked)
    warning = " ".join(result.stderr.split())
    assert "warning: no live progress (the gateway closed /ws/events: 4003 forbidden" in warning
    assert "polling the gateway for status instead" in warning


def test_falls_back_to_polling_without_an_event_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway that serves no `/ws/events` (an older one): the handshake fails."""
    monkeypatch.setattr(submit_cmd, "EVENTS_PATH", "/ws/none")
    proj = project(tmp_path)
    invoice, locked = files(tmp_path)
    with pipeline_in_threads(proj.config):
        result = proj.submit(str(invoice), str(locked), "--json", "--timeout", "90")
    check_results(proj, result, invoice, locked)
    assert "warning: no live progress (cannot open /ws/none" in " ".join(result.stderr.split())
