"""The README keeps its promises: the two set-up commands first, the error table in sync."""

from __future__ import annotations

from pathlib import Path

from bastion.protocol.errors import ERROR_TABLE

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```", 2)[1]
    assert [line for line in first_block.splitlines() if line.strip()] == ["make demo", "make test"]


def test_error_table_matches_the_code() -> None:
    for spec in ERROR_TABLE:
        row = f"| {spec.code} | {spec.name} | {spec.http_status} | {spec.meaning} |"
        assert row in README, f"README error table is missing or out of date for {spec.code}"
