"""Parsing `secret://PROVIDER/LOCATOR[#KEY]` references and picking a key out of a JSON secret."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bastion.security.secrets.value import SecretError

__all__ = ["PROVIDERS", "SCHEME", "Reference", "is_reference", "parse_reference", "select_key"]

SCHEME = "secret://"
PROVIDERS = ("env", "file", "aws", "vault")
# Providers whose locator may end in `#KEY` (a file path or variable name keeps its `#`).
_KEYED = frozenset({"aws", "vault"})


@dataclass(frozen=True, slots=True)
class Reference:
    """One parsed reference; `str()` gives back the reference text (it holds no value)."""

    raw: str
    provider: str
    locator: str
    key: str | None = None

    def __str__(self) -> str:
        return self.raw


def is_reference(value: str) -> bool:
    return value.startswith(SCHEME)


def parse_reference(ref: str) -> Reference:
    """Split a reference into provider, locator and optional key; refuse literals."""
    if not is_reference(ref):
        raise SecretError(
            "configuration holds a literal where a secret reference is expected: put the "
            "value in the environment, a file or a secret store and write secret://env/NAME, "
            "secret://file/PATH, secret://aws/ARN#KEY or secret://vault/PATH#KEY instead"
        )
    provider, _, locator = ref[len(SCHEME) :].partition("/")
    if provider not in PROVIDERS:
        raise SecretError(
            f"{ref}: unknown secret provider {provider!r} (supported: {', '.join(PROVIDERS)})"
        )
    key: str | None = None
    if provider in _KEYED and "#" in locator:
        locator, _, key = locator.rpartition("#")
        if not key:
            raise SecretError(f"{ref}: empty key after '#': write {ref}KEY or drop the '#'")
    if not locator:
        raise SecretError(f"{ref}: the reference names no {provider} secret")
    return Reference(ref, provider, locator, key)


def select_key(ref: Reference, data: object) -> str:
    """The value of `ref.key` in a secret holding a JSON object (or a mapping already)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            raise SecretError(
                f"{ref}: the secret is not a JSON object, so it has no key {ref.key!r}: "
                "drop '#KEY' to use the whole value"
            ) from None
    if not isinstance(data, dict):
        raise SecretError(f"{ref}: the secret is not a JSON object, so it has no key {ref.key!r}")
    if ref.key not in data:
        raise SecretError(f"{ref}: the secret has no key {ref.key!r}; its keys: {sorted(data)}")
    value = data[ref.key]
    if not isinstance(value, str):
        raise SecretError(f"{ref}: key {ref.key!r} does not hold a string")
    return value
