"""The `bastion` command line: `--version`, `init` and `keys`, run in-process with CliRunner
(and `python -m bastion` once, as a real process)."""

from __future__ import annotations

import asyncio
import json
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import Result

from bastion._version import __version__
from bastion.config import load_settings
from bastion.project import CLIENT_PRINCIPALS, SERVICE_PRINCIPALS
from bastion.security.stack import build_api_key_store
from tests.cli.runner import process_stdout, run, run_in_terminal, run_process

KEY_RE = re.compile(r"bst_[a-z0-9]{12}_[0-9a-f]{64}")


def one_line_error(result: Result) -> str:
    """The failure's message: exactly one line on stderr, starting with `error:`."""
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def verify(config: Path, key: str) -> tuple[str | None, str]:
    """(principal, reason) for `key` as a freshly started agent would see it."""
    store = build_api_key_store(load_settings(config))
    identity, reason = asyncio.run(store.verify(key))
    return (identity.principal if identity else None), reason


@dataclass
class Project:
    dir: Path
    config: Path
    admin_key: str


def init(directory: Path) -> tuple[Result, Project]:
    result = run("init", "--dir", str(directory))
    assert result.exit_code == 0, result.output
    keys = KEY_RE.findall(result.stdout)
    assert len(keys) == 1, result.stdout
    return result, Project(directory, directory / "bastion.yaml", keys[0])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return init(tmp_path_factory.mktemp("cli") / "proj")[1]


def create_key(project: Project, principal: str, *args: str) -> str:
    result = run("keys", "create", principal, "--config", str(project.config), *args)
    assert result.exit_code == 0, result.output
    return str(result.stdout.strip())


def list_keys(project: Project, *args: str) -> list[dict[str, Any]]:
    result = run("keys", "list", "--json", "--config", str(project.config), *args)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def key_id(key: str) -> str:
    return key.split("_")[1]


# -- version --------------------------------------------------------------------------------


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"bastion {__version__}"


def test_python_dash_m_bastion_runs_the_cli() -> None:
    assert process_stdout("--version").strip() == f"bastion {__version__}"


# -- init -----------------------------------------------------------------------------------


def test_init_lays_out_a_project_and_shows_the_admin_key_once(tmp_path: Path) -> None:
    directory = tmp_path / "new" / "proj"
    result, proj = init(directory)
    assert result.output.count(proj.admin_key) == 1
    assert len(KEY_RE.findall(result.output)) == 1
    assert proj.admin_key in result.stdout.splitlines()  # on a line of its own

    assert proj.config.is_file()
    policy = json.loads((directory / "policy.json").read_text())
    assert policy["allow"]["admin"] == ["*"]
    settings = load_settings(proj.config)
    assert Path(settings.database_url().removeprefix("sqlite:///")).is_file()
    assert verify(proj.config, proj.admin_key) == ("admin", "")

    secret_files = sorted((directory / "secrets").iterdir())
    assert {p.name for p in secret_files} == {
        "api-key-pepper",
        "audit.key",
        "token-signing.jwks.json",
        *(f"{principal}.key" for principal in (*SERVICE_PRINCIPALS, *CLIENT_PRINCIPALS)),
    }
    for path in secret_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    text = proj.config.read_text()
    for path in secret_files:
        value = path.read_text().strip()
        assert value and value not in text, f"{path.name} is inlined in the config"
    assert proj.admin_key not in text
    doc = yaml.safe_load(text)
    refs = [
        doc["auth"]["pepper"],
        doc["auth"]["token_service"]["signing_keys"],
        doc["audit"]["hmac_key"],
    ]
    assert all(ref.startswith("secret://") for ref in refs), refs


def test_init_refuses_an_existing_project_without_force(tmp_path: Path) -> None:
    directory = tmp_path / "proj"
    _, proj = init(directory)
    before = {p: p.read_bytes() for p in [proj.config, *sorted((directory / "secrets").iterdir())]}

    again = run("init", "--dir", str(directory))
    message = one_line_error(again)
    assert again.exit_code == 2
    assert "already holds a Bastion project" in message
    assert "--force would overwrite bastion.yaml and policy.json" in message
    assert not KEY_RE.search(again.output)
    assert {p: p.read_bytes() for p in before} == before
    assert verify(proj.config, proj.admin_key) == ("admin", "")

    forced = run("init", "--dir", str(directory), "--force")
    assert forced.exit_code == 0, forced.output
    assert len(KEY_RE.findall(forced.stdout)) == 1


# -- keys -----------------------------------------------------------------------------------


def test_keys_create_prints_only_the_key(project: Project) -> None:
    result = run("keys", "create", "alice", "--config", str(project.config), "--label", "ci")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("\n")
    assert KEY_RE.fullmatch(result.stdout.rstrip("\n"))
    assert verify(project.config, result.stdout.strip()) == ("alice", "")


