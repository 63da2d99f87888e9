"""The README's configuration reference names every setting of `config.py`, with its default.

A row's first cell names settings: the first one in full (`auth.jwt.leeway_seconds`), the next
ones relative to the same section (`max_token_bytes`), `{a,b}` for several at once, `<name>`
for a map's key and `[]` for a list of objects. Its second cell gives the defaults in the same
order (or one for all); a default in backticks is compared with the code's, `—` means none,
and a description (`the agent's name`) is not checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel

from bastion import config
from bastion.config import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
NO_DEFAULT = "—"


def reference_rows() -> list[tuple[str, str]]:
    """(settings cell, defaults cell) of each row of the configuration reference table."""
    section = README.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    section = section.split("\n### ", 1)[0]  # subsections (Model settings) have their own test
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 3:
            rows.append((cells[0], cells[1]))
    return rows


def is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, config._Section)


def settings(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted name, default) of every setting; `<name>` stands for a map's key."""
    for name, field in model.model_fields.items():
        if field.exclude:
            continue  # base_dir: not a setting
        dotted, annotation = prefix + name, field.annotation
        if is_section(annotation):
            yield from settings(annotation, dotted + ".")
        elif get_origin(annotation) is dict and is_section(get_args(annotation)[1]):
            yield from settings(get_args(annotation)[1], dotted + ".<name>.")
        else:
            yield dotted, field.get_default(call_default_factory=True)


def names_in(cell: str) -> list[list[str]]:
    """The settings a row names, grouped as they share a default."""
    groups: list[list[str]] = []
    parent = ""
    for token in re.findall(r"`([^`]+)`", cell):
        token = token.removesuffix("[]")
        if "." in token and token.split(".", 1)[0] in Settings.model_fields:
            parent = token.rsplit(".", 1)[0] if "{" not in token else token.split(".{")[0]
            full = token
        else:
            full = f"{parent}.{token}"
        brace = re.fullmatch(r"(.*)\.\{([^}]+)\}", full)
        if brace:
            groups.append([f"{brace.group(1)}.{part}" for part in brace.group(2).split(",")])
        else:
            groups.append([full])
    return groups


def rendered(value: Any) -> str:
    if value is None:
        return NO_DEFAULT
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, BaseModel):
        return "(a section)"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def documented() -> dict[str, str | None]:
    """Each documented setting and its documented default (None: a description)."""
    out: dict[str, str | None] = {}
    for names, defaults in reference_rows():
        groups = names_in(names)
        values = [d.strip() for d in defaults.split(" / ")]
        if len(values) == 1:
            values *= len(groups)  # one default for every setting of the row
        assert len(values) == len(groups), f"README: {names} has {defaults!r} as defaults"
        for group, value in zip(groups, values, strict=True):
            literal = re.fullmatch(r"`([^`]*)`", value)
            default = literal.group(1) if literal else (NO_DEFAULT if value == NO_DEFAULT else None)
            for name in group:
                out[name] = default
    return out


CODE = dict(settings(Settings))
DOCS = documented()


def test_every_setting_is_documented() -> None:
    missing = sorted(set(CODE) - set(DOCS))
    assert not missing, f"README configuration reference lacks {missing}"


def test_the_reference_names_no_setting_that_does_not_exist() -> None:
    unknown = sorted(set(DOCS) - set(CODE))
    assert not unknown, f"README configuration reference names {unknown}, not in config.py"


@pytest.mark.parametrize("name", sorted(n for n, d in DOCS.items() if d is not None))
def test_documented_defaults_match_the_code(name: str) -> None:
    assert DOCS[name] == rendered(CODE[name]), name
