"""Only the LLM provider builds model-purpose clients: an AST scan of `src/bastion/**/*.py`
for `Purpose.MODEL` (directly, through an alias, `Purpose["MODEL"]`, `Purpose("model")` or
`purpose="model"`) outside the LLM package's private modules and the egress package itself,
which defines and enforces it.

Like the LLM perimeter scan, it is a tripwire for honest mistakes; the policy's `model_hosts`
are what keep other clients away from model endpoints.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PROVIDER = "bastion/llm/_http.py"  # the model-purpose client of the HTTP providers


def may_use_model_purpose(path: str) -> bool:
    return path.startswith(("bastion/llm/_", "bastion/egress/"))


def purpose_names(tree: ast.Module) -> set[str]:
    """`Purpose` and the names it is imported under."""
    names = {"Purpose"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names |= {a.asname for a in node.names if a.name == "Purpose" and a.asname}
    return names


def names_purpose(node: ast.expr, names: set[str]) -> bool:
    return (isinstance(node, ast.Name) and node.id in names) or (
        isinstance(node, ast.Attribute) and node.attr == "Purpose"
    )


def is_text(node: ast.expr | None, text: str) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (node.value.lower() == text.lower())
    )


def model_purpose_uses(source: str) -> list[int]:
    """The lines of `source` that name the model purpose."""
    tree = ast.parse(source)
    names = purpose_names(tree)
    lines: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "MODEL":
            hit = names_purpose(node.value, names)
        elif isinstance(node, ast.Subscript):
            hit = names_purpose(node.value, names) and is_text(node.slice, "MODEL")
        elif isinstance(node, ast.Call):
            hit = names_purpose(node.func, names) and any(is_text(a, "model") for a in node.args)
        elif isinstance(node, ast.keyword):
            hit = node.arg == "purpose" and is_text(node.value, "model")
        else:
            continue
        if hit:
            lines.append(node.lineno)
    return sorted(lines)


def test_only_the_llm_provider_builds_model_clients() -> None:
    found: dict[str, list[int]] = {}
    for file in sorted((SRC / "bastion").rglob("*.py")):
        path = file.relative_to(SRC).as_posix()
        uses = model_purpose_uses(file.read_text(encoding="utf-8"))
        if uses:
            found[path] = uses
    assert PROVIDER in found  # the scan looks for something real
    outside = {path: lines for path, lines in found.items() if not may_use_model_purpose(path)}
    assert not outside, f"Purpose.MODEL used outside the LLM provider: {outside}"


def test_the_scan_catches_every_spelling() -> None:
    assert model_purpose_uses("egress_client(p, purpose=Purpose.MODEL)\n") == [1]
    assert model_purpose_uses("import bastion.egress\nx = bastion.egress.Purpose.MODEL\n") == [2]
    assert model_purpose_uses("from bastion.egress import Purpose as P\nP.MODEL\n") == [2]
    assert model_purpose_uses('Purpose["MODEL"]\n') == [1]
    assert model_purpose_uses('Purpose("model")\n') == [1]
    assert model_purpose_uses('egress_client(p, purpose="model")\n') == [1]


def test_the_scan_leaves_general_clients_alone() -> None:
    assert model_purpose_uses("egress_client(p, purpose=Purpose.GENERAL)\n") == []
    assert model_purpose_uses("egress_client(p)\nconfig.MODEL\nmodel = 'model'\n") == []
    assert may_use_model_purpose(PROVIDER)
    assert not may_use_model_purpose("bastion/llm/factory.py")
    assert not may_use_model_purpose("bastion/agents/research.py")
