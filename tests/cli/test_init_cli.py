"""`bastion init` on a folder that already holds a project, and on a bad `--dir`."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from bastion.config import load_settings
from bastion.security.audit import AuditWriter
from bastion.security.secrets import resolve
from bastion.storage.database import shared_engine
from tests.cli.runner import run
from tests.cli.test_audit_cli import entry
from tests.cli.test_cli import KEY_RE, init, one_line_error, verify


async def write_audit_records(config: Path, chain: str, count: int) -> None:
    """Records in `chain`, sealed with the project's audit key, with checkpoints."""
    settings = load_settings(config)
    writer = AuditWriter(
        shared_engine(settings.database_url()),
        chain=chain,
        key=resolve(settings.audit.hmac_key, settings.base_dir).get_bytes(),
        settings=settings.audit.model_copy(update={"checkpoint_every": 3}),
        checkpoint_dir=settings.path(settings.audit.checkpoint_dir),
    )
    await writer.start()
    for i in range(count):
        await writer.record(entry(i))
    await writer.close()


def test_init_refuses_a_folder_with_history_and_names_it(tmp_path: Path) -> None:
    directory = tmp_path / "proj"
    _, proj = init(directory)
    asyncio.run(write_audit_records(proj.config, "echo", 4))
    (directory / "bastion.yaml").unlink()  # even without its config, the history is there
    key_before = (directory / "secrets" / "audit.key").read_bytes()

    again = run("init", "--dir", str(directory))

    message = one_line_error(again)
    assert again.exit_code == 2
    assert "bastion.db" in message and "audit-checkpoints/" in message and "secrets/" in message
    assert "--force would overwrite bastion.yaml and policy.json" in message
    assert "bastion keys rotate" in message
    assert not (directory / "bastion.yaml").exists()
    assert (directory / "secrets" / "audit.key").read_bytes() == key_before


def test_forced_re_init_keeps_the_audit_trail_and_the_keys_valid(tmp_path: Path) -> None:
    directory = tmp_path / "proj"
    _, proj = init(directory)
    asyncio.run(write_audit_records(proj.config, "echo", 7))
    (directory / "policy.json").write_text('{"allow": {"admin": ["*"]}}')
    worker_key = (directory / "secrets" / "worker.key").read_text()

    forced = run("init", "--dir", str(directory), "--force")

    assert forced.exit_code == 0, forced.output
    assert "kept from the previous project" in forced.stdout
    assert "secrets/audit.key" in forced.stdout and "bastion.db" in forced.stdout
    new_admin = KEY_RE.findall(forced.stdout)
    assert len(new_admin) == 1 and new_admin[0] != proj.admin_key
    assert '"worker"' in (directory / "policy.json").read_text()  # rewritten from the defaults
    verified = run("audit", "verify", "--config", str(proj.config))
    assert verified.exit_code == 0, verified.output
    assert "audit trail intact" in verified.stdout
    assert verify(proj.config, proj.admin_key) == ("admin", "")
    assert verify(proj.config, new_admin[0]) == ("admin", "")
    assert (directory / "secrets" / "worker.key").read_text() == worker_key
    assert verify(proj.config, worker_key) == ("worker", "")


def test_forced_init_without_a_database_creates_fresh_service_credentials(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "proj"
    init(directory)
    for path in directory.glob("bastion.db*"):
        path.unlink()

    forced = run("init", "--dir", str(directory), "--force")

    assert forced.exit_code == 0, forced.output
    config = directory / "bastion.yaml"
    worker_key = (directory / "secrets" / "worker.key").read_text()
    assert verify(config, worker_key) == ("worker", "")


def test_init_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("not a folder")

    result = run("init", "--dir", str(target))

    message = one_line_error(result)
    assert result.exit_code == 2
    assert f"--dir {target} is a file" in message
    assert "Traceback" not in result.output
    assert target.read_text() == "not a folder"


def test_init_dir_that_cannot_be_created_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    result = run("init", "--dir", str(blocker / "proj"))

    message = one_line_error(result)
    assert result.exit_code == 2
    assert f"cannot create {blocker / 'proj'}" in message
    assert "choose a folder you can write to" in message
    assert "Traceback" not in result.output


def test_init_creates_the_database_readable_by_its_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "proj"
    init(directory)
    database = directory / "bastion.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for sidecar in directory.glob("bastion.db-*"):  # WAL and shared memory, when present
        assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600, sidecar


def test_init_and_first_use_create_private_folders(tmp_path: Path) -> None:
    """The secrets folder (at init) and the audit checkpoint folder (at the first checkpoint)
    are their owner's only: 0700."""
    directory = tmp_path / "proj"
    _, project = init(directory)
    assert stat.S_IMODE((directory / "secrets").stat().st_mode) == 0o700
    checkpoints = directory / "audit-checkpoints"
    assert not checkpoints.exists()
    asyncio.run(write_audit_records(project.config, "folders", 3))
    assert stat.S_IMODE(checkpoints.stat().st_mode) == 0o700
    assert list(checkpoints.iterdir())  # the checkpoint was written there


def test_init_with_a_database_url_writes_it_and_puts_the_keys_there(tmp_path: Path) -> None:
    """`--database-url`: the database named (here another SQLite file; PostgreSQL in
    tests/e2e/test_up_networked.py) is the one in bastion.yaml, migrated, with the keys."""
    directory = tmp_path / "proj"
    elsewhere = tmp_path / "shared" / "archive.db"
    result = run("init", "--dir", str(directory), "--database-url", f"sqlite:///{elsewhere}")

    assert result.exit_code == 0, result.output
    (admin_key,) = KEY_RE.findall(result.stdout)
    config = directory / "bastion.yaml"
    assert load_settings(config).database.url == f"sqlite:///{elsewhere}"
    assert elsewhere.exists() and not (directory / "bastion.db").exists()
    assert verify(config, admin_key) == ("admin", "")
    worker_key = (directory / "secrets" / "worker.key").read_text()
    assert verify(config, worker_key) == ("worker", "")


def test_init_refuses_a_database_url_with_a_password_or_another_engine(tmp_path: Path) -> None:
    directory = tmp_path / "proj"
    with_password = run(
        "init", "--dir", str(directory), "--database-url", "postgresql://bastion:s3cr3t@db/x"
    )
    message = one_line_error(with_password)
    assert with_password.exit_code == 2
    assert "s3cr3t" not in with_password.output
    assert "PGPASSWORD" in message and "~/.pgpass" in message
    other = run("init", "--dir", str(directory), "--database-url", "mysql://db/x")
    assert other.exit_code == 2
    assert "postgresql://USER@HOST[:PORT]/DATABASE" in one_line_error(other)
    assert not directory.exists()
