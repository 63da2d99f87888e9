"""The README's "Model settings" table names every field of `ModelConfig`, with its default
(a default in backticks is compared with the code's; anything else is a description)."""

from __future__ import annotations

import re

from bastion.llm import ModelConfig, providers
from tests.test_config_reference import README, rendered


def model_rows() -> dict[str, str | None]:
    """Each documented model setting and its documented default (None: a description)."""
    section = README.split("\n### Model settings", 1)[1].split("\n#", 1)[0]
    out: dict[str, str | None] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 3:
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        defaults = [d.strip() for d in cells[1].split(" / ")]
        if len(defaults) == 1:
            defaults *= len(names)
        assert len(defaults) == len(names), f"README: {cells[0]} has {cells[1]!r} as defaults"
        for name, default in zip(names, defaults, strict=True):
            literal = re.fullmatch(r"`([^`]*)`", default)
            out[name] = literal.group(1) if literal else None
    return out


DOCS = model_rows()


def test_every_model_setting_is_documented_and_nothing_else() -> None:
    assert sorted(DOCS) == sorted(ModelConfig.model_fields)


def test_documented_model_defaults_match_the_code() -> None:
    for name, default in DOCS.items():
        if default is not None:
            field = ModelConfig.model_fields[name]
            assert default == rendered(field.get_default(call_default_factory=True)), name


def test_every_provider_is_documented() -> None:
    (provider_row,) = [line for line in README.splitlines() if line.startswith("| `provider` |")]
    for name in providers():
        assert f"`{name}`" in provider_row.split("|")[3], name
