"""Each set of tables has one owner: a source scan fails when any other module opens them.

A module "opens" a table set when it imports the set's ORM models or repository (from their own
module or through a face such as `bastion.storage`), imports a repository module at all, or
holds SQL text naming one of the tables. The archive's tables (documents, fields, line items,
findings, history, blobs, invoice claims) are the Archivist's; keys and audit records are the
security layer's; conversations and runs the research agent's; A2A tasks the runtime's task
store; the watched folder's ledger the watcher's. Migrations and the operator's own commands on
the host (`bastion status`) are exempt, like the faces that re-export the models.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
FACES = ("bastion.storage", "bastion.pipeline")  # re-export lazily; they open nothing
MIGRATIONS = "bastion.storage.migrations"


@dataclass(frozen=True)
class TableSet:
    name: str
    tables: tuple[str, ...]
    names: frozenset[str]  # models and repositories that reach the tables
    modules: frozenset[str]  # repository modules: any import of them opens the tables
    owners: tuple[str, ...]  # module prefixes allowed to open them


TABLE_SETS = (
    TableSet(
        "archive",
        (
            "documents",
            "document_fields",
            "line_items",
            "findings",
            "history",
            "blobs",
            "invoice_claims",
        ),
        frozenset(
            {
                "ArchiveRepository",
                "Document",
                "DocumentField",
                "LineItemRow",
                "FindingRow",
                "HistoryRow",
                "Blob",
                "InvoiceClaim",
            }
        ),
        frozenset({"bastion.pipeline.archive_repo", "bastion.pipeline.invoice_claims"}),
        (
            "bastion.pipeline.archive_repo",
            "bastion.pipeline.invoice_claims",
            "bastion.pipeline.history_tail",
            "bastion.pipeline.agents.archivist",
            "bastion.pipeline.agents.archivist_lifecycle",
            "bastion.storage.pipeline_models",
            "bastion.cli.status_cmd",  # the operator's own file access on the host
        ),
    ),
    TableSet(
        "security",
        ("api_keys", "audit_records"),
        frozenset({"ApiKey", "AuditRecord"}),
        frozenset(),
        ("bastion.security", "bastion.storage.models"),
    ),
    TableSet(
        "research",
        ("research_conversations", "research_runs"),
        frozenset({"ResearchConversation", "ResearchRun"}),
        frozenset(),
        ("bastion.research", "bastion.storage.research_models"),
    ),
    TableSet(
        "a2a tasks",
        ("a2a_tasks", "a2a_task_clocks"),
        frozenset({"A2ATask", "A2ATaskClock"}),
        frozenset(),
        ("bastion.runtime.task_store_db", "bastion.storage.a2a_models"),
    ),
    TableSet(
        "watch ledger",
        ("ingested_files",),
        frozenset({"IngestedFile"}),
        frozenset(),
        ("bastion.pipeline.watch_ledger", "bastion.storage.pipeline_models"),
    ),
)


def _sql_pattern(tables: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(tables)
    return re.compile(rf"\b(from|into|update|join|table)\s+\"?({names})\b", re.IGNORECASE)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def openings(source: str, table_set: TableSet) -> list[str]:
    """How `source` opens `table_set`: one line per import, attribute or SQL text."""
    found: list[str] = []
    sql = _sql_pattern(table_set.tables)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module in table_set.modules:
                found.append(f"line {node.lineno}: from {node.module} import ...")
            for alias in node.names:
                if alias.name in table_set.names:
                    found.append(f"line {node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in table_set.modules:
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr in table_set.names:
            found.append(f"line {node.lineno}: uses .{node.attr}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and sql.search(node.value)
        ):
            found.append(f"line {node.lineno}: SQL text naming its tables")
    return found


def exempt(module: str, table_set: TableSet) -> bool:
    if module in FACES or module == MIGRATIONS or module.startswith(MIGRATIONS + "."):
        return True
    return any(module == owner or module.startswith(owner + ".") for owner in table_set.owners)


@pytest.mark.parametrize("table_set", TABLE_SETS, ids=lambda t: t.name)
def test_only_the_owner_opens_its_tables(table_set: TableSet) -> None:
    offenders: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        module = module_name(path)
        if exempt(module, table_set):
            continue
        for how in openings(path.read_text(encoding="utf-8"), table_set):
            offenders.append(f"{module} {how}")
    assert not offenders, (
        f"only {', '.join(table_set.owners)} may open the {table_set.name} tables; "
        "call the owner instead:\n" + "\n".join(offenders)
    )


@pytest.mark.parametrize(
    "source",
    [
        "from bastion.pipeline import ArchiveRepository",
        "from bastion.storage import HistoryRow as H",
        "from bastion.pipeline.archive_repo import readable_by",
        "import bastion.pipeline.archive_repo",
        "import bastion.storage as s\nrows = s.Document",
        "q = 'SELECT id FROM documents WHERE owner = :o'",
        "q = 'update history set detail = 1'",
    ],
)
def test_the_scan_sees_each_way_of_opening_the_archive(source: str) -> None:
    (archive,) = [t for t in TABLE_SETS if t.name == "archive"]
    assert openings(source, archive)
    assert not exempt("bastion.web.gateway", archive)
    assert not exempt("bastion.pipeline.worker", archive)


def test_words_that_only_look_like_tables_are_not_openings() -> None:
    (archive,) = [t for t in TABLE_SETS if t.name == "archive"]
    source = "text = 'documents by status'\nfrom bastion.pipeline.archive_types import NOT_OWNER"
    assert openings(source, archive) == []
