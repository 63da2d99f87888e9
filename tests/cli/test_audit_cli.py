"""`bastion audit verify` and `bastion audit tail` against a project folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bastion.cli import common
from bastion.config import load_settings
from bastion.core.audit_entry import AuditEntry
from bastion.security.audit import AuditWriter
from bastion.security.secrets import resolve
from bastion.storage.database import migrate, shared_engine
from tests.cli.runner import run, run_in_terminal

CONFIG = """\
database:
  url: sqlite:///bastion.db
audit:
  hmac_key: "secret://file/audit.key"
  checkpoint_dir: "cp"
  batch_size: 4
  flush_interval_seconds: 0.01
  checkpoint_every: 5
"""


def entry(i: int) -> AuditEntry:
    return AuditEntry(
        ts=1_700_000_000.0 + i,
        principal="alice" if i % 2 == 0 else "bob",
        auth_method="api_key",
        agent="echo",
        method="message/send",
        correlation_id=f"req-{i // 3:04d}-abcdef",
        outcome="ok" if i != 4 else "denied:authorize",
        status=200 if i != 4 else 403,
        latency_ms=0.5 * i,
        client="127.0.0.1:40000",
        detail=None,
    )


@pytest.fixture
async def project(tmp_path: Path) -> tuple[Path, Engine]:
    config = tmp_path / "bastion.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    (tmp_path / "audit.key").write_text("ab" * 32 + "\n", encoding="utf-8")
    settings = load_settings(config)
    url = settings.database_url()
    migrate(url)
    engine = shared_engine(url)
    writer = AuditWriter(
        engine,
        chain="echo",
        key=resolve(settings.audit.hmac_key, settings.base_dir).get_bytes(),
        settings=settings.audit,
        checkpoint_dir=settings.path(settings.audit.checkpoint_dir),
    )
    await writer.start()
    for i in range(12):
        await writer.record(entry(i))
    await writer.close()
    return config, engine


def test_verify_intact_trail(project: tuple[Path, Engine]) -> None:
    config, _ = project
    result = run("audit", "verify", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "audit trail intact" in result.output


def test_verify_json(project: tuple[Path, Engine]) -> None:
    config, _ = project
    result = run("audit", "verify", "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["chains"][0]["chain"] == "echo" and data["chains"][0]["head_seq"] == 12


def test_verify_names_the_tampered_record(project: tuple[Path, Engine]) -> None:
    config, engine = project
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET outcome = 'ok', status = 200 WHERE seq = 5"))
    result = run("audit", "verify", "--config", str(config))
    assert result.exit_code == 1
    assert "TAMPERED" in result.output
    assert "edited seq 5: record 5 was edited" in result.output
    assert "NOT intact: echo" in result.output

    as_json = run("audit", "verify", "--config", str(config), "--json")
    assert as_json.exit_code == 1
    chain = json.loads(as_json.stdout)["chains"][0]
    assert chain["ok"] is False and chain["first_bad_seq"] == 5
    assert chain["problems"][0]["kind"] == "edited"


def test_verify_reports_a_truncated_tail(project: tuple[Path, Engine]) -> None:
    config, engine = project
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_records WHERE seq > 7"))
    result = run("audit", "verify", "--config", str(config))
    assert result.exit_code == 1
    assert "truncated" in result.output


def test_verify_unknown_chain_is_a_usage_error(project: tuple[Path, Engine]) -> None:
    config, _ = project
    for args in ([], ["--json"]):
        result = run("audit", "verify", "--config", str(config), "--chain", "nope", *args)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr == (
            "error: no such chain: 'nope' (chains with records or checkpoints: echo)\n"
        )


def test_verify_without_the_key_fails_cleanly(project: tuple[Path, Engine]) -> None:
    config, _ = project
    (config.parent / "audit.key").unlink()
    result = run("audit", "verify", "--config", str(config))
    assert result.exit_code == 1
    assert "audit.hmac_key" in result.output
    assert "Traceback" not in result.output


def test_tail_by_correlation_is_oldest_first(project: tuple[Path, Engine]) -> None:
    config, _ = project
    result = run(
        "audit", "tail", "--config", str(config), "--correlation", "req-0001-abcdef", "--json"
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["seq"] for r in rows] == [4, 5, 6]
    assert {r["correlation_id"] for r in rows} == {"req-0001-abcdef"}
    assert rows[1]["outcome"] == "denied:authorize" and rows[1]["time"].startswith("2023-")


def test_tail_by_principal_newest_first(project: tuple[Path, Engine]) -> None:
    config, _ = project
    result = run(
        "audit", "tail", "--config", str(config), "--principal", "bob", "--limit", "3", "--json"
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["seq"] for r in rows] == [12, 10, 8]
    assert {r["principal"] for r in rows} == {"bob"}


def test_tail_table(project: tuple[Path, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    config, _ = project
    monkeypatch.setattr(common.console, "width", 250)
    result = run("audit", "tail", "--config", str(config), "-n", "2")
    assert result.exit_code == 0, result.output
    assert "audit records" in result.output
    assert "req-0003-abcdef" in result.output and "message/send" in result.output


def test_tail_rejects_a_bad_limit(project: tuple[Path, Engine]) -> None:
    config, _ = project
    result = run("audit", "tail", "--config", str(config), "--limit", "0")
    assert result.exit_code != 0


def test_tail_takes_a_unique_correlation_prefix(project: tuple[Path, Engine]) -> None:
    config, _ = project
    result = run("audit", "tail", "-c", str(config), "--correlation", "req-0001", "--json")
    assert result.exit_code == 0, result.output
    assert {r["correlation_id"] for r in json.loads(result.stdout)} == {"req-0001-abcdef"}


def test_tail_refuses_an_ambiguous_or_unknown_correlation(project: tuple[Path, Engine]) -> None:
    config, _ = project
    result = run("audit", "tail", "-c", str(config), "--correlation", "req-000", "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        "error: correlation id prefix 'req-000' is ambiguous: it matches 4; give more "
        "characters (see `bastion audit tail`)\n"
    )
    # LIKE wildcards are taken literally.
    for given in ("nope", "req_0001", "%"):
        result = run("audit", "tail", "-c", str(config), "--correlation", given)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"error: no such correlation id: {given!r}")


def test_tail_shows_whole_correlation_ids_on_a_narrow_terminal(
    project: tuple[Path, Engine],
) -> None:
    config, _ = project
    code, shown = run_in_terminal("audit", "tail", "-c", str(config), "-n", "12", columns=40)
    assert code == 0, shown
    assert "…" not in shown
    for i in range(4):
        assert f"req-{i:04d}-abcdef" in shown
