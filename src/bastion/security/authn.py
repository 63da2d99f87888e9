"""The authentication stage: `X-API-Key` or `Authorization: Bearer <JWT>`, nothing else.

Exactly one credential must be present. The outcome is an `Identity` on the request context,
or `Denied` (HTTP 401 with `WWW-Authenticate`) whose reason goes to the audit trail only.
An explicit anonymous principal exists for one purpose, the conformance profile, and the
server refuses to run it anywhere but loopback.
"""

from __future__ import annotations

from bastion.core.context import Identity, RequestContext
from bastion.security.apikeys import ApiKeyStore
from bastion.security.jwt_verify import JwtVerifier, TokenError
from bastion.security.stages import RequestStage, unauthenticated


def make_authenticate_stage(
    api_keys: ApiKeyStore | None,
    jwt: JwtVerifier | None,
    *,
    anonymous_principal: str | None = None,
) -> RequestStage:
    async def authenticate(req: RequestContext) -> None:
        api_key = req.headers.get("x-api-key")
        authorization = req.headers.get("authorization")
        if api_key is not None and authorization is not None:
            raise unauthenticated("both X-API-Key and Authorization sent")
        if api_key is not None:
            if api_keys is None:
                raise unauthenticated("api keys are not accepted here")
            identity, reason = await api_keys.verify(api_key.strip())
            if identity is None:
                raise unauthenticated(reason)
            req.identity = identity
            return
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise unauthenticated("Authorization is not a Bearer token")
            if jwt is None:
                raise unauthenticated("bearer tokens are not accepted here")
            try:
                req.identity = await jwt.verify(token.strip())
            except TokenError as exc:
                raise unauthenticated(f"bearer token rejected: {exc.reason}") from None
            return
        if anonymous_principal is not None:
            req.identity = Identity(principal=anonymous_principal, auth_method="none")
            return
        raise unauthenticated("no credential")

    return authenticate
