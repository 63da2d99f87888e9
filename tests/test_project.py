"""`bastion init` lays out least privilege: service credentials and the shipped policy."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bastion.config import load_settings
from bastion.project import DEFAULT_POLICY, SERVICE_PRINCIPALS, init_project
from bastion.security.rbac import Policy
from bastion.security.secrets import resolve
from bastion.security.stack import build_api_key_store

POLICY = Policy(DEFAULT_POLICY)

# (principal, agent, method): what the document flow needs, and nothing else.
GRANTED = [
    ("worker", "orchestrator", "process_document"),
    ("orchestrator", "extractor", "extract"),
    ("orchestrator", "validator", "validate"),
    ("orchestrator", "archivist", "archive"),
    ("validator", "archivist", "claim_invoice"),
    ("gateway", "archivist", "get_document"),
    ("gateway", "archivist", "list_documents"),
    ("gateway", "archivist", "search"),
    ("monitoring", "archivist", "get_status"),
    ("admin", "archivist", "delete_document"),
    ("lambda-s3-processor", "orchestrator", "process_document"),
]
REFUSED = [
    ("extractor", "archivist", "archive"),
    ("worker", "extractor", "extract"),
    ("worker", "archivist", "archive"),
    ("gateway", "archivist", "archive"),
    ("gateway", "orchestrator", "process_document"),
    ("validator", "archivist", "archive"),
    ("archivist", "extractor", "extract"),
    ("orchestrator", "archivist", "claim_invoice"),
    ("validator", "archivist", "find_duplicate"),
    ("monitoring", "archivist", "search"),
    ("worker", "orchestrator", "get_status"),
    ("lambda-s3-processor", "extractor", "extract"),
    ("lambda-s3-processor", "archivist", "get_document"),
    ("lambda-s3-processor", "gateway", "upload_document"),
]


@pytest.mark.parametrize(("principal", "agent", "method"), GRANTED)
def test_the_flow_is_granted(principal: str, agent: str, method: str) -> None:
    assert POLICY.decide(principal, agent, method)[0]


@pytest.mark.parametrize(("principal", "agent", "method"), REFUSED)
def test_nothing_else_is(principal: str, agent: str, method: str) -> None:
    assert not POLICY.decide(principal, agent, method)[0]


async def test_init_creates_every_service_credential(tmp_path: Path) -> None:
    res = init_project(tmp_path / "proj")
    settings = load_settings(res.config)
    keys = build_api_key_store(settings)
    refs = {name: ep.api_key for name, ep in settings.agents.items() if ep.api_key}
    refs["worker"] = settings.pipeline.worker_api_key
    refs["gateway"] = settings.pipeline.gateway_api_key
    assert set(refs) == set(SERVICE_PRINCIPALS)
    for principal, ref in refs.items():
        assert ref is not None and ref.startswith("secret://file/")
        path = tmp_path / "proj" / ref.removeprefix("secret://file/")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        identity, _ = await keys.verify(resolve(ref, settings.base_dir).get())
        assert identity is not None and identity.principal == principal
    limits = settings.rate_limit.principals
    assert all(limits[p] == "100000/minute" for p in SERVICE_PRINCIPALS)
