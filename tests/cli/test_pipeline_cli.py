"""`bastion status`, `bastion dlq` and `bastion up` on a real project folder (the archive
database and the queue file that `bastion init` sets up): status and dead letters written
through the storage APIs, `up`'s refusals, and `up` as a real process running the pipeline."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from bastion.cli import common
from bastion.config import Settings, load_settings
from bastion.pipeline.archive_repo import ArchiveRepository
from bastion.pipeline.samples import bundled_dir
from bastion.project import init_project
from bastion.storage.database import shared_engine
from bastion.storage.queue import Queue, open_queue
from bastion.testing.pipeline_stack import assign_ports
from tests.cli.runner import run_in_terminal
from tests.cli.test_cli import one_line_error, run
from tests.runtime.test_supervisor import alive

UP_TIMEOUT = 90.0
SERVICES = (
    "archivist",
    "validator",
    "extractor",
    "orchestrator",
    "researcher",
    "critic",
    "research",
    "gateway",
    "worker",
)
SAMPLE = bundled_dir() / "invoice_en_line_items.pdf"


@dataclass
class Pipeline:
    config: Path
    settings: Settings
    repo: ArchiveRepository
    queue: Queue

    def cli(self, *args: str) -> tuple[int, str, str]:
        result = run(*args, "--config", str(self.config))
        return result.exit_code, result.stdout, result.stderr

    def json(self, *args: str) -> object:
        code, out, err = self.cli(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    def upload(self, name: str) -> str:
        doc_id = self.repo.record_upload(
            hashlib.sha256(name.encode()).hexdigest(),
            owner="submitter",
            filename=name,
            content_type="application/pdf",
            size=10,
            principal="submitter",
        ).id
        self.queue.send({"document_id": doc_id, "correlation_id": f"cid-{name}", "filename": name})
        return doc_id

    def dead_letter(self, reason: str) -> None:
        """What the worker does with a poison message: DLQ with a reason, document failed."""
        (message,) = self.queue.receive(1, visibility_timeout=60)
        assert self.queue.dead_letter(message.receipt_handle, reason)
        self.repo.set_status(message.body["document_id"], "failed", reason=reason)


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    monkeypatch.setattr(common.console, "width", 250)
    result = init_project(tmp_path / "proj")
    settings = load_settings(result.config)
    p = settings.pipeline
    queue = open_queue(
        p.queue_url,
        base_dir=settings.base_dir,
        max_receive_count=p.max_receive_count,
        retention_seconds=p.retention_seconds,
    )
    repo = ArchiveRepository(shared_engine(settings.database_url()))
    try:
        yield Pipeline(result.config, settings, repo, queue)
    finally:
        queue.close()


def test_status_empty_project(pipeline: Pipeline) -> None:
    assert pipeline.json("status") == {
        "documents": {"queued": 0, "processing": 0, "archived": 0, "failed": 0, "deleted": 0},
        "queue": {"visible": 0, "in_flight": 0, "delayed": 0, "dead": 0},
        "in_flight": [],
    }


def test_status_dlq_list_and_redrive(pipeline: Pipeline) -> None:
    first, second, third = (pipeline.upload(n) for n in ("a.pdf", "b.pdf", "c.pdf"))
    pipeline.dead_letter("extraction_failed")
    pipeline.dead_letter("encrypted")

    status = pipeline.json("status")
    assert status == {
        "documents": {"queued": 1, "processing": 0, "archived": 0, "failed": 2, "deleted": 0},
        "queue": {"visible": 1, "in_flight": 0, "delayed": 0, "dead": 2},
        "in_flight": [],
    }
    code, out, _ = pipeline.cli("status")
    assert code == 0
    assert "dead-letter" in out and "in flight" in out and "failed" in out

    letters = pipeline.json("dlq", "list")
    assert isinstance(letters, list)
    assert [(d["document_id"], d["reason"], d["receive_count"]) for d in letters] == [
        (first, "extraction_failed", 1),
        (second, "encrypted", 1),
    ]
    assert letters[0]["filename"] == "a.pdf"
    assert letters[0]["correlation_id"] == "cid-a.pdf"
    assert letters[0]["dead_at"].endswith("+00:00")
    code, out, _ = pipeline.cli("dlq", "list", "--limit", "1")
    assert code == 0
    assert "extraction_failed" in out and "encrypted" not in out
    assert first in out

    # One by id: the message goes back, the document is queued again, with a history event.
    code, out, err = pipeline.cli("dlq", "redrive", letters[0]["id"])
    assert code == 0, err
    assert "moved 1 message(s) back onto the queue" in out
    doc = pipeline.repo.get_document(first)
    assert doc is not None and doc["status"] == "queued" and doc["failure_reason"] is None
    event = doc["history"][-1]
    assert event["event"] == "queued"
    assert event["detail"] == "redriven from the dead-letter queue (was: extraction_failed)"
    assert event["correlation_id"] == "cid-a.pdf"
    assert event["principal"].startswith("cli")
    assert pipeline.queue.stats().visible == 2
    assert pipeline.queue.dlq_depth() == 1
    # The redriven message is received again with a fresh receive count.
    bodies = [m.body["document_id"] for m in pipeline.queue.receive(10, visibility_timeout=60)]
    assert sorted(bodies) == sorted([first, third])

    # The rest with --all.
    code, out, err = pipeline.cli("dlq", "redrive", "--all")
    assert code == 0, err
    assert "moved 1 message(s)" in out
    second_doc = pipeline.repo.get_document(second)
    assert second_doc is not None and second_doc["status"] == "queued"
    assert pipeline.queue.dlq_depth() == 0
    code, out, _ = pipeline.cli("dlq", "redrive", "--all")
    assert code == 0 and "nothing to redrive" in out
    code, out, _ = pipeline.cli("dlq", "list")
    assert code == 0 and "the dead-letter queue is empty" in out


def test_redrive_needs_ids_or_all(pipeline: Pipeline) -> None:
    pipeline.upload("a.pdf")
    pipeline.dead_letter("bad")
    (letter,) = pipeline.queue.dlq_list()
    for args in ([], [letter.id, "--all"]):
        result = run("dlq", "redrive", *args, "--config", str(pipeline.config))
        assert "or pass --all" in one_line_error(result)
    result = run("dlq", "redrive", letter.id, "nope", "--config", str(pipeline.config))
    assert result.exit_code == 2
    assert "no such dead letter: 'nope' (see `bastion dlq list`)" in one_line_error(result)
    # Nothing moved, nothing changed.
    assert pipeline.queue.dlq_depth() == 1
    doc = pipeline.repo.get_document(letter.body["document_id"])
    assert doc is not None and doc["status"] == "failed"


def test_redrive_takes_a_unique_prefix_and_refuses_an_ambiguous_one(pipeline: Pipeline) -> None:
    # Dead-letter ids are hex: among 17 of them, two share their first character.
    for i in range(17):
        pipeline.upload(f"{i}.pdf")
        pipeline.dead_letter("bad")
    letters = pipeline.queue.dlq_list()
    firsts = [d.id[0] for d in letters]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    result = run("dlq", "redrive", shared, "--config", str(pipeline.config))
    assert result.exit_code == 2
    message = one_line_error(result)
    assert f"dead letter prefix {shared!r} is ambiguous: it matches {firsts.count(shared)}" in (
        message
    )
    assert pipeline.queue.dlq_depth() == 17

    one = letters[0]
    prefix = next(
        one.id[:n]
        for n in range(1, 33)
        if [d for d in letters if d.id.startswith(one.id[:n])] == [one]
    )
    code, out, err = pipeline.cli("dlq", "redrive", prefix)
    assert code == 0, err
    assert "moved 1 message(s) back onto the queue" in out
    assert one.id not in {d.id for d in pipeline.queue.dlq_list()}
    doc = pipeline.repo.get_document(one.body["document_id"])
    assert doc is not None and doc["status"] == "queued"


def test_dlq_list_shows_whole_ids_on_a_narrow_terminal(pipeline: Pipeline) -> None:
    pipeline.upload("a.pdf")
    pipeline.dead_letter("extraction_failed")
    (letter,) = pipeline.queue.dlq_list()
    code, shown = run_in_terminal("dlq", "list", "--config", str(pipeline.config), columns=40)
    assert code == 0, shown
    assert "…" not in shown
    assert letter.id in shown and letter.body["document_id"] in shown


def test_status_without_a_database(pipeline: Pipeline, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(pipeline.config, elsewhere / "bastion.yaml")
    result = run("status", "--config", str(elsewhere / "bastion.yaml"))
    message = one_line_error(result)
    assert "cannot use the archive database" in message
    assert "`bastion init`" in message


def _rewrite(config: Path, edit: dict[str, dict[str, object]]) -> None:
    doc = yaml.safe_load(config.read_text())
    for section, values in edit.items():
        target = doc[section]
        for dotted, value in values.items():
            *path, last = dotted.split(".")
            for part in path:
                target = target[part]
            target[last] = value
    config.write_text(yaml.safe_dump(doc))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            {"agents": {"extractor.url": "http://10.0.0.7:8082"}},
            "agents.extractor.url is http://10.0.0.7:8082",
        ),
        (
            {"pipeline": {"gateway_url": "http://0.0.0.0:8080"}},
            "pipeline.gateway_url is http://0.0.0.0:8080",
        ),
    ],
)
def test_up_refuses_non_loopback_addresses(
    pipeline: Pipeline, edit: dict[str, dict[str, object]], expected: str
) -> None:
    _rewrite(pipeline.config, edit)
    result = run("up", "--config", str(pipeline.config))
    message = one_line_error(result)
    assert expected in message
    assert "use 127.0.0.1, localhost or ::1" in message
    assert not (pipeline.config.parent / "logs").exists()  # nothing was started


def test_up_refuses_a_busy_port(pipeline: Pipeline) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        _rewrite(pipeline.config, {"agents": {"validator.url": f"http://127.0.0.1:{port}"}})
        result = run("up", "--config", str(pipeline.config))
    assert result.exit_code == 1
    assert f"validator cannot start: something already listens on 127.0.0.1:{port}" in (
        result.stderr
    )
    assert "Stopped." in result.stderr


def test_up_refuses_a_database_that_init_never_set_up(pipeline: Pipeline) -> None:
    """A `database.url` changed to an empty database: no tables and no keys, so nothing starts
    and the error says which command sets it up."""
    _rewrite(pipeline.config, {"database": {"url": "sqlite:///elsewhere.db"}})
    result = run("up", "--config", str(pipeline.config))
    message = one_line_error(result)
    assert result.exit_code == 1
    assert "elsewhere.db holds no Bastion tables and no keys" in message
    assert "`bastion init` (`--database-url URL` for PostgreSQL" in message
    assert not (pipeline.config.parent / "logs").exists()  # nothing was started


UNSET_ENV = "BASTION_T_UP_GATEWAY_KEY"


def _remove_worker_and_gateway_keys(config: Path) -> str:
    (config.parent / "secrets" / "worker.key").unlink()
    (config.parent / "secrets" / "gateway.key").unlink()
    return (
        "pipeline.worker_api_key (secret://file/secrets/worker.key): cannot read "
        f"{config.parent / 'secrets' / 'worker.key'}: No such file or directory; create it "
        "(mode 0600) or fix the path (and 1 more: pipeline.gateway_api_key; "
        "`bastion config check` lists them)"
    )


def _make_audit_key_unreadable(config: Path) -> str:
    key = config.parent / "secrets" / "audit.key"
    key.unlink()
    key.mkdir()  # unreadable whoever runs the test (root reads a mode 000 file)
    return (
        f"audit.hmac_key (secret://file/secrets/audit.key): cannot read {key}: Is a directory; "
        "create it (mode 0600) or fix the path"
    )


def _unset_gateway_key_variable(config: Path) -> str:
    _rewrite(config, {"pipeline": {"gateway_api_key": f"secret://env/{UNSET_ENV}"}})
    return (
        f"pipeline.gateway_api_key (secret://env/{UNSET_ENV}): environment variable {UNSET_ENV} "
        "is not set: export it before starting"
    )


@pytest.mark.parametrize(
    "break_a_secret",
    [_remove_worker_and_gateway_keys, _make_audit_key_unreadable, _unset_gateway_key_variable],
)
def test_up_refuses_an_unresolvable_secret_before_starting_anything(
    pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    break_a_secret: Callable[[Path], str],
) -> None:
    monkeypatch.delenv(UNSET_ENV, raising=False)
    expected = break_a_secret(pipeline.config)
    folder = pipeline.config.parent / "secrets"
    secrets = [p.read_text().strip() for p in folder.iterdir() if p.is_file()]
    result = run("up", "--config", str(pipeline.config))
    message = one_line_error(result)  # one line: no service was starting or ready
    assert message == f"error: cannot start the pipeline: {expected}"
    assert not (pipeline.config.parent / "logs").exists()  # no service was ever started
    for value in secrets:
        assert value not in result.output


def test_up_runs_the_pipeline_until_sigterm(pipeline: Pipeline, tmp_path: Path) -> None:
    """`bastion up` as a real process: every service ready, a document processed end to end,
    then a clean stop on SIGTERM with exit status 0 and no process left behind."""
    assign_ports(pipeline.config)
    settings = load_settings(pipeline.config)
    up, out, err = _start_up(pipeline.config, tmp_path / "up")
    try:
        _wait_running(up, out, err)
        table = out.read_text()
        for name in SERVICES:
            assert str(pipeline.config.parent / "logs" / f"{name}.log") in table
        assert settings.pipeline.gateway_url in table
        progress = err.read_text()
        assert progress.count("ready") >= 6

        result = run("submit", str(SAMPLE), "--json", "--config", str(pipeline.config))
        assert result.exit_code == 0, result.output
        (row,) = json.loads(result.stdout)
        assert (row["status"], row["document_type"]) == ("archived", "invoice")

        pids = [int(p) for p in _children(up.pid)]
        assert len(pids) >= 6
        up.send_signal(signal.SIGTERM)
        assert up.wait(UP_TIMEOUT) == 0, err.read_text()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    stopped = err.read_text()
    for name in SERVICES:
        assert f"stopped {name}: exit status 0" in stopped
    assert stopped.rstrip().endswith("Stopped.")
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]


def _start_up(config: Path, name: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """`bastion up` as a real process, its stdout and stderr in `name`.out / `name`.err."""
    out, err = name.with_suffix(".out"), name.with_suffix(".err")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="200")
    with out.open("wb") as stdout, err.open("wb") as stderr:
        up = subprocess.Popen(
            [sys.executable, "-m", "bastion", "up", "--config", str(config)],
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
    return up, out, err


def _wait_running(up: subprocess.Popen[bytes], out: Path, err: Path) -> None:
    deadline = time.monotonic() + UP_TIMEOUT
    while "Running." not in out.read_text():
        assert up.poll() is None, err.read_text()
        assert time.monotonic() < deadline, err.read_text()
        time.sleep(0.2)


def _descendants(pid: int) -> list[int]:
    """Children, grandchildren, ... of `pid` (Linux /proc)."""
    found = [int(c) for c in _children(pid)]
    for child in list(found):
        found.extend(_descendants(child))
    return found


def test_up_killed_with_sigkill_takes_every_service_with_it(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """SIGKILL on `bastion up`: every service notices, stops cleanly (its usual shutdown,
    logged), its helpers (audit writers, extraction sandboxes) go too, and the next
    `bastion up` on the same folder starts."""
    assign_ports(pipeline.config)
    up, out, err = _start_up(pipeline.config, tmp_path / "first")
    everything: list[int] = []
    try:
        _wait_running(up, out, err)
        # The worker counts as ready once alive for a moment; wait until it is consuming.
        worker_log = pipeline.config.parent / "logs" / "worker.log"
        deadline = time.monotonic() + UP_TIMEOUT
        while '"event":"worker started"' not in worker_log.read_text():
            assert time.monotonic() < deadline, worker_log.read_text()
            time.sleep(0.2)
        services = [int(p) for p in _children(up.pid)]
        everything = _descendants(up.pid)
        assert len(services) == len(SERVICES)
        assert len(everything) > len(services)  # the agents' audit writer processes
        up.send_signal(signal.SIGKILL)
        assert up.wait(UP_TIMEOUT) == -signal.SIGKILL
        deadline = time.monotonic() + UP_TIMEOUT
        while [p for p in everything if alive(p)]:
            assert time.monotonic() < deadline, [p for p in everything if alive(p)]
            time.sleep(0.2)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        for pid in everything:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    logs = pipeline.config.parent / "logs"
    for name in SERVICES:
        log = (logs / f"{name}.log").read_text()
        _, found, after = log.partition('"event":"supervisor gone, stopping"')
        assert found, f"{name} did not notice: {log[-2000:]}"
        clean_stop = "worker stopped" if name == "worker" else "Application shutdown complete"
        assert clean_stop in after, f"{name} did not stop cleanly: {log[-2000:]}"

    again, out, err = _start_up(pipeline.config, tmp_path / "second")
    try:
        _wait_running(again, out, err)
        again.send_signal(signal.SIGTERM)
        assert again.wait(UP_TIMEOUT) == 0, err.read_text()
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()


def _children(pid: int) -> list[str]:
    """Direct children of `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid):
            found.append(stat.parent.name)
    return found
