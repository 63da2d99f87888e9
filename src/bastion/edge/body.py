"""Buffering a request body for inspection, up to a limit, and replaying it to the app.

`buffer_body` reads `http.request` messages until the body is complete or passes `limit`
(counting as it streams, so a body without `Content-Length` is cut off at the limit too).
`replay` then hands the app the very same bytes: the whole body in one message when it was
read completely, otherwise the buffered part followed by the rest of the stream, unread.
After the body, the app's further `receive()` calls go to the server (disconnect notices).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.types import Message, Receive


@dataclass(slots=True)
class BufferedBody:
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    ended: bool = False  # the last message of the body was read
    disconnected: bool = False  # the client went away before sending it all
    limit: int = 0

    @property
    def over(self) -> bool:
        """Longer than the limit (possibly without having been read to its end)."""
        return self.size > self.limit

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The `Content-Length` value; -1 when present but not a plain number."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


async def buffer_body(receive: Receive, limit: int) -> BufferedBody:
    """Read the body until it is complete or longer than `limit` bytes."""
    body = BufferedBody(limit=limit)
    while body.size <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            body.disconnected = True
            return body
        chunk = message.get("body", b"")
        if chunk:
            body.chunks.append(chunk)
            body.size += len(chunk)
        if not message.get("more_body", False):
            body.ended = True
            return body
    return body


def replay(body: BufferedBody, receive: Receive) -> Receive:
    """A `receive` that yields the buffered body first, then defers to `receive`."""
    pending: list[Message]
    if body.ended:
        pending = [{"type": "http.request", "body": body.data, "more_body": False}]
    else:
        pending = [{"type": "http.request", "body": c, "more_body": True} for c in body.chunks]

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