def test_keys_list_json_shows_status_and_never_secrets(project: Project) -> None:
    key = create_key(project, "bob", "--label", "listed")
    result = run("keys", "list", "--json", "--config", str(project.config))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    mine = [r for r in rows if r["key_id"] == key_id(key)]
    assert len(mine) == 1
    row = mine[0]
    assert row["principal"] == "bob"
    assert row["status"] == "active"
    assert row["label"] == "listed"
    assert row["revoked_at"] is None
    assert set(row) == {
        "key_id",
        "principal",
        "label",
        "created_at",
        "expires_at",
        "revoked_at",
        "status",
    }
    secret = key.split("_")[2]
    assert secret not in result.stdout
    assert project.admin_key.split("_")[2] not in result.stdout
    assert "hash" not in result.stdout

    table = run("keys", "list", "--config", str(project.config), "--principal", "bob")
    assert table.exit_code == 0, table.output
    assert "bob" in table.stdout
    assert secret not in table.stdout


def test_keys_revoke(project: Project) -> None:
    key = create_key(project, "carol")
    result = run("keys", "revoke", key_id(key), "--config", str(project.config))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"revoked {key_id(key)}"
    row = next(r for r in list_keys(project, "--principal", "carol") if r["key_id"] == key_id(key))
    assert row["status"] == "revoked"
    assert row["revoked_at"] is not None
    principal, reason = verify(project.config, key)
    assert principal is None
    assert "revoked" in reason


def test_keys_rotate_with_no_grace_retires_the_old_key(project: Project) -> None:
    old = create_key(project, "dave")
    result = run("keys", "rotate", key_id(old), "--grace", "0s", "--config", str(project.config))
    assert result.exit_code == 0, result.output
    new = result.stdout.strip()
    assert KEY_RE.fullmatch(new)
    assert new != old
    assert verify(project.config, new) == ("dave", "")
    principal, reason = verify(project.config, old)
    assert principal is None
    assert "expired" in reason
    statuses = {r["key_id"]: r["status"] for r in list_keys(project, "--principal", "dave")}
    assert statuses == {key_id(old): "expired", key_id(new): "active"}


def test_keys_rotate_keeps_the_old_key_during_the_grace_period(project: Project) -> None:
    old = create_key(project, "erin")
    result = run("keys", "rotate", key_id(old), "--grace", "1h", "--config", str(project.config))
    assert result.exit_code == 0, result.output
    assert verify(project.config, old) == ("erin", "")
    assert verify(project.config, result.stdout.strip()) == ("erin", "")


def test_keys_create_expiring_key(project: Project) -> None:
    key = create_key(project, "frank", "--expires-in", "30d")
    row = next(r for r in list_keys(project, "--principal", "frank"))
    assert row["key_id"] == key_id(key)
    assert row["expires_at"] > row["created_at"] + 29 * 86400


def test_bad_principal_fails_with_one_line(project: Project) -> None:
    result = run("keys", "create", "not a principal", "--config", str(project.config))
    message = one_line_error(result)
    assert "invalid principal name 'not a principal'" in message
    assert not KEY_RE.search(result.output)
    assert not [r for r in list_keys(project) if r["principal"] == "not a principal"]


def test_bracketed_input_is_printed_verbatim(project: Project) -> None:
    result = run("keys", "create", "[bold]x[/]", "--config", str(project.config))
    assert "'[bold]x[/]'" in one_line_error(result)


def test_unknown_key_id_fails_with_one_line(project: Project) -> None:
    result = run("keys", "revoke", "nosuchkey000", "--config", str(project.config))
    assert result.exit_code == 2
    assert "no such key id: 'nosuchkey000' (see `bastion keys list`)" in one_line_error(result)
    result = run("keys", "rotate", "nosuchkey000", "--config", str(project.config))
    assert result.exit_code == 2
    assert "no such key id: 'nosuchkey000' (see `bastion keys list`)" in one_line_error(result)


def test_bad_duration_is_a_usage_error(project: Project) -> None:
    result = run("keys", "create", "gina", "--config", str(project.config), "--expires-in", "5x")
    assert result.exit_code == 2
    assert "unit s, m, h or d" in result.output
    assert not KEY_RE.search(result.output)


