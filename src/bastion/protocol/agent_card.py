"""The A2A v1.0 agent card served at `/.well-known/agent-card.json`.

The card declares one JSON-RPC interface (protocol version 1.0), the capabilities the runtime
really has (streaming yes; push notifications and the extended card no), the agent's skills, and
the two ways to authenticate: an `X-API-Key` header or an HTTP Bearer JWT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from bastion.protocol.a2a import PROTOCOL_VERSION, A2AModel

JSONRPC_BINDING = "JSONRPC"
API_KEY_HEADER = "X-API-Key"
API_KEY_SCHEME = "apiKey"
BEARER_SCHEME = "bearer"
DEFAULT_MODES = ("text/plain", "application/json")
PROVIDER_ORGANIZATION = "Bastion"

__all__ = [
    "API_KEY_HEADER",
    "JSONRPC_BINDING",
    "PROTOCOL_VERSION",
    "AgentCapabilities",
    "AgentCard",
    "AgentExtension",
    "AgentInterface",
    "AgentProvider",
    "AgentSkill",
    "build_agent_card",
]


class AgentInterface(A2AModel):
    url: str = Field(min_length=1)
    protocol_binding: str = Field(min_length=1)
    protocol_version: str = Field(min_length=1)
    tenant: str | None = None


class AgentProvider(A2AModel):
    organization: str = Field(min_length=1)
    url: str = Field(min_length=1)


class AgentExtension(A2AModel):
    uri: str = Field(min_length=1)
    description: str | None = None
    required: bool | None = None
    params: dict[str, Any] | None = None


class AgentCapabilities(A2AModel):
    streaming: bool | None = None
    push_notifications: bool | None = None
    extended_agent_card: bool | None = None
    extensions: list[AgentExtension] | None = None


class AgentSkill(A2AModel):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    tags: list[str] = Field(min_length=1)
    examples: list[str] | None = None
    input_modes: list[str] | None = None
    output_modes: list[str] | None = None


class ApiKeySecurityScheme(A2AModel):
    location: str
    name: str
    description: str | None = None


class HttpAuthSecurityScheme(A2AModel):
    scheme: str
    bearer_format: str | None = None
    description: str | None = None


class SecurityScheme(A2AModel):
    api_key_security_scheme: ApiKeySecurityScheme | None = None
    http_auth_security_scheme: HttpAuthSecurityScheme | None = None


class StringList(A2AModel):
    values: list[str] = Field(default_factory=list, alias="list")


class SecurityRequirement(A2AModel):
    schemes: dict[str, StringList]


class AgentCard(A2AModel):
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    version: str = Field(min_length=1)
    supported_interfaces: list[AgentInterface] = Field(min_length=1)
    capabilities: AgentCapabilities
    default_input_modes: list[str] = Field(min_length=1)
    default_output_modes: list[str] = Field(min_length=1)
    skills: list[AgentSkill] = Field(min_length=1)
    provider: AgentProvider | None = None
    documentation_url: str | None = None
    icon_url: str | None = None
    security_schemes: dict[str, SecurityScheme] | None = None
    security_requirements: list[SecurityRequirement] | None = None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else url


def security_schemes() -> dict[str, SecurityScheme]:
    """The schemes every Bastion agent accepts: an API key header or a Bearer JWT."""
    return {
        API_KEY_SCHEME: SecurityScheme(
            api_key_security_scheme=ApiKeySecurityScheme(
                location="header",
                name=API_KEY_HEADER,
                description="Bastion API key (create one with `bastion keys create`).",
            )
        ),
        BEARER_SCHEME: SecurityScheme(
            http_auth_security_scheme=HttpAuthSecurityScheme(
                scheme="Bearer",
                bearer_format="JWT",
                description="JWT from a trusted issuer or from the agent's token service.",
            )
        ),
    }


def build_agent_card(
    *,
    name: str,
    description: str,
    version: str,
    url: str,
    skills: Sequence[dict[str, Any]],
    streaming: bool = True,
    push_notifications: bool = False,
    extended_agent_card: bool = False,
    input_modes: Sequence[str] = DEFAULT_MODES,
    output_modes: Sequence[str] = DEFAULT_MODES,
    provider_organization: str = PROVIDER_ORGANIZATION,
    provider_url: str | None = None,
    documentation_url: str | None = None,
) -> dict[str, Any]:
    """The agent card as a JSON-ready dict (camelCase, unset fields omitted).

    `url` is the JSON-RPC endpoint; `skills` are AgentSkill objects in camelCase or snake_case
    (each needs `id`, `name`, `description` and at least one tag). Either security scheme
    satisfies the requirements (the list is an OR of alternatives).
    """
    card = AgentCard(
        name=name,
        description=description,
        version=version,
        supported_interfaces=[
            AgentInterface(
                url=url, protocol_binding=JSONRPC_BINDING, protocol_version=PROTOCOL_VERSION
            )
        ],
        provider=AgentProvider(
            organization=provider_organization, url=provider_url or _origin(url)
        ),
        documentation_url=documentation_url,
        capabilities=AgentCapabilities(
            streaming=streaming,
            push_notifications=push_notifications,
            extended_agent_card=extended_agent_card,
        ),
        default_input_modes=list(input_modes),
        default_output_modes=list(output_modes),
        skills=[AgentSkill.model_validate(skill) for skill in skills],
        security_schemes=security_schemes(),
        security_requirements=[
            SecurityRequirement(schemes={API_KEY_SCHEME: StringList()}),
            SecurityRequirement(schemes={BEARER_SCHEME: StringList()}),
        ],
    )
    return card.dump()
