"""Security stages and primitives: authentication, authorization, rate limits, audit, secrets.

The rest of Bastion imports this face, never the package's modules (`bastion.faces`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bastion.faces import lazy_attributes

if TYPE_CHECKING:
    from bastion.security.apikeys import KEY_PREFIX as KEY_PREFIX
    from bastion.security.apikeys import ApiKeyError as ApiKeyError
    from bastion.security.apikeys import ApiKeyStore as ApiKeyStore
    from bastion.security.audit_details import AUTH_REASONS as AUTH_REASONS
    from bastion.security.audit_query import AuditFilters as AuditFilters
    from bastion.security.audit_query import AuditPage as AuditPage
    from bastion.security.audit_query import AuditRow as AuditRow
    from bastion.security.audit_query import search as search
    from bastion.security.audit_status import ChainMonitor as ChainMonitor
    from bastion.security.audit_status import ChainStatus as ChainStatus
    from bastion.security.audit_status import chain_status as chain_status
    from bastion.security.audit_status import chain_status_for as chain_status_for
    from bastion.security.audit_summary import SecuritySummary as SecuritySummary
    from bastion.security.audit_summary import security_summary as security_summary
    from bastion.security.audit_verify import VerifyReport as VerifyReport
    from bastion.security.audit_verify import chain_names as chain_names
    from bastion.security.audit_verify import correlation_ids as correlation_ids
    from bastion.security.audit_verify import tail as tail
    from bastion.security.audit_verify import verify_chain as verify_chain
    from bastion.security.delegation import DelegationError as DelegationError
    from bastion.security.delegation import Delegations as Delegations
    from bastion.security.jwt_verify import TokenError as TokenError
    from bastion.security.liveness import CredentialCheck as CredentialCheck
    from bastion.security.liveness import watch as watch
    from bastion.security.outcomes import AuditSink as AuditSink
    from bastion.security.outcomes import OutcomeRecorder as OutcomeRecorder
    from bastion.security.ratelimit import Limit as Limit
    from bastion.security.ratelimit import MemoryRateLimiter as MemoryRateLimiter
    from bastion.security.ratelimit import RateDecision as RateDecision
    from bastion.security.ratelimit import RateLimitBackendError as RateLimitBackendError
    from bastion.security.ratelimit import RateLimiter as RateLimiter
    from bastion.security.ratelimit import headers_for as headers_for
    from bastion.security.ratelimit_backends import shared_rate_limiter as shared_rate_limiter
    from bastion.security.rbac import PolicyError as PolicyError
    from bastion.security.rbac import PolicyStore as PolicyStore
    from bastion.security.rbac import load_policy as load_policy
    from bastion.security.rbac import policy_store as policy_store
    from bastion.security.revocation import NoSharedStore as NoSharedStore
    from bastion.security.revocation import RevocationStoreError as RevocationStoreError
    from bastion.security.revocation import revoke_shared as revoke_shared
    from bastion.security.revocation import valid_jti as valid_jti
    from bastion.security.secrets import Secret as Secret
    from bastion.security.secrets import SecretError as SecretError
    from bastion.security.secrets import SecretValue as SecretValue
    from bastion.security.secrets import is_reference as is_reference
    from bastion.security.secrets import parse_reference as parse_reference
    from bastion.security.secrets import resolve as resolve
    from bastion.security.secrets import write_secret_file as write_secret_file
    from bastion.security.secrets.local import file_path as file_path
    from bastion.security.secrets.preflight import Check as Check
    from bastion.security.secrets.preflight import check_references as check_references
    from bastion.security.secrets.preflight import describe_failures as describe_failures
    from bastion.security.stack import SecurityStack as SecurityStack
    from bastion.security.stack import build_api_key_store as build_api_key_store
    from bastion.security.stack import build_audit_writer as build_audit_writer
    from bastion.security.stack import build_security as build_security
    from bastion.security.stack import database_ready as database_ready
    from bastion.security.stages import DENIED_PREFIX as DENIED_PREFIX
    from bastion.security.stages import Denied as Denied
    from bastion.security.stages import Pipeline as Pipeline
    from bastion.security.stages import log_rejection as log_rejection
    from bastion.security.token_service import JWKS_PATH as JWKS_PATH
    from bastion.security.token_service import TOKEN_PATH as TOKEN_PATH
    from bastion.security.token_service import generate_signing_keyset as generate_signing_keyset

# Each public name and the module that defines it.
_EXPORTS = {
    "AUTH_REASONS": "bastion.security.audit_details",
    "AuditFilters": "bastion.security.audit_query",
    "AuditPage": "bastion.security.audit_query",
    "AuditRow": "bastion.security.audit_query",
    "search": "bastion.security.audit_query",
    "ChainMonitor": "bastion.security.audit_status",
    "ChainStatus": "bastion.security.audit_status",
    "chain_status": "bastion.security.audit_status",
    "chain_status_for": "bastion.security.audit_status",
    "SecuritySummary": "bastion.security.audit_summary",
    "security_summary": "bastion.security.audit_summary",
    "ApiKeyError": "bastion.security.apikeys",
    "ApiKeyStore": "bastion.security.apikeys",
    "AuditSink": "bastion.security.outcomes",
    "build_api_key_store": "bastion.security.stack",
    "build_audit_writer": "bastion.security.stack",
    "build_security": "bastion.security.stack",
    "chain_names": "bastion.security.audit_verify",
    "Check": "bastion.security.secrets.preflight",
    "check_references": "bastion.security.secrets.preflight",
    "correlation_ids": "bastion.security.audit_verify",
    "CredentialCheck": "bastion.security.liveness",
    "database_ready": "bastion.security.stack",
    "DelegationError": "bastion.security.delegation",
    "Delegations": "bastion.security.delegation",
    "Denied": "bastion.security.stages",
    "DENIED_PREFIX": "bastion.security.stages",
    "describe_failures": "bastion.security.secrets.preflight",
    "file_path": "bastion.security.secrets.local",
    "generate_signing_keyset": "bastion.security.token_service",
    "headers_for": "bastion.security.ratelimit",
    "is_reference": "bastion.security.secrets",
    "JWKS_PATH": "bastion.security.token_service",
    "KEY_PREFIX": "bastion.security.apikeys",
    "Limit": "bastion.security.ratelimit",
    "load_policy": "bastion.security.rbac",
    "log_rejection": "bastion.security.stages",
    "MemoryRateLimiter": "bastion.security.ratelimit",
    "OutcomeRecorder": "bastion.security.outcomes",
    "parse_reference": "bastion.security.secrets",
    "Pipeline": "bastion.security.stages",
    "policy_store": "bastion.security.rbac",
    "PolicyError": "bastion.security.rbac",
    "PolicyStore": "bastion.security.rbac",
    "RateDecision": "bastion.security.ratelimit",
    "RateLimitBackendError": "bastion.security.ratelimit",
    "RateLimiter": "bastion.security.ratelimit",
    "NoSharedStore": "bastion.security.revocation",
    "RevocationStoreError": "bastion.security.revocation",
    "TokenError": "bastion.security.jwt_verify",
    "revoke_shared": "bastion.security.revocation",
    "shared_rate_limiter": "bastion.security.ratelimit_backends",
    "valid_jti": "bastion.security.revocation",
    "resolve": "bastion.security.secrets",
    "Secret": "bastion.security.secrets",
    "SecretError": "bastion.security.secrets",
    "SecretValue": "bastion.security.secrets",
    "SecurityStack": "bastion.security.stack",
    "tail": "bastion.security.audit_verify",
    "TOKEN_PATH": "bastion.security.token_service",
    "verify_chain": "bastion.security.audit_verify",
    "VerifyReport": "bastion.security.audit_verify",
    "watch": "bastion.security.liveness",
    "write_secret_file": "bastion.security.secrets",
}

__all__ = [
    "AUTH_REASONS",
    "DENIED_PREFIX",
    "JWKS_PATH",
    "KEY_PREFIX",
    "TOKEN_PATH",
    "ApiKeyError",
    "ApiKeyStore",
    "AuditFilters",
    "AuditPage",
    "AuditRow",
    "AuditSink",
    "ChainMonitor",
    "ChainStatus",
    "Check",
    "CredentialCheck",
    "DelegationError",
    "Delegations",
    "Denied",
    "Limit",
    "MemoryRateLimiter",
    "NoSharedStore",
    "OutcomeRecorder",
    "Pipeline",
    "PolicyError",
    "PolicyStore",
    "RateDecision",
    "RateLimitBackendError",
    "RateLimiter",
    "RevocationStoreError",
    "Secret",
    "SecretError",
    "SecretValue",
    "SecurityStack",
    "SecuritySummary",
    "TokenError",
    "VerifyReport",
    "build_api_key_store",
    "build_audit_writer",
    "build_security",
    "chain_names",
    "chain_status",
    "chain_status_for",
    "check_references",
    "correlation_ids",
    "database_ready",
    "describe_failures",
    "file_path",
    "generate_signing_keyset",
    "headers_for",
    "is_reference",
    "load_policy",
    "log_rejection",
    "parse_reference",
    "policy_store",
    "resolve",
    "revoke_shared",
    "search",
    "security_summary",
    "shared_rate_limiter",
    "tail",
    "valid_jti",
    "verify_chain",
    "watch",
    "write_secret_file",
]

if not TYPE_CHECKING:  # type checkers read the imports above, and check every name
    __getattr__ = lazy_attributes(__name__, _EXPORTS)
