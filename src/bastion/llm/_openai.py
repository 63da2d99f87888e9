"""The OpenAI-compatible provider: `POST {base_url}/v1/chat/completions` over httpx, as JSON or
as server-sent events. vLLM, Ollama, llama.cpp's server and the hosted APIs speak it.

Private: only `bastion.llm.factory` may build it, and only behind the guard.

Every failure becomes a `ModelError` a user can act on: the server cannot be reached, did not
answer in time, answered with an HTTP error (its status and its own error message), or sent
something that is not a chat completion. The API key is sent as `Authorization: Bearer` and is
removed from anything the server echoes back before it goes into an error message.

Its HTTP client comes from the egress perimeter as the one model-purpose client
(`egress_client(..., purpose=Purpose.MODEL)`), with the config's egress policy: a request
outside it (another host, a redirect elsewhere, a name resolving to a private address) fails
with a `ModelError` that names the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from bastion.llm._http import BadModelReply, HTTPProvider, decode, error_text
from bastion.llm.client import Completion, Message
from bastion.llm.config import ModelConfig

CHAT_PATH = "/v1/chat/completions"
_DONE = "[DONE]"


class OpenAIProvider(HTTPProvider):
    """An unguarded client for one OpenAI-compatible endpoint."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, _chat_url(config.base_url), {})

    def _body(self, messages: Sequence[Message], stream: bool) -> bytes:
        return orjson.dumps(
            {
                "model": self._config.model,
                "messages": [_wire_message(m) for m in messages],
                "max_tokens": self._config.max_tokens,
                "temperature": self._config.temperature,
                "stream": stream,
            }
        )

    def _auth(self) -> dict[str, str]:
        key = self._key.value()
        return {"Authorization": f"Bearer {key}"} if key is not None else {}

    def _completion(self, doc: Any) -> Completion:
        return _completion(doc, self._config.model)

    def _event_text(self, data: str) -> str | None:
        return None if data == _DONE else _delta(decode(data.encode()))


def _chat_url(base_url: str) -> str:
    root = base_url.rstrip("/")
    root = root.removesuffix("/v1")
    return root + CHAT_PATH


def _wire_message(message: Message) -> dict[str, str]:
    wire = {"role": str(message.role), "content": message.content}
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    return wire


def _first_choice(doc: Any) -> dict[str, Any]:
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict | str):
        raise BadModelReply(f"reported an error: {error_text(doc['error'])}")
    choices = doc.get("choices") if isinstance(doc, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BadModelReply("sent a response without choices")
    return choices[0]


def _completion(doc: Any, model: str) -> Completion:
    choice = _first_choice(doc)
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str | None):
        raise BadModelReply("sent a message whose content is not text")
    usage = doc.get("usage") if isinstance(doc.get("usage"), dict) else {}
    return Completion(
        text=content or "",
        model=str(doc.get("model") or model),
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )


def _delta(doc: Any) -> str:
    choice = _first_choice(doc)
    delta = choice.get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""
