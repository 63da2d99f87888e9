"""The Validator agent: `validate` applies the business rules to an extraction.

Rules come from `pipeline.rules_file` (or the shipped `rules.yaml`). The duplicate check asks
the archivist (`archivist.find_duplicate`) under the validator's own credential: the only call
its grant allows.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from bastion.config import Settings
from bastion.pipeline.agents.common import PeerClients, add_status_method
from bastion.pipeline.model import DOCUMENT_ID_PATTERN, ExtractionResult
from bastion.pipeline.validator import load_rules, validate
from bastion.runtime.agent import AgentDefinition
from bastion.runtime.methods import MethodRegistry

NAME = "validator"


class ValidateParams(BaseModel):
    model_config = {"extra": "forbid"}

    document_id: str = Field(pattern=DOCUMENT_ID_PATTERN)
    result: ExtractionResult


def definition(settings: Settings) -> AgentDefinition:
    rules_file = settings.pipeline.rules_file
    rules = load_rules(settings.path(rules_file) if rules_file else None)
    peers = PeerClients(settings, NAME, ("archivist",))
    counts = {"valid": 0, "invalid": 0, "needs_review": 0}
    registry = MethodRegistry()

    @registry.method("validate")
    async def validate_document(params: ValidateParams) -> dict[str, Any]:
        """Check an extraction against the rules: outcome and findings."""

        async def find_duplicate(issuer: str, invoice_number: str) -> str | None:
            answer = await peers["archivist"].call(
                "find_duplicate",
                {
                    "issuer": issuer,
                    "invoice_number": invoice_number,
                    "exclude_id": params.document_id,
                },
            )
            duplicate = answer.get("duplicate_of") if isinstance(answer, dict) else None
            return duplicate if isinstance(duplicate, str) else None

        outcome = await validate(params.result, rules, find_duplicate=find_duplicate)
        counts[outcome.outcome] += 1
        return outcome.model_dump(mode="json")

    add_status_method(registry, NAME, lambda: {"outcomes": dict(counts), "rules": len(rules.rules)})

    return AgentDefinition(
        name=NAME,
        description="Validates extracted documents against declarative business rules.",
        registry=registry,
        skills=[
            {
                "id": "validate",
                "name": "Validate",
                "description": "Required fields, arithmetic, dates, IBAN, VAT id, duplicates.",
                "tags": ["validation", "rules"],
            }
        ],
        on_shutdown=[peers.aclose],
    )
