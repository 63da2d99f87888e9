"""A fake Anthropic Messages server on a loopback port, for tests and demos.

    with fake_anthropic_server(reply="Hello there.", api_key="sk-ant-test") as fake:
        config = ModelConfig(provider="anthropic", base_url=fake.url, model="fake-model", ...)

It serves `POST /v1/messages`: a JSON message, or with `"stream": true` server-sent events
(`message_start`, `content_block_start`, `ping`, `content_block_delta`..., `content_block_stop`,
`message_delta`, `message_stop`). The script is a `FakeLLM`'s (`bastion.testing.fake_llm`):
the reply (by default the last user message echoed), the key it expects in `x-api-key` (401
otherwise, echoing the key it was given), a fault, a delay. A request without an
`anthropic-version` header gets 400, as from the real API. Errors have Anthropic's shape,
`{"type": "error", "error": {"type", "message"}}`; `Fault.STREAM_ERROR` sends an `error`
event (`overloaded_error`) after the first delta.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bastion.testing.fake_llm import FakeLLM, Fault, serve_fake

__all__ = ["FakeAnthropic", "fake_anthropic_server"]


@dataclass
class FakeAnthropic(FakeLLM):
    """The Messages server's script and what it has seen."""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])

    async def _messages(self, request: Request) -> Response:
        body = await self._record(request)
        if body is None:
            return _error(400, "invalid_request_error", "request body is not JSON")
        presented = request.headers.get("x-api-key", "")
        if self.api_key is not None and presented != self.api_key:
            return _error(401, "authentication_error", f"invalid x-api-key: {presented}")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        await self._wait()
        if self.fault is Fault.SERVER_ERROR:
            return _error(500, "api_error", "Internal server error")
        messages = [_plain(m) for m in body.get("messages", [])]
        text = self._reply_to(messages)
        if body.get("stream"):
            return StreamingResponse(self._events(text), media_type="text/event-stream")
        if self.fault is Fault.MALFORMED:
            return Response(b'{"content": [', media_type="application/json")
        return JSONResponse(self._message(text, messages))

    def _message(self, text: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": f"msg_{len(self.requests)}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": sum(len(m["content"]) for m in messages) // 4,
                "output_tokens": len(text) // 4,
            },
        }

    async def _events(self, text: str) -> AsyncIterator[bytes]:
        start = self._message("", [])
        yield _event("message_start", {"type": "message_start", "message": start})
        block = {"type": "text", "text": ""}
        yield _event("content_block_start", {"type": "content_block_start", "index": 0, **block})
        yield _event("ping", {"type": "ping"})
        step = max(1, self.chunk_chars)
        for at in range(0, len(text), step):
            delta = {"type": "text_delta", "text": text[at : at + step]}
            yield _event("content_block_delta", {"type": "content_block_delta", "delta": delta})
            if self.fault is Fault.MALFORMED:
                yield b"event: content_block_delta\ndata: {not json\n\n"
                return
            if self.fault is Fault.STREAM_ERROR:
                error = {"type": "overloaded_error", "message": "Overloaded"}
                yield _event("error", {"type": "error", "error": error})
                return
        yield _event("content_block_stop", {"type": "content_block_stop", "index": 0})
        stop = {"stop_reason": "end_turn", "stop_sequence": None}
        usage = {"output_tokens": len(text) // 4}
        yield _event("message_delta", {"type": "message_delta", "delta": stop, "usage": usage})
        yield _event("message_stop", {"type": "message_stop"})


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    """A wire message as `{role, content}` with text content (tool results' text joined)."""
    content = message.get("content", "")
    if isinstance(content, list):
        content = "".join(str(b.get("content", b.get("text", ""))) for b in content)
    return {"role": message.get("role"), "content": str(content)}


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _error(status: int, kind: str, message: str) -> JSONResponse:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status)


def fake_anthropic_server(**script: Any) -> AbstractContextManager[FakeAnthropic]:
    """Serve a `FakeAnthropic(**script)` on 127.0.0.1 and a free port until the block exits."""
    return serve_fake(FakeAnthropic(**script))
