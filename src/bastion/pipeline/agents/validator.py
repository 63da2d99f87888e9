"""The Validator agent: `validate` applies the business rules to an extraction.

Rules come from `pipeline.rules_file` (or the shipped `rules.yaml`); a field whose confidence
is below `pipeline.review_confidence` sends the document to review. The duplicate check claims
the invoice's issuer and number from the archivist (`archivist.claim_invoice`, atomic in the
archive) under the validator's own credential: the only call its grant allows.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from bastion.config import Settings
from bastion.money import canonical_amount, canonical_currency
from bastion.pipeline.agents.common import PeerClients, add_status_method
from bastion.pipeline.model import DOCUMENT_ID_PATTERN, DuplicateClaim, ExtractionResult
from bastion.pipeline.validator import InvoiceKey, load_rules, validate
from bastion.runtime import AgentDefinition, MethodRegistry

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

        async def claim_invoice(key: InvoiceKey) -> DuplicateClaim:
            answer = await peers["archivist"].call(
                "claim_invoice",
                {
                    "document_id": params.document_id,
                    "issuer": key.issuer,
                    "invoice_number": key.invoice_number,
                    "total": canonical_amount(key.total),
                    "currency": canonical_currency(key.currency),
                    "eligible": key.eligible,
                },
            )
            # A malformed answer raises: the rule reports it and the document goes to review.
            return DuplicateClaim.model_validate(answer)

        outcome = await validate(
            params.result,
            rules,
            claim_invoice=claim_invoice,
            review_confidence=settings.pipeline.review_confidence,
        )
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
