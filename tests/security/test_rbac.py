"""RBAC: patterns, roles, deny wins, deny by default, hot reload without a restart."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bastion.security.rbac import Policy, PolicyError, PolicyStore, load_policy

FAMILIAR = {
    "allow": {
        "lambda-s3-processor": ["process_document"],
        "admin": ["*"],
        "monitoring": ["get_status"],
    }
}


def test_familiar_shape() -> None:
    p = Policy(FAMILIAR)
    assert p.decide("lambda-s3-processor", "orchestrator", "process_document")[0]
    assert not p.decide("lambda-s3-processor", "orchestrator", "get_status")[0]
    assert p.decide("admin", "anything", "whatever")[0]
    assert p.decide("monitoring", "archivist", "get_status")[0]
    assert not p.decide("monitoring", "archivist", "archive")[0]


def test_deny_by_default_for_unknown_principal() -> None:
    allowed, reason = Policy(FAMILIAR).decide("stranger", "echo", "echo")
    assert not allowed and "deny by default" in reason


@pytest.mark.parametrize(
    ("pattern", "agent", "method", "expected"),
    [
        ("echo", "echo", "echo", True),
        ("echo", "other", "echo", True),  # a bare method matches on any agent
        ("archivist.archive", "archivist", "archive", True),
        ("archivist.archive", "validator", "archive", False),
        ("archivist.*", "archivist", "search", True),
        ("archivist.*", "extractor", "search", False),
        ("tasks*", "echo", "tasks_list", True),
        ("tasks*", "echo", "task", False),
        ("Get*", "echo", "GetTask", True),
        ("*", "x", "y", True),
    ],
)
def test_patterns(pattern: str, agent: str, method: str, expected: bool) -> None:
    assert Policy({"allow": {"p": [pattern]}}).decide("p", agent, method)[0] is expected


def test_deny_wins_and_roles() -> None:
    p = Policy(
        {
            "allow": {"ops": ["*"], "alice": ["echo"]},
            "deny": {"contractor": ["archivist.*"]},
            "roles": {"alice": ["ops", "contractor"]},
        }
    )
    assert p.decide("alice", "echo", "SendMessage")[0]  # via role ops
    allowed, reason = p.decide("alice", "archivist", "archive")
    assert not allowed and "contractor" in reason  # deny on a role beats allow


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"allow": {"a": "echo"}}, "list of strings"),
        ({"allow": {"a": ["bad pattern!"]}}, "bad pattern"),
        ({"allow": {"a": ["*x"]}}, "bad pattern"),
        ({"alow": {}}, "unknown top-level"),
        ({"roles": {"a": "ops"}}, "roles"),
    ],
)
def test_invalid_policies(doc: dict[str, object], problem: str) -> None:
    with pytest.raises(PolicyError, match=problem):
        Policy(doc)


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "policy.json"
    f.write_text('{\n  "allow": {\n    "a": ["x"],\n  }\n}')
    with pytest.raises(PolicyError, match=r"policy.json:4: invalid JSON"):
        load_policy(f)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _write(path: Path, doc: dict[str, object], mtime: int) -> None:
    path.write_text(json.dumps(doc))
    os.utime(path, ns=(mtime, mtime))


def test_reload_without_restart_and_bad_edit_keeps_old(tmp_path: Path) -> None:
    f = tmp_path / "policy.json"
    _write(f, {"allow": {"bob": ["echo"]}}, 1_000_000_000)
    clock = Clock()
    store = PolicyStore(f, check_seconds=1.0, clock=clock)
    assert store.decide("bob", "echo", "echo")[0]
    assert not store.decide("bob", "echo", "get_status")[0]

    _write(f, {"allow": {"bob": ["get_status"]}}, 2_000_000_000)
    assert store.decide("bob", "echo", "echo")[0]  # not checked again yet
    clock.now = 1.5
    assert store.decide("bob", "echo", "get_status")[0]
    assert not store.decide("bob", "echo", "echo")[0]

    f.write_text("{broken")
    os.utime(f, ns=(3_000_000_000, 3_000_000_000))
    clock.now = 3.0
    assert store.decide("bob", "echo", "get_status")[0]  # old policy kept


def test_broken_policy_at_start_is_fatal(tmp_path: Path) -> None:
    f = tmp_path / "policy.json"
    f.write_text("[]")
    with pytest.raises(PolicyError, match="JSON object"):
        PolicyStore(f)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{\n  "allow": {},\n  "grants": {}\n}', r"policy.json:3: unknown top-level keys"),
        ('{\n  "allow": {\n    "a": ["x"],\n    "b": "y"\n  }\n}', r"policy.json:4: allow.b must"),
        ('{"allow": {},\n "deny": {"c": ["ok",\n  "not ok"]}}', r"policy.json:3: deny.c: bad"),
        ('{"allow": {},\n\n "roles": []}', r"policy.json:3: 'roles' must map"),
    ],
)
def test_schema_errors_name_the_line(tmp_path: Path, text: str, expected: str) -> None:
    f = tmp_path / "policy.json"
    f.write_text(text)
    with pytest.raises(PolicyError, match=expected):
        load_policy(f)
