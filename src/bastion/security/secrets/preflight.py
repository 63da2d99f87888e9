"""Every secret reference a configuration holds, resolved once: `bastion config check` lists
the results, `bastion up` refuses to start anything unless all of them resolve.

`check_references` walks the loaded settings and resolves each `secret://` string through its
provider; a literal in a field that holds a credential is reported too (its value is not
shown). The Vault token reference counts only when some reference reads from Vault. Results
name the setting and the reference, never a value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bastion.config import Settings
from bastion.security.secrets.reference import is_reference
from bastion.security.secrets.resolver import resolve
from bastion.security.secrets.value import SecretError

__all__ = ["Check", "check_references", "describe_failures"]

# Fields that hold a credential: a literal there is a mistake, whatever it looks like.
_SECRET_FIELDS = frozenset(
    {"pepper", "previous_peppers", "signing_keys", "hmac_key", "api_key", "token", "password"}
)


@dataclass(frozen=True, slots=True)
class Check:
    key: str
    reference: str
    ok: bool
    problem: str | None = None


def _is_secret_field(path: tuple[str, ...]) -> bool:
    return any(part in _SECRET_FIELDS or part.endswith("_api_key") for part in path)


def _strings(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*path, str(k)))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, str(i)))


def check_references(settings: Settings) -> list[Check]:
    """Resolve every `secret://` string in the settings; flag literals in credential fields."""
    checks: list[Check] = []
    found = list(_strings(settings.model_dump(mode="json", exclude={"base_dir"})))
    uses_vault = any(value.startswith("secret://vault/") for _, value in found)
    for path, value in found:
        key = ".".join(path)
        if key == "secrets.vault.token" and not uses_vault:
            continue  # the Vault token matters only when something is read from Vault
        if not is_reference(value):
            if _is_secret_field(path) and value:
                checks.append(
                    Check(key, "(literal)", False, "holds a literal: use a secret:// reference")
                )
            continue
        try:
            resolve(value, settings.base_dir, settings.secrets)
        except SecretError as exc:
            checks.append(Check(key, value, False, str(exc)))
        else:
            checks.append(Check(key, value, True))
    return checks


def describe_failures(failures: Sequence[Check]) -> str:
    """One line for failed checks: the first in full (setting, reference, problem), then the
    settings of the others."""
    first = failures[0]
    problem = first.problem or "cannot be resolved"
    # A provider's message starts with the reference already: name it once.
    problem = problem.removeprefix(f"{first.reference}: ")
    line = f"{first.key} ({first.reference}): {problem}"
    if len(failures) > 1:
        others = ", ".join(c.key for c in failures[1:])
        line += f" (and {len(failures) - 1} more: {others}; `bastion config check` lists them)"
    return line
