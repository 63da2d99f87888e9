"""`ModelConfig`: which model to call through which provider, where, with which key, which
egress policy its HTTP client enforces, and how the output stream is cut into windows for the
guard."""

from __future__ import annotations

from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from bastion.egress import AddressClass, EgressPolicy, classify_address, parse_ip
from bastion.egress.policy import target_of
from bastion.security import is_reference

__all__ = ["ModelConfig"]


class ModelConfig(BaseModel):
    """One model endpoint. The key never appears in a repr, a log line or an error message.

    `provider` names the wire protocol (`bastion.llm.providers()`):

    - `openai` (default): OpenAI-compatible chat completions; the key is sent as
      `Authorization: Bearer`.
    - `anthropic`: Anthropic Messages; the key is sent as `x-api-key`, with the
      `anthropic-version` header from `anthropic_version`.
    - `bedrock`: Amazon Bedrock Converse / ConverseStream through boto3. `base_url` is the
      `bedrock-runtime` endpoint (`https://bedrock-runtime.us-east-1.amazonaws.com`),
      `aws_region` its region (read from such an endpoint when not given). A key is a Bedrock
      API key, sent as `Authorization: Bearer`; without one, requests are signed with
      boto3's usual credentials (environment, profile, role). `guardrail_identifier` and
      `guardrail_version` (both or neither) make Bedrock apply that Bedrock guardrail as
      well; the project's own guard runs on every call regardless.

    `base_url` is the server's root (`http://127.0.0.1:8000`); a trailing `/v1` is accepted too
    (`https://api.openai.com/v1`), the provider adds the API path itself.

    A guarded stream is scanned in windows: a window ends at the first sentence end after
    `stream_window_min_chars` characters, or at a word boundary before
    `stream_window_max_chars` when no sentence ends in time.

    The provider's HTTP goes through the egress perimeter (`bastion.egress`) as a model client.
    `egress` is its policy; by default (`egress_policy()`) it allows exactly `base_url`'s host
    and port as a model host, and allows a private address only when `base_url` is loopback
    (a local model server). A model server on a private network needs an explicit policy, e.g.
    `egress: {model_hosts: ["10.0.0.5:8000"], allow_private: ["10.0.0.5"]}`.

    The key comes either as `api_key` (a value the program holds) or, from configuration, as
    `api_key_ref`: a secret reference (`secret://env/NAME`, `secret://file/PATH` relative to
    `secrets_base_dir`, `secret://aws/ARN#KEY`, `secret://vault/PATH#KEY`) resolved through
    `bastion.security.secrets` and re-read after its TTL, so a rotated key is used without a
    restart. Search-API keys of the research agents take the same path.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = "openai"
    base_url: str
    model: str = Field(min_length=1)
    api_key: SecretStr | None = None
    api_key_ref: str | None = None
    secrets_base_dir: Path = Field(default_factory=Path.cwd)
    timeout: float = Field(default=60.0, gt=0)
    max_tokens: int = Field(default=1024, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    stream_window_min_chars: int = Field(default=64, ge=1)
    stream_window_max_chars: int = Field(default=512, ge=1)
    egress: EgressPolicy | None = None
    anthropic_version: str = Field(default="2023-06-01", min_length=1)
    aws_region: str | None = None
    guardrail_identifier: str | None = Field(default=None, min_length=1)
    guardrail_version: str | None = Field(default=None, min_length=1)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL with a host, got {value!r}")
        return value

    @field_validator("api_key_ref")
    @classmethod
    def _a_reference(cls, value: str | None) -> str | None:
        if value is not None and not is_reference(value):
            raise ValueError(
                "api_key_ref must be a secret reference (secret://env/NAME, secret://file/PATH,"
                " secret://aws/ARN#KEY or secret://vault/PATH#KEY), never the key itself"
            )
        return value

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if self.api_key is not None and self.api_key_ref is not None:
            raise ValueError("give api_key or api_key_ref, not both")
        return self

    @model_validator(mode="after")
    def _window_bounds(self) -> Self:
        if self.stream_window_max_chars < self.stream_window_min_chars:
            raise ValueError("stream_window_max_chars must be >= stream_window_min_chars")
        return self

    @model_validator(mode="after")
    def _bedrock_guardrail(self) -> Self:
        pair = (self.guardrail_identifier, self.guardrail_version)
        if pair == (None, None):
            return self
        if None in pair:
            raise ValueError("give guardrail_identifier and guardrail_version together")
        if self.provider != "bedrock":
            raise ValueError(
                f"guardrail_identifier applies to provider bedrock only, not {self.provider!r}"
            )
        return self

    def egress_policy(self) -> EgressPolicy:
        """The egress policy of the provider's HTTP client: `egress`, or the default above."""
        if self.egress is not None:
            return self.egress
        target = target_of(self.base_url)
        return EgressPolicy(
            model_hosts=(target.origin,),
            allow_private=(target.host,) if _is_loopback(target.host) else (),
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = parse_ip(host)
    return address is not None and classify_address(address) is AddressClass.LOOPBACK
