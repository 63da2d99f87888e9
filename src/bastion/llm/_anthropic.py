"""The Anthropic provider: `POST {base_url}/v1/messages` (the Messages API) over httpx, as
JSON or as server-sent events (`message_start`, `content_block_delta`, ..., `message_stop`).

Private: only `bastion.llm.factory` may build it, and only behind the guard.

The key goes in `x-api-key` and the API version in `anthropic-version`. System messages become
the request's `system` text; a tool message becomes a user turn holding a `tool_result` block.
Failures become `ModelError`s exactly as for the OpenAI-compatible provider (`_http`),
including an `error` event in the middle of a stream. The HTTP client is the egress
perimeter's model-purpose client with the config's policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from bastion.llm._http import BadModelReply, HTTPProvider, decode, error_text
from bastion.llm.client import Completion, Message, Role
from bastion.llm.config import ModelConfig

MESSAGES_PATH = "/v1/messages"


class AnthropicProvider(HTTPProvider):
    """An unguarded client for one Anthropic Messages endpoint."""

    unfinished_stream = "ended the stream before message_stop"

    def __init__(self, config: ModelConfig) -> None:
        url = config.base_url.rstrip("/").removesuffix("/v1") + MESSAGES_PATH
        super().__init__(config, url, {"anthropic-version": config.anthropic_version})

    def _body(self, messages: Sequence[Message], stream: bool) -> bytes:
        system = "\n\n".join(m.content for m in messages if m.role is Role.SYSTEM)
        body: dict[str, Any] = {
            "model": self._config.model,
            "max_tokens": self._config.max_tokens,
            "temperature": self._config.temperature,
            "messages": [_wire_message(m) for m in messages if m.role is not Role.SYSTEM],
            "stream": stream,
        }
        if system:
            body["system"] = system
        return orjson.dumps(body)

    def _auth(self) -> dict[str, str]:
        key = self._key.value()
        return {"x-api-key": key} if key is not None else {}

    def _completion(self, doc: Any) -> Completion:
        return _completion(doc, self._config.model)

    def _event_text(self, data: str) -> str | None:
        event = decode(data.encode())
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "message_stop":
            return None
        if kind == "error":
            raise BadModelReply(f"reported an error: {error_text(event.get('error'))}")
        return _delta_text(event) if kind == "content_block_delta" else ""


def _wire_message(message: Message) -> dict[str, Any]:
    if message.role is Role.TOOL:
        block = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id or "",
            "content": message.content,
        }
        return {"role": "user", "content": [block]}
    return {"role": str(message.role), "content": message.content}


def _completion(doc: Any, model: str) -> Completion:
    if not isinstance(doc, dict):
        raise BadModelReply("sent a response that is not a message")
    if doc.get("type") == "error":
        raise BadModelReply(f"reported an error: {error_text(doc.get('error'))}")
    blocks = doc.get("content")
    if not isinstance(blocks, list):
        raise BadModelReply("sent a message without content")
    texts: list[str] = []
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise BadModelReply("sent a text block whose text is not text")
            texts.append(text)
    usage = doc["usage"] if isinstance(doc.get("usage"), dict) else {}
    return Completion(
        text="".join(texts),
        model=str(doc.get("model") or model),
        finish_reason=doc.get("stop_reason"),
        prompt_tokens=usage.get("input_tokens"),
        completion_tokens=usage.get("output_tokens"),
    )


def _delta_text(event: dict[str, Any]) -> str:
    delta = event.get("delta")
    if not isinstance(delta, dict) or delta.get("type") != "text_delta":
        return ""
    text = delta.get("text")
    return text if isinstance(text, str) else ""
