"""The Validator's rule engine: declarative rules (`bastion/data/rules.yaml`) over extractions.

rules = load_rules()                      # or load_rules(Path("my-rules.yaml"))
result = await validate(extraction, rules, claim_invoice=archive_claim)
"""

from bastion.pipeline.validator.builtin import BUILTIN_RULE_TYPES, ClaimInvoice, InvoiceKey
from bastion.pipeline.validator.rules import (
    RULES_FILE_VERSION,
    Rule,
    RulesError,
    RuleSet,
    load_rules,
    outcome_of,
    validate,
)

__all__ = [
    "BUILTIN_RULE_TYPES",
    "RULES_FILE_VERSION",
    "ClaimInvoice",
    "InvoiceKey",
    "Rule",
    "RuleSet",
    "RulesError",
    "load_rules",
    "outcome_of",
    "validate",
]
