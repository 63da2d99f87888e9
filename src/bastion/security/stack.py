"""Builds one agent's security stack from settings: the stages, in order, and what they need.

authenticate (API keys, JWT, built-in token service) -> delegation (a call on someone's
behalf, `bastion.security.delegation`) -> authorize (RBAC) -> rate limit, wrapped by the audit
writer. Tokens of the built-in token service are checked against the API key they were
exchanged for; `credentials` re-checks long-lived connections.

The API-key pepper and the token-service signing keys are held as `Secret` handles: resolved
at start (a missing secret stops the start) and fetched again after `secrets.ttl_seconds`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from starlette.routing import BaseRoute

from bastion.config import Settings
from bastion.core.context import Identity
from bastion.observability.logging import audit_logger
from bastion.security.apikeys import ApiKeyStore, PepperRing
from bastion.security.audit import AuditWriter, audit_chain
from bastion.security.audit_process import AuditProcessWriter
from bastion.security.authn import make_authenticate_stage
from bastion.security.delegation import Delegations, make_delegation_stage
from bastion.security.jwt_verify import JwtVerifier
from bastion.security.liveness import CredentialCheck
from bastion.security.ratelimit import RateLimiter, make_rate_limit_stage
from bastion.security.ratelimit_backends import build_limiter
from bastion.security.rbac import PolicyStore, make_authorize_stage, policy_store
from bastion.security.revocation import build_denylist
from bastion.security.secrets import Secret, configure, resolve
from bastion.security.stages import Pipeline
from bastion.security.token_service import SigningKeys, TokenService
from bastion.storage import ping, shared_engine


@dataclass
class SecurityStack:
    pipeline: Pipeline
    api_keys: ApiKeyStore
    jwt: JwtVerifier
    token_service: TokenService
    policy: PolicyStore
    limiter: RateLimiter
    audit: AuditWriter | AuditProcessWriter
    credentials: CredentialCheck
    delegations: Delegations
    routes: list[BaseRoute] = field(default_factory=list)

    def acting_for(self, identity: Identity) -> AbstractContextManager[None]:
        """Within the block, this agent's calls carry a delegation of `identity`'s principal
        (see `bastion.security.delegation`)."""
        return self.delegations.acting_for(identity)

    async def start(self) -> None:
        await self.audit.start()

    async def close(self) -> None:
        await self.audit.close()
        await self.limiter.aclose()
        await self.jwt.aclose()


def build_api_key_store(settings: Settings) -> ApiKeyStore:
    auth = settings.auth

    def handle(ref: str) -> Secret:
        return Secret(ref, settings.base_dir, settings.secrets)

    peppers = PepperRing(
        handle(auth.pepper) if auth.pepper else None,
        auth.pepper_version,
        {v: handle(ref) for v, ref in auth.previous_peppers.items()},
    )
    return ApiKeyStore(
        shared_engine(settings.database_url()),
        peppers=peppers,
        cache_seconds=auth.api_key_cache_seconds,
    )


def build_audit_writer(agent: str, settings: Settings) -> AuditWriter | AuditProcessWriter:
    """The agent's audit writer, in a child process unless `audit.writer: in_process`."""
    chain = audit_chain(agent, settings.audit, settings.server.replica_id)
    key = resolve(settings.audit.hmac_key, settings.base_dir, settings.secrets).get_bytes()
    checkpoint_dir = settings.path(settings.audit.checkpoint_dir)
    if settings.audit.writer == "process":
        return AuditProcessWriter(
            settings.database_url(),
            chain=chain,
            key=key,
            settings=settings.audit,
            checkpoint_dir=checkpoint_dir,
            log_level=settings.logging.level,
        )
    return AuditWriter(
        shared_engine(settings.database_url()),
        chain=chain,
        key=key,
        settings=settings.audit,
        checkpoint_dir=checkpoint_dir,
        logger=audit_logger(),
    )


def build_security(
    agent: str, settings: Settings, *, anonymous_principal: str | None = None
) -> SecurityStack:
    base = settings.base_dir
    # Later resolutions in this process (agent credentials) use the configured providers.
    configure(settings.secrets)
    api_keys = build_api_key_store(settings)
    signing = SigningKeys(settings.auth.token_service, base, secrets_settings=settings.secrets)
    token_service = TokenService(
        settings.auth.token_service, signing, authenticate_api_key=api_keys.authenticate
    )
    jwt = JwtVerifier(
        settings.auth.jwt,
        local=token_service.local_trust(api_keys.refusal),
        denylist=build_denylist(settings),
    )
    delegations = Delegations(
        settings.auth.token_service, signing, api_keys.refusal, jwt_settings=settings.auth.jwt
    )
    policy = policy_store(settings)
    limiter = build_limiter(settings.rate_limit)
    audit = build_audit_writer(agent, settings)
    pipeline = Pipeline(
        request_stages=[
            make_authenticate_stage(api_keys, jwt, anonymous_principal=anonymous_principal),
            make_delegation_stage(delegations),
        ],
        call_stages=[
            make_authorize_stage(policy),
            make_rate_limit_stage(settings.rate_limit, limiter),
        ],
    )
    return SecurityStack(
        pipeline=pipeline,
        api_keys=api_keys,
        jwt=jwt,
        token_service=token_service,
        policy=policy,
        limiter=limiter,
        audit=audit,
        credentials=CredentialCheck(api_keys),
        delegations=delegations,
        routes=list(token_service.routes()),
    )


async def database_ready(settings: Settings) -> None:
    import asyncio

    await asyncio.to_thread(ping, shared_engine(settings.database_url()))
