"""`bastion guard scan`: shipped policies by name, the key of reversible tokens from
`--token-key-ref` or the config, and one clear line (exit 2) for what it cannot use."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest

from bastion.guardrails.anonymize import deanonymize
from tests.cli.runner import run, run_process
from tests.cli.test_cli import assert_one_line_usage_error

TEXT = "Please write to jane.doe@example.com"
TOKEN = re.compile(r"\{EMAIL~[A-Za-z0-9_-]+\}")


@pytest.fixture
def key_file(tmp_path: Path) -> tuple[Path, bytes]:
    key = secrets.token_bytes(64)
    path = tmp_path / "token.key"
    path.write_text(key.hex() + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path, key


def scan(*args: str) -> dict[str, object]:
    result = run("guard", "scan", *args)
    assert result.exit_code == 0, result.output
    verdict: dict[str, object] = json.loads(result.stdout)
    return verdict


def test_strict_by_name_with_a_token_key_ref(key_file: tuple[Path, bytes]) -> None:
    path, key = key_file
    verdict = scan("--policy", "strict", "--token-key-ref", f"secret://file/{path}", TEXT)
    text = str(verdict["text"])
    assert verdict["action"] == "ANONYMIZED" and TOKEN.search(text), verdict
    assert deanonymize(text, key) == TEXT


def test_strict_takes_the_token_key_from_the_config(
    tmp_path: Path, key_file: tuple[Path, bytes]
) -> None:
    path, key = key_file
    config = tmp_path / "bastion.yaml"
    config.write_text(f"guardrails:\n  token_key: secret://file/{path.name}\n", encoding="utf-8")
    text = str(scan("--policy", "strict", "--config", str(config), TEXT)["text"])
    assert deanonymize(text, key) == TEXT


def test_shipped_names_and_files(tmp_path: Path) -> None:
    assert scan("--policy", "default", TEXT)["text"] == "Please write to {EMAIL}"
    copy = tmp_path / "mine.yaml"
    copy.write_text(
        (Path(__file__).parents[2] / "src/bastion/guardrails/policies/default.yaml").read_text()
    )
    assert scan("--policy", str(copy), TEXT)["text"] == "Please write to {EMAIL}"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--policy", "strict"],
            "error: policy 'strict' anonymises with reversible tokens and needs their key: "
            "pass --token-key-ref secret://... or set guardrails.token_key in bastion.yaml",
        ),
        (
            ["--policy", "stricter"],
            "error: no such policy: 'stricter' (give a policy file or one of: default, "
            "documents, research, strict)",
        ),
        (
            ["--policy", "strict", "--token-key-ref", "secret://env/BASTION_TEST_NO_SUCH_KEY"],
            "error: --token-key-ref: ",
        ),
        (
            ["--policy", "strict", "--token-key-ref", "secret://env/SHORT_TOKEN_KEY"],
            "error: --token-key-ref: the token key must be 32, 48 or 64 bytes written as hex",
        ),
    ],
)
def test_what_it_cannot_use_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    proc = run_process(
        "guard", "scan", *args, TEXT, cwd=tmp_path, env={"SHORT_TOKEN_KEY": "ab" * 16 + "cd"}
    )
    assert assert_one_line_usage_error(proc).startswith(expected)
    assert "jane.doe" not in proc.stderr and "abab" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "error: nothing to scan: give TEXT, - for standard input, or --jsonl FILE"),
        (["--jsonl", "batch.jsonl", TEXT], "error: give either TEXT or --jsonl, not both"),
    ],
)
def test_no_text_or_both_text_and_jsonl_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    (tmp_path / "batch.jsonl").write_text(json.dumps({"text": TEXT}) + "\n", encoding="utf-8")
    proc = run_process("guard", "scan", "--policy", "default", *args, cwd=tmp_path)
    assert assert_one_line_usage_error(proc) == expected
