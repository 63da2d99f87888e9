"""Cutting a model's output stream into windows that the guard scans before anything is
yielded.

A window ends at the first sentence end (`.`, `!`, `?` followed by white space, or a line
break) once it holds at least `min_chars` characters, so that the guard sees whole sentences
and short ones are scanned together. When no sentence ends within `max_chars`, the window is
cut at the last white space before `max_chars` (or at `max_chars` inside one very long
token), which bounds both the memory held back and the delay before the caller sees text.
"""

from __future__ import annotations

import re

__all__ = ["OutputWindows"]

_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f]+\s|\n")
_SPACE = re.compile(r"\s")


class OutputWindows:
    """Accumulates streamed text; `feed` returns the windows completed so far, `flush` the
    rest once the stream has ended."""

    def __init__(self, min_chars: int, max_chars: int) -> None:
        if not 1 <= min_chars <= max_chars:
            raise ValueError("need 1 <= min_chars <= max_chars")
        self._min = min_chars
        self._max = max_chars
        self._buffer = ""

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        windows: list[str] = []
        while (cut := self._cut()) is not None:
            windows.append(self._buffer[:cut])
            self._buffer = self._buffer[cut:]
        return windows

    def flush(self) -> str:
        rest, self._buffer = self._buffer, ""
        return rest

    def _cut(self) -> int | None:
        """Where the next complete window ends, or None if it is not complete yet."""
        if len(self._buffer) < self._min:
            return None
        for match in _SENTENCE_END.finditer(self._buffer, 0, self._max):
            if match.end() >= self._min:
                return match.end()
        if len(self._buffer) < self._max:
            return None
        spaces = [m.end() for m in _SPACE.finditer(self._buffer, 0, self._max)]
        return spaces[-1] if spaces else self._max
