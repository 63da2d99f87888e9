"""A fake OpenAI-compatible model server on a loopback port, for tests and demos.

    with fake_llm_server(reply="Hello there.", api_key="sk-test") as fake:
        config = ModelConfig(base_url=fake.url, model="fake-model", api_key="sk-test")
        ...  # call it through bastion.llm.build_client
        assert fake.requests[-1].messages[-1]["content"] == "..."

It serves `POST /v1/chat/completions` under uvicorn in a thread: a JSON chat completion, or with
`"stream": true` server-sent events (`data: {chunk}` lines, then `data: [DONE]`). The script is
a `FakeLLM`'s fields, which a test may change between calls: the reply (a fixed text, or a
function of the request's messages; by default the last user message echoed back), the key it
expects as `Authorization: Bearer` (401 otherwise, echoing the key it was given, as some hosted
APIs do), a fault to simulate, and a delay before answering. Every request that reaches the
endpoint is recorded, whatever the answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bastion.testing.live_server import serve_in_thread

__all__ = ["FakeLLM", "Fault", "RecordedRequest", "echo_last_user", "fake_llm_server", "serve_fake"]

AnyFake = TypeVar("AnyFake", bound="FakeLLM")
Reply = str | Callable[[Sequence[dict[str, Any]]], str]


class Fault(StrEnum):
    SERVER_ERROR = "server_error"  # HTTP 500 with an OpenAI-style error body
    MALFORMED = "malformed"  # HTTP 200 whose body (or the chunk after the first) is not JSON
    STREAM_ERROR = "stream_error"  # an error event after the first chunk (Anthropic, Bedrock)


def echo_last_user(messages: Sequence[dict[str, Any]]) -> str:
    """The content of the last user message, or "" when there is none."""
    users = [m for m in messages if m.get("role") == "user"]
    return str(users[-1].get("content", "")) if users else ""


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))


@dataclass
class FakeLLM:
    """The server's script and what it has seen; `url` is set once it is serving."""

    reply: Reply = echo_last_user
    api_key: str | None = None
    fault: Fault | None = None
    delay: float = 0.0  # seconds to wait before answering
    chunk_chars: int = 4  # characters per streamed chunk
    model: str = "fake-model"
    url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    _closing: bool = False

    def reset(self, **script: Any) -> None:
        """Back to the default script with `script` applied, and no recorded requests; for a
        server shared by several tests."""
        default = FakeLLM()
        for name in ("reply", "api_key", "fault", "delay", "chunk_chars", "model"):
            setattr(self, name, script.pop(name, getattr(default, name)))
        if script:
            raise TypeError(f"unknown script fields: {sorted(script)}")
        self.requests.clear()

    async def _record(self, request: Request) -> Any:
        """The request's JSON body, recorded with its path and headers; `None` when the body is
        not JSON (then nothing is recorded)."""
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None
        self.requests.append(RecordedRequest(request.url.path, dict(request.headers), body))
        return body

    def _reply_to(self, messages: Sequence[dict[str, Any]]) -> str:
        return self.reply if isinstance(self.reply, str) else self.reply(messages)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    async def _chat(self, request: Request) -> Response:
        body = await self._record(request)
        if body is None:
            return _error(400, "request body is not JSON", "invalid_request_error")
        presented = request.headers.get("authorization", "")
        if self.api_key is not None and presented != f"Bearer {self.api_key}":
            key = presented.removeprefix("Bearer ")
            return _error(401, f"Incorrect API key provided: {key}", "invalid_api_key")
        await self._wait()
        if self.fault is Fault.SERVER_ERROR:
            return _error(500, "The model server had an error while processing your request.")
        messages = body.get("messages", [])
        text = self._reply_to(messages)
        if body.get("stream"):
            return StreamingResponse(self._events(text), media_type="text/event-stream")
        if self.fault is Fault.MALFORMED:
            return Response(b'{"choices": [', media_type="application/json")
        return JSONResponse(self._completion(text, messages))

    async def _wait(self) -> None:
        """Sleep `delay` seconds, or less if the server is shutting down."""
        deadline = time.monotonic() + self.delay
        while not self._closing and time.monotonic() < deadline:
            await asyncio.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    def _completion(self, text: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        prompt_chars = sum(len(str(m.get("content", ""))) for m in messages)
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_chars // 4,
                "completion_tokens": len(text) // 4,
            },
        }

    async def _events(self, text: str) -> AsyncIterator[bytes]:
        step = max(1, self.chunk_chars)
        pieces = [text[i : i + step] for i in range(0, len(text), step)] or [""]
        yield self._chunk({"role": "assistant", "content": ""}, None)
        for piece in pieces:
            yield self._chunk({"content": piece}, None)
            if self.fault is Fault.MALFORMED:
                yield b"data: {not json\n\n"
                return
        yield self._chunk({}, "stop")
        yield b"data: [DONE]\n\n"

    def _chunk(self, delta: dict[str, str], finish_reason: str | None) -> bytes:
        chunk = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion.chunk",
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _error(status: int, message: str, kind: str = "server_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def fake_llm_server(**script: Any) -> AbstractContextManager[FakeLLM]:
    """Serve a `FakeLLM(**script)` on 127.0.0.1 and a free port until the block exits."""
    return serve_fake(FakeLLM(**script))


@contextmanager
def serve_fake(fake: AnyFake) -> Iterator[AnyFake]:
    """Serve `fake`'s app on 127.0.0.1 and a free port until the block exits; `fake.url` says
    where."""
    with serve_in_thread(fake.app()) as server:
        fake.url = server.url
        try:
            yield fake
        finally:
            fake._closing = True
