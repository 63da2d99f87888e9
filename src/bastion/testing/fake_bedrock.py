"""A fake Amazon Bedrock runtime on a loopback port, speaking the Converse wire format, for
tests and demos.

    with fake_bedrock_server(reply="Hello there.") as fake:
        config = ModelConfig(provider="bedrock", base_url=fake.url, model="fake-model",
                             aws_region="us-east-1")

It serves `POST /model/{modelId}/converse` (a JSON Converse response) and
`POST /model/{modelId}/converse-stream` (an `application/vnd.amazon.eventstream` body:
`messageStart`, `contentBlockDelta`..., `contentBlockStop`, `messageStop`, `metadata` frames,
each framed by `event_frame`: prelude, headers, JSON payload, CRC32s). The script is a
`FakeLLM`'s (`bastion.testing.fake_llm`): the reply (by default the last user turn's text
echoed), the key it expects as `Authorization: Bearer` (403 `AccessDeniedException`
otherwise; without one it accepts any request, signed or not), a fault, a delay. A model id
other than `model` gets 400 `ValidationException`. Errors have the AWS JSON shape: the code in
`x-amzn-ErrorType`, `{"message": ...}` in the body; `Fault.STREAM_ERROR` sends a
`modelStreamErrorException` frame after the first delta.
"""

from __future__ import annotations

import struct
import zlib
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

__all__ = ["FakeBedrock", "event_frame", "fake_bedrock_server"]

EVENT_STREAM = "application/vnd.amazon.eventstream"
_STRING = 7  # the event-stream header value type of a UTF-8 string


@dataclass
class FakeBedrock(FakeLLM):
    """The Converse server's script and what it has seen."""

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/model/{model_id:path}/converse", self._converse, methods=["POST"]),
                Route("/model/{model_id:path}/converse-stream", self._stream, methods=["POST"]),
            ]
        )

    async def _converse(self, request: Request) -> Response:
        refused, text = await self._answer(request)
        if refused is not None:
            return refused
        if self.fault is Fault.MALFORMED:
            return Response(b'{"output": {', media_type="application/json")
        return JSONResponse(
            {
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": "end_turn",
                "usage": _usage(text),
                "metrics": {"latencyMs": 1},
            }
        )

    async def _stream(self, request: Request) -> Response:
        refused, text = await self._answer(request)
        if refused is not None:
            return refused
        return StreamingResponse(self._events(text), media_type=EVENT_STREAM)

    async def _answer(self, request: Request) -> tuple[Response | None, str]:
        """An error response for the request, or None and the reply's text."""
        body = await self._record(request)
        if body is None:
            return _error(400, "SerializationException", "request body is not JSON"), ""
        presented = request.headers.get("authorization", "")
        if self.api_key is not None and presented != f"Bearer {self.api_key}":
            return _error(403, "AccessDeniedException", "Authentication failed"), ""
        if request.path_params["model_id"] != self.model:
            message = "The provided model identifier is invalid."
            return _error(400, "ValidationException", message), ""
        await self._wait()
        if self.fault is Fault.SERVER_ERROR:
            return _error(500, "InternalServerException", "The server had an error."), ""
        messages = [_plain(m) for m in body.get("messages", [])]
        return None, self._reply_to(messages)

    async def _events(self, text: str) -> AsyncIterator[bytes]:
        yield _event("messageStart", {"role": "assistant"})
        step = max(1, self.chunk_chars)
        for at in range(0, len(text), step):
            delta = {"contentBlockIndex": 0, "delta": {"text": text[at : at + step]}}
            yield _event("contentBlockDelta", delta)
            if self.fault is Fault.STREAM_ERROR:
                headers = {
                    ":message-type": "exception",
                    ":exception-type": "modelStreamErrorException",
                    ":content-type": "application/json",
                }
                payload = {"message": "The model stopped unexpectedly.", "originalStatusCode": 500}
                yield event_frame(headers, orjson.dumps(payload))
                return
        yield _event("contentBlockStop", {"contentBlockIndex": 0})
        yield _event("messageStop", {"stopReason": "end_turn"})
        yield _event("metadata", {"usage": _usage(text), "metrics": {"latencyMs": 1}})


def event_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: total and headers length with the prelude's CRC32, the
    headers (string values), the payload, and the CRC32 of all that."""
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack(">B", len(raw_name))
        + raw_name
        + struct.pack(">BH", _STRING, len(raw_value))
        + raw_value
    )


def _event(kind: str, body: dict[str, Any]) -> bytes:
    headers = {
        ":message-type": "event",
        ":event-type": kind,
        ":content-type": "application/json",
    }
    return event_frame(headers, orjson.dumps(body))


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    """A Converse message as `{role, content}` with its blocks' text joined."""
    texts = []
    for block in message.get("content", []):
        if "text" in block:
            texts.append(str(block["text"]))
        for part in block.get("toolResult", {}).get("content", []):
            texts.append(str(part.get("text", "")))
    return {"role": message.get("role"), "content": "".join(texts)}


def _usage(text: str) -> dict[str, int]:
    return {"inputTokens": 1, "outputTokens": len(text) // 4, "totalTokens": 1 + len(text) // 4}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"message": message}, status_code=status, headers={"x-amzn-ErrorType": code}
    )


def fake_bedrock_server(**script: Any) -> AbstractContextManager[FakeBedrock]:
    """Serve a `FakeBedrock(**script)` on 127.0.0.1 and a free port until the block exits."""
    return serve_fake(FakeBedrock(**script))
