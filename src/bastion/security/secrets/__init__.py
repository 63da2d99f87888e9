"""Secret references: configuration names a secret, this package fetches its value.

References: `secret://env/NAME`, `secret://file/PATH` (relative to the config folder),
`secret://aws/ARN[#KEY]` (AWS Secrets Manager) and `secret://vault/PATH#KEY` (Vault KV v2).
A plain value without the `secret://` scheme is refused, so a secret cannot be pasted into
`bastion.yaml` by accident. Values are wrapped in `SecretValue`, whose repr never shows them,
and registered with the log redactor. `Secret` is a handle that re-resolves after a TTL, so a
rotated secret is picked up without a restart.

Modules: `value` (SecretValue, SecretError), `reference` (parsing), `local` (env, file),
`aws`, `vault` (providers), `resolver` (resolve), `handle` (Secret), `preflight` (every
reference in a configuration, for `bastion config check` and `bastion up`).
"""

from __future__ import annotations

from bastion.security.secrets.handle import Secret
from bastion.security.secrets.local import write_secret_file
from bastion.security.secrets.reference import (
    SCHEME,
    Reference,
    is_reference,
    parse_reference,
)
from bastion.security.secrets.resolver import (
    configure,
    current_settings,
    resolve,
    resolve_secret_str,
)
from bastion.security.secrets.value import SecretError, SecretValue

__all__ = [
    "SCHEME",
    "Reference",
    "Secret",
    "SecretError",
    "SecretValue",
    "configure",
    "current_settings",
    "is_reference",
    "parse_reference",
    "resolve",
    "resolve_secret_str",
    "write_secret_file",
]
