"""`SecretValue` (a string that hides itself) and `SecretError` (names a reference only)."""

from __future__ import annotations

import hmac

__all__ = ["SecretError", "SecretValue"]


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
        return isinstance(other, SecretValue) and hmac.compare_digest(
            other.get_bytes(), self.get_bytes()
        )

    def __hash__(self) -> int:
        return hash(self._value)
