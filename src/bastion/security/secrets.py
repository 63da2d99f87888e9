"""Secret references: configuration names a secret, this module fetches its value.

Supported now: `secret://env/NAME` and `secret://file/PATH` (relative to the config folder).
A plain value without the `secret://` scheme is refused, so a secret cannot be pasted into
`bastion.yaml` by accident. Values are wrapped in `SecretValue`, whose repr never shows them.
"""

from __future__ import annotations

import os
from pathlib import Path

SCHEME = "secret://"


class SecretError(Exception):
    """A reference cannot be resolved; the message names the reference, never a value."""


class SecretValue:
    """A secret string that does not show itself in repr(), str() or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def get_bytes(self) -> bytes:
        return self._value.encode("utf-8")

    def __repr__(self) -> str:
        return "SecretValue('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def is_reference(value: str) -> bool:
    return value.startswith(SCHEME)


def resolve(ref: str, base_dir: Path) -> SecretValue:
    """Resolve one reference. Raises SecretError with an actionable message."""
    if not is_reference(ref):
        raise SecretError(
            "configuration holds a literal where a secret reference is expected: "
            "use secret://env/NAME or secret://file/PATH"
        )
    kind, _, rest = ref[len(SCHEME) :].partition("/")
    if kind == "env":
        value = os.environ.get(rest)
        if value is None:
            raise SecretError(f"{ref}: environment variable {rest} is not set")
        return SecretValue(value)
    if kind == "file":
        path = Path(rest)
        if not path.is_absolute():
            path = base_dir / path
        try:
            return SecretValue(path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise SecretError(f"{ref}: cannot read {path}: {exc.strerror}") from None
    raise SecretError(f"{ref}: unknown secret provider {kind!r} (supported: env, file)")


def write_secret_file(path: Path, value: str) -> None:
    """Create a secret file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