def assert_one_line_usage_error(proc: subprocess.CompletedProcess[str]) -> str:
    """A real process refused its arguments: exit 2, one `error:` line, no traceback."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_a_key_that_expires_at_once_is_refused(project: Project) -> None:
    before = len(list_keys(project))
    proc = run_process("keys", "create", "gina", "--expires-in", "0s", "-c", str(project.config))
    message = assert_one_line_usage_error(proc)
    assert "--expires-in '0s': a key must live longer than 0 s" in message
    assert len(list_keys(project)) == before


def test_revoking_a_revoked_key_is_refused(project: Project) -> None:
    key = create_key(project, "submitter")
    config = str(project.config)
    assert run_process("keys", "revoke", key_id(key), "-c", config).returncode == 0
    message = assert_one_line_usage_error(run_process("keys", "revoke", key_id(key), "-c", config))
    assert f"key {key_id(key)} is already revoked" in message


def unique_prefix(wanted: str, ids: list[str]) -> str:
    """The shortest prefix of `wanted` no other id shares."""
    return next(
        wanted[:n] for n in range(1, 13) if [i for i in ids if i.startswith(wanted[:n])] == [wanted]
    )


def test_keys_revoke_takes_a_unique_prefix(project: Project) -> None:
    key = create_key(project, "submitter")
    prefix = unique_prefix(key_id(key), [r["key_id"] for r in list_keys(project)])
    result = run("keys", "revoke", prefix, "--config", str(project.config))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"revoked {key_id(key)}\n"
    assert verify(project.config, key)[0] is None


def test_keys_rotate_takes_a_unique_prefix(project: Project) -> None:
    old = create_key(project, "submitter")
    prefix = unique_prefix(key_id(old), [r["key_id"] for r in list_keys(project)])
    proc = run_process("keys", "rotate", prefix, "--grace", "0s", "-c", str(project.config))
    assert proc.returncode == 0, proc.stderr
    new = proc.stdout.strip()
    assert KEY_RE.fullmatch(new)
    assert verify(project.config, new)[0] == "submitter"
    assert verify(project.config, old)[0] is None


def test_keys_rotate_refuses_a_revoked_key(project: Project) -> None:
    key = create_key(project, "submitter")
    config = str(project.config)
    assert run_process("keys", "revoke", key_id(key), "-c", config).returncode == 0
    before = len(list_keys(project))
    message = assert_one_line_usage_error(run_process("keys", "rotate", key_id(key), "-c", config))
    assert f"key {key_id(key)} is revoked and cannot be rotated" in message
    assert len(list_keys(project)) == before  # no new key


def test_keys_revoke_and_rotate_refuse_an_ambiguous_prefix(project: Project) -> None:
    # 36 letters and digits start a key id: among 37 keys, two share their first character.
    for _ in range(37):
        firsts = [r["key_id"][0] for r in list_keys(project) if r["status"] == "active"]
        shared = [c for c in set(firsts) if firsts.count(c) > 1]
        if shared:
            break
        create_key(project, "submitter")
    prefix = shared[0]
    before = {r["key_id"]: r["status"] for r in list_keys(project)}
    sharing = [i for i in before if i.startswith(prefix)]
    result = run("keys", "revoke", prefix, "--config", str(project.config))
    assert result.exit_code == 2
    message = one_line_error(result)
    assert f"key id prefix {prefix!r} is ambiguous: it matches {len(sharing)}" in message
    assert {r["key_id"]: r["status"] for r in list_keys(project)} == before  # nothing revoked
    result = run("keys", "rotate", prefix, "--config", str(project.config))
    assert result.exit_code == 2
    message = one_line_error(result)
    assert f"key id prefix {prefix!r} is ambiguous: it matches {len(sharing)}" in message
    assert {r["key_id"]: r["status"] for r in list_keys(project)} == before  # no new key


def test_a_key_for_a_principal_the_policy_never_names_warns_on_stderr(project: Project) -> None:
    proc = run_process("keys", "create", "nobody-in-policy", "-c", str(project.config))
    assert proc.returncode == 0, proc.stderr
    assert KEY_RE.fullmatch(proc.stdout.rstrip("\n")) and proc.stdout.count("\n") == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: "), proc.stderr
    assert "principal 'nobody-in-policy' appears nowhere in" in lines[0]
    assert verify(project.config, proc.stdout.strip()) == ("nobody-in-policy", "")
    # A principal the policy grants something: no warning.
    proc = run_process("keys", "create", "submitter", "-c", str(project.config))
    assert proc.returncode == 0 and proc.stderr == ""
    assert KEY_RE.fullmatch(proc.stdout.rstrip("\n"))


def test_key_ids_are_whole_on_a_narrow_terminal_and_in_a_pipe(project: Project) -> None:
    ids = [r["key_id"] for r in list_keys(project)]
    code, shown = run_in_terminal("keys", "list", "-c", str(project.config), columns=40)
    assert code == 0, shown
    piped = run_process("keys", "list", "-c", str(project.config), env={"COLUMNS": "40"})
    assert piped.returncode == 0, piped.stderr
    for output in (shown, piped.stdout):
        assert "…" not in output
        for i in ids:
            assert i in output


# -- config lookup --------------------------------------------------------------------------


def test_keys_list_finds_the_config_by_environment_and_by_working_directory(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_id = key_id(project.admin_key)
    monkeypatch.chdir(tmp_path)  # no bastion.yaml here

    by_env = run("keys", "list", "--json", env={"BASTION_CONFIG": str(project.config)})
    assert by_env.exit_code == 0, by_env.output
    assert admin_id in {r["key_id"] for r in json.loads(by_env.stdout)}

    missing = one_line_error(run("keys", "list", "--json"))
    assert "no bastion.yaml found" in missing

    monkeypatch.chdir(project.dir)
    by_cwd = run("keys", "list", "--json")
    assert by_cwd.exit_code == 0, by_cwd.output
    assert admin_id in {r["key_id"] for r in json.loads(by_cwd.stdout)}


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    message = one_line_error(run("keys", "list", "--config", str(missing)))
    assert str(missing) in message
    assert "does not exist" in message
