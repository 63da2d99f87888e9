"""`GET /api/documents/{id}` through the gateway and the archivist: each field with the
evidence it was archived with, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.pipeline.extract import extract_document
from bastion.pipeline.model import ValidationResult
from tests.cli.test_extract_cli import invoice
from tests.web.test_gateway import Gateway, start


@pytest.fixture
def gateway(tmp_path: Path, db_url: str) -> Iterator[Gateway]:
    with start(tmp_path, db_url) as gw:
        yield gw


def test_a_document_is_read_with_the_evidence_of_its_fields(
    gateway: Gateway, tmp_path: Path
) -> None:
    data = invoice(tmp_path / "inv.pdf").read_bytes()
    r = gateway.upload(data)
    assert r.status_code == 202, r.text
    doc_id = r.json()["id"]
    result = extract_document(data)
    gateway.project.repo.archive(
        doc_id,
        result,
        ValidationResult(outcome="valid"),
        correlation_id=None,
        principal="orchestrator",
    )

    got = gateway.request("GET", f"/api/documents/{doc_id}")
    assert got.status_code == 200, got.text
    fields = got.json()["fields"]
    assert fields.keys() == result.fields.keys()
    for name, f in result.fields.items():
        assert f.evidence is not None
        assert fields[name]["evidence"] == f.evidence.model_dump(mode="json"), name
        assert fields[name]["confidence"] == pytest.approx(f.confidence)
    total = fields["total"]["evidence"]
    assert total["page"] == 1 and len(total["bbox"]) == 4 and total["rule"].startswith("label_")
