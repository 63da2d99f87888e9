"""What the providers share: the API key (held or referenced, and redacted from anything the
server echoes), the egress client of the HTTP providers, the JSON-or-server-sent-events
exchange of the HTTP providers (`HTTPProvider`), and the mapping of transport failures and
HTTP errors onto `ModelError`s a user can act on.

Private: used by the provider modules only.
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

USER_AGENT = f"bastion-llm-client/{__version__}"
_MAX_ERROR_CHARS = 300


class BadModelReply(ValueError):
    """The server answered, but not with what the protocol says."""


class ModelHTTPStatus(Exception):
    """The server answered with an HTTP error; `detail` is its own error message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status)
        self.status = status
        self.detail = detail


class ModelKey:
    """The model key: held by the program (`api_key`) or read through a secret reference
    (`api_key_ref`) on every use, re-resolved after its TTL so a rotated key is used without a
    restart."""

    def __init__(self, config: ModelConfig) -> None:
        self._held = config.api_key
        self._handle = (
            Secret(config.api_key_ref, config.secrets_base_dir) if config.api_key_ref else None
        )

    def value(self) -> str | None:
        if self._handle is not None:
            return self._handle.get().get()
        return self._held.get_secret_value() if self._held is not None else None

    def redact(self, text: str) -> str:
        """`text` without the key in it (some servers echo a wrong key back)."""
        key = self.value()
        return text.replace(key, "[redacted]") if key else text


def model_http_client(config: ModelConfig, headers: dict[str, str]) -> httpx.AsyncClient:
    """The provider's HTTP client: the egress perimeter's one model-purpose client, with the
    config's policy, no redirects followed."""
    return egress_client(
        config.egress_policy(),
        purpose=Purpose.MODEL,
        principal=f"llm:{config.model}",
        headers={"User-Agent": USER_AGENT, **headers},
        timeout=config.timeout,
        follow_redirects=False,
    )


class HTTPProvider:
    """A provider that POSTs a JSON body to one URL and reads back a JSON completion, or with
    streaming a server-sent-events stream. Subclasses say how the body is built, how the key is
    presented and how a reply and a stream event are read."""

    #: Why a stream that ends without its end event is broken; `None`: ending is fine.
    unfinished_stream: str | None = None

    def __init__(self, config: ModelConfig, url: str, headers: dict[str, str]) -> None:
        self._config = config
        self._url = url
        self._key = ModelKey(config)
        self._http = model_http_client(config, headers)

    async def complete(self, messages: Sequence[Message]) -> Completion:
        with http_errors(self._config, self._key):
            response = await self._http.post(
                self._url, content=self._body(messages, False), headers=self._auth()
            )
            check_status(response.status_code, response.text)
            return self._completion(decode(response.content))

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        body = self._body(messages, True)
        headers = {"Accept": "text/event-stream", **self._auth()}
        with http_errors(self._config, self._key):
            async with self._http.stream("POST", self._url, content=body, headers=headers) as r:
                if r.status_code >= 400:
                    await r.aread()
                    check_status(r.status_code, r.text)
                async for line in r.aiter_lines():
                    data = sse_data(line)
                    if not data:
                        continue
                    text = self._event_text(data)
                    if text is None:
                        return
                    if text:
                        yield text
            if self.unfinished_stream is not None:
                raise BadModelReply(self.unfinished_stream)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _body(self, messages: Sequence[Message], stream: bool) -> bytes:
        raise NotImplementedError

    def _auth(self) -> dict[str, str]:
        """The headers presenting the key; none without a key."""
        raise NotImplementedError

    def _completion(self, doc: Any) -> Completion:
        """The completion in a decoded JSON reply."""
        raise NotImplementedError

    def _event_text(self, data: str) -> str | None:
        """The text in one event's `data:` payload; `None` for the event that ends the stream."""
        raise NotImplementedError


@contextlib.contextmanager
def http_errors(config: ModelConfig, key: ModelKey) -> Iterator[None]:
    """Turn transport failures and bad replies into `ModelError`s that name the server, never
    the key."""
    where = config.base_url
    try:
        yield
    except ModelHTTPStatus as exc:
        raise ModelError(
            f"model server at {where} answered HTTP {exc.status}: {key.redact(exc.detail)}",
            status=exc.status,
        ) from None
    except BadModelReply as exc:
        raise ModelError(f"model server at {where} {key.redact(str(exc))}") from None
    except EgressDenied as exc:
        raise ModelError(f"model server at {where} is outside the egress policy: {exc}") from None
    except httpx.TimeoutException as exc:
        raise ModelError(
            f"model server at {where} did not answer within {config.timeout:g} s"
        ) from exc
    except httpx.ConnectError as exc:
        raise ModelError(
            f"cannot connect to the model server at {where} (is it running? {exc})"
        ) from exc
    except httpx.HTTPError as exc:
        raise ModelError(
            f"connection to the model server at {where} failed: {type(exc).__name__}"
        ) from exc


def check_status(status: int, body: str) -> None:
    if status >= 400:
        raise ModelHTTPStatus(status, error_message(body))


def decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        snippet = raw[:80].decode("utf-8", "replace")
        raise BadModelReply(f"sent malformed JSON: {snippet!r}") from None


def sse_data(line: str) -> str:
    """The payload of an SSE `data:` line; empty for anything else (comments, event names)."""
    if not line.startswith("data:"):
        return ""
    return line[5:].strip()


def error_message(body: str) -> str:
    """The server's own words: `{"error": {"message": ...}}` (OpenAI, Anthropic),
    `{"error": "..."}` (llama.cpp, Ollama), else the start of the body."""
    with contextlib.suppress(orjson.JSONDecodeError):
        doc = orjson.loads(body)
        if isinstance(doc, dict) and "error" in doc:
            return error_text(doc["error"])
    return body[:_MAX_ERROR_CHARS].strip() or "(empty body)"


def error_text(error: Any) -> str:
    if isinstance(error, dict):
        error = error.get("message", error)
    return str(error)[:_MAX_ERROR_CHARS]
