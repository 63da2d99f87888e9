"""What the research agents share: whom a call acts for, and the credibility rules."""

from __future__ import annotations

from bastion.config import Settings
from bastion.core.context import CallContext
from bastion.protocol.errors import FORBIDDEN, RpcError
from bastion.research.credibility import CredibilityRules, load_credibility_rules

__all__ = ["credibility_rules", "subject"]

NO_DELEGATION = (
    "research acts for a user: this call carries no delegation naming whom it acts for; "
    "call through the gateway (it passes the asking user's delegation)"
)


def subject(ctx: CallContext) -> str:
    """The principal the call acts for (its delegation's subject); FORBIDDEN without one."""
    delegation = ctx.delegation
    if delegation is None or not delegation.subject:
        raise RpcError(FORBIDDEN, NO_DELEGATION, data={"reason": "no_delegation"})
    return delegation.subject


def credibility_rules(settings: Settings) -> CredibilityRules:
    """The tiers `research.credibility` names, or the shipped ones."""
    path = settings.research.credibility
    return load_credibility_rules(settings.path(path) if path else None)
