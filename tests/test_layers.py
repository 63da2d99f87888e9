"""The layer contract: the import-linter contracts in pyproject.toml hold, catch an upward import
and a reach past a package's face, and are the diagram docs/architecture.md shows; each face
offers exactly what it declares."""

from __future__ import annotations

import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [layers] = [
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    ]
    return [" | ".join(p.strip().replace("bastion.", "") for p in row.split("|")) for row in layers]


def diagram_layers() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Layers\n", 1)[1]
    block = section.split("```\n", 2)[1]
    rows = []
    for line in block.splitlines():
        if not line or line[0].isspace():
            continue  # a description's continuation
        names = re.split(r"\s{2,}", line, maxsplit=1)[0]
        rows.append(" | ".join(n.strip().replace("/", "") for n in names.split("|")))
    return rows


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=src,
        env=env,
        timeout=300,
        check=False,
    )


def test_the_architecture_diagram_is_the_contract() -> None:
    assert diagram_layers() == contract_layers()


def test_the_tree_keeps_its_layers() -> None:
    result = lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Contracts: \d+ kept, 0 broken\.", result.stdout), result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "bastion", src / "bastion")
    audit = src / "bastion" / "security" / "audit.py"
    # Even hidden inside a function, an import of a higher layer is found.
    audit.write_text(
        audit.read_text(encoding="utf-8")
        + "\n\ndef _up() -> None:\n    import bastion.web.gateway\n",
        encoding="utf-8",
    )
    result = lint_imports(src)
    assert result.returncode == 1, result.stdout
    assert "bastion.security is not allowed to import bastion.web" in result.stdout
    assert "bastion.security.audit -> bastion.web.gateway" in result.stdout


def test_a_reach_past_a_face_breaks_the_contract(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "bastion", src / "bastion")
    gateway = src / "bastion" / "web" / "gateway.py"
    inward = "\nfrom bastion.pipeline.archive_repo import ArchiveRepository as _Repo\n"
    gateway.write_text(gateway.read_text(encoding="utf-8") + inward, encoding="utf-8")
    result = lint_imports(src)
    assert result.returncode == 1, result.stdout
    assert "Outside bastion.pipeline, its modules are reached through its face BROKEN" in (
        result.stdout
    )
    assert "bastion.web.gateway -> bastion.pipeline.archive_repo" in result.stdout


FACES = ("runtime", "security", "pipeline", "storage")


@pytest.mark.parametrize("package", FACES)
def test_a_face_offers_exactly_what_it_declares(package: str) -> None:
    face = importlib.import_module(f"bastion.{package}")
    exports: dict[str, str] = face._EXPORTS
    assert sorted(face.__all__) == sorted(exports) and len(set(face.__all__)) == len(exports)
    # The imports type checkers read are the names the face loads, from the same modules.
    tree = ast.parse(Path(face.__file__).read_text(encoding="utf-8"))
    declared = {
        alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__"
        for alias in node.names
        if alias.asname == alias.name
    }
    assert declared == exports
    for name, module in exports.items():
        assert getattr(face, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        face.nothing_here  # noqa: B018
