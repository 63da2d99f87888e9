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

import contextlib
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any

import httpx
import orjson

from bastion._version import __version__
from bastion.egress import EgressDenied, Purpose, egress_client
from bastion.llm.client import Completion, Message, ModelError
from bastion.llm.config import ModelConfig
from bastion.security import Secret

CHAT_PATH = "/v1/chat/completions"
USER_AGENT = f"bastion-llm-client/{__version__}"
_MAX_ERROR_CHARS = 300
_DONE = "[DONE]"


class _BadReply(ValueError):
    """The server answered, but not with a chat completion."""


class _HTTPStatus(Exception):
    """The server answered with an HTTP error; `detail` is its own error message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status)
        self.status = status
        self.detail = detail


class OpenAIProvider:
    """An unguarded client for one OpenAI-compatible endpoint."""

    def __init__(self, config: ModelConfig) -> None:
        self._config = config
        self._url = _chat_url(config.base_url)
        headers = {"User-Agent": USER_AGENT}
        # A referenced key is read through its handle on every request (re-resolved after its
        # TTL: a rotated key is used without a restart); a held key is set once.
        self._key_handle = (
            Secret(config.api_key_ref, config.secrets_base_dir) if config.api_key_ref else None
        )
        if config.api_key is not None:
            headers["Authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        self._http = egress_client(
            config.egress_policy(),
            purpose=Purpose.MODEL,
            principal=f"llm:{config.model}",
            headers=headers,
            timeout=config.timeout,
            follow_redirects=False,
        )

    async def complete(self, messages: Sequence[Message]) -> Completion:
        with self._errors():
            response = await self._http.post(
                self._url, content=self._body(messages, False), headers=self._auth()
            )
            _check_status(response.status_code, response.text)
            return _completion(_decode(response.content), self._config.model)

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        body = self._body(messages, True)
        headers = {"Accept": "text/event-stream", **self._auth()}
        with self._errors():
            async with self._http.stream("POST", self._url, content=body, headers=headers) as r:
                if r.status_code >= 400:
                    await r.aread()
                    _check_status(r.status_code, r.text)
                async for line in r.aiter_lines():
                    data = _sse_data(line)
                    if data == _DONE:
                        return
                    if data:
                        delta = _delta(_decode(data.encode()))
                        if delta:
                            yield delta

    async def aclose(self) -> None:
        await self._http.aclose()

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

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn transport failures and bad replies into `ModelError`s that name the server,
        never the key."""
        where = self._config.base_url
        try:
            yield
        except _HTTPStatus as exc:
            detail = self._redact(exc.detail)
            raise ModelError(
                f"model server at {where} answered HTTP {exc.status}: {detail}",
                status=exc.status,
            ) from None
        except _BadReply as exc:
            raise ModelError(f"model server at {where} {self._redact(str(exc))}") from None
        except EgressDenied as exc:
            raise ModelError(
                f"model server at {where} is outside the egress policy: {exc}"
            ) from None
        except httpx.TimeoutException as exc:
            raise ModelError(
                f"model server at {where} did not answer within {self._config.timeout:g} s"
            ) from exc
        except httpx.ConnectError as exc:
            raise ModelError(
                f"cannot connect to the model server at {where} (is it running? {exc})"
            ) from exc
        except httpx.HTTPError as exc:
            raise ModelError(
                f"connection to the model server at {where} failed: {type(exc).__name__}"
            ) from exc

    def _auth(self) -> dict[str, str]:
        if self._key_handle is None:
            return {}
        return {"Authorization": f"Bearer {self._key_handle.get().get()}"}

    def _redact(self, text: str) -> str:
        if self._key_handle is not None:
            key = self._key_handle.get().get()
        elif self._config.api_key is not None:
            key = self._config.api_key.get_secret_value()
        else:
            return text
        return text.replace(key, "[redacted]") if key else text


def _check_status(status: int, body: str) -> None:
    if status >= 400:
        raise _HTTPStatus(status, _error_message(body))


def _decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        snippet = raw[:80].decode("utf-8", "replace")
        raise _BadReply(f"sent malformed JSON: {snippet!r}") from None


def _chat_url(base_url: str) -> str:
    root = base_url.rstrip("/")
    root = root.removesuffix("/v1")
    return root + CHAT_PATH


def _wire_message(message: Message) -> dict[str, str]:
    wire = {"role": str(message.role), "content": message.content}
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    return wire


def _sse_data(line: str) -> str:
    """The payload of an SSE `data:` line; empty for anything else (comments, event names)."""
    if not line.startswith("data:"):
        return ""
    return line[5:].strip()


def _first_choice(doc: Any) -> dict[str, Any]:
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict | str):
        raise _BadReply(f"reported an error: {_error_text(doc['error'])}")
    choices = doc.get("choices") if isinstance(doc, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _BadReply("sent a response without choices")
    return choices[0]


def _completion(doc: Any, model: str) -> Completion:
    choice = _first_choice(doc)
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str | None):
        raise _BadReply("sent a message whose content is not text")
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


def _error_message(body: str) -> str:
    """The server's own words: OpenAI's `{"error": {"message": ...}}`, llama.cpp's and
    Ollama's `{"error": "..."}`, else the start of the body."""
    with contextlib.suppress(orjson.JSONDecodeError):
        doc = orjson.loads(body)
        if isinstance(doc, dict) and "error" in doc:
            return _error_text(doc["error"])
    return body[:_MAX_ERROR_CHARS].strip() or "(empty body)"


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        error = error.get("message", error)
    return str(error)[:_MAX_ERROR_CHARS]
