"""`resolve(ref, base_dir)`: one reference to one `SecretValue`, through its provider.

Every value handed out is registered with the log redactor, so that it cannot reach a log
line even when logged by mistake. The provider settings (`secrets:` in the configuration)
are passed explicitly or set once per process with `configure`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from bastion.config import SecretsSettings
from bastion.observability.redact import remember
from bastion.security.secrets.aws import fetch_aws
from bastion.security.secrets.local import fetch_env, fetch_file
from bastion.security.secrets.reference import parse_reference
from bastion.security.secrets.value import SecretError, SecretValue
from bastion.security.secrets.vault import fetch_vault

__all__ = ["configure", "current_settings", "resolve", "resolve_secret_str"]

_process: dict[str, SecretsSettings] = {}


def configure(settings: SecretsSettings) -> None:
    """The provider settings used when a caller passes none (set at start from the config)."""
    _process["settings"] = settings


def current_settings() -> SecretsSettings:
    return _process.get("settings") or SecretsSettings()


def resolve(ref: str, base_dir: Path, settings: SecretsSettings | None = None) -> SecretValue:
    """Resolve one reference. Raises SecretError with an actionable message (no value)."""
    parsed = parse_reference(ref)
    settings = settings or current_settings()
    if parsed.provider == "env":
        value = fetch_env(parsed)
    elif parsed.provider == "file":
        value = fetch_file(parsed, base_dir)
    elif parsed.provider == "aws":
        value = fetch_aws(parsed, settings.aws)
    else:
        token_ref = settings.vault.token
        if parse_reference(token_ref).provider not in ("env", "file"):
            raise SecretError(f"{ref}: the Vault token must come from secret://env/ or file/")

        def token() -> SecretValue:
            return resolve(token_ref, base_dir, settings)

        value = fetch_vault(parsed, settings.vault, token)
    remember(value)
    return SecretValue(value)


def resolve_secret_str(
    ref: str, base_dir: Path, settings: SecretsSettings | None = None
) -> SecretStr:
    """A reference resolved into pydantic's `SecretStr`, for models that hold one.

    Model endpoints (`bastion.llm.ModelConfig.api_key`) and search-API keys take their key
    this way: configuration names the reference, this resolver fetches and registers it.
    """
    return SecretStr(resolve(ref, base_dir, settings).get())
