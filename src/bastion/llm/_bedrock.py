"""The Amazon Bedrock provider: Converse and ConverseStream through boto3's `bedrock-runtime`
client.

Private: only `bastion.llm.factory` may build it, and only behind the guard.

boto3 speaks through botocore's own HTTP sender; `bastion.egress.bridges.route_botocore`
sends every request through the egress perimeter instead, as the model-purpose client with the
config's policy (a refused host fails before anything leaves the process). The stream's body
is handed to botocore as it arrives, and botocore parses its event-stream frames.

Authentication: a configured key (`api_key` / `api_key_ref`) is a Bedrock API key, sent as
`Authorization: Bearer` on unsigned requests; without one, botocore signs with the usual AWS
credentials (environment, profile, role). `guardrail_identifier` / `guardrail_version` go to
Bedrock as `guardrailConfig`. botocore does not retry: a failed call fails once, fast, with a
`ModelError` that names the server, the AWS error code and message, never the key.

boto3 blocks, so each call runs in a worker thread (`asyncio.to_thread`); the client is
created on the first call, in that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any

import httpx

from bastion.egress import EgressDenied, Purpose
from bastion.llm._http import BadModelReply, ModelKey
from bastion.llm.client import Completion, Message, ModelError, Role
from bastion.llm.config import ModelConfig

SERVICE = "bedrock-runtime"
_REGION_IN_HOST = re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com$")


class BedrockProvider:
    """An unguarded client for one Bedrock runtime endpoint and model."""

    def __init__(self, config: ModelConfig) -> None:
        self._config = config
        self._key = ModelKey(config)
        self._client: Any = None
        self._http: httpx.Client | None = None  # the egress client under boto3's
        self._lock = threading.Lock()

    async def complete(self, messages: Sequence[Message]) -> Completion:
        request = self._request(messages)
        with self._errors():
            reply = await asyncio.to_thread(self._call, "converse", request)
            return _completion(reply, self._config.model)

    async def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        request = self._request(messages)
        with self._errors():
            reply = await asyncio.to_thread(self._call, "converse_stream", request)
            events = reply["stream"]
            try:
                iterator = iter(events)
                while (event := await asyncio.to_thread(next, iterator, None)) is not None:
                    if "messageStop" in event:
                        return
                    text = _delta_text(event)
                    if text:
                        yield text
            finally:
                events.close()
            raise BadModelReply("ended the stream before messageStop")

    async def aclose(self) -> None:
        with self._lock:
            client, http = self._client, self._http
            self._client = self._http = None
        if client is not None:
            client.close()
        if http is not None:
            http.close()

    def _request(self, messages: Sequence[Message]) -> dict[str, Any]:
        config = self._config
        request: dict[str, Any] = {
            "modelId": config.model,
            "messages": _conversation(messages),
            "inferenceConfig": {"maxTokens": config.max_tokens, "temperature": config.temperature},
        }
        system = [{"text": m.content} for m in messages if m.role is Role.SYSTEM]
        if system:
            request["system"] = system
        if config.guardrail_identifier is not None:
            request["guardrailConfig"] = {
                "guardrailIdentifier": config.guardrail_identifier,
                "guardrailVersion": config.guardrail_version,
            }
        return request

    def _call(self, operation: str, request: dict[str, Any]) -> Any:
        return getattr(self._bedrock(), operation)(**request)

    def _bedrock(self) -> Any:
        """The boto3 client, created on first use, sending through the egress perimeter."""
        with self._lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> Any:
        import boto3  # heavy imports: only when Bedrock is used
        from botocore import UNSIGNED
        from botocore.config import Config

        from bastion.egress.bridges import route_botocore

        config = self._config
        bearer = self._key.value() is not None
        client = boto3.session.Session().client(
            SERVICE,
            region_name=config.aws_region or _region_of(config.base_url),
            endpoint_url=config.base_url,
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 1},
                signature_version=UNSIGNED if bearer else None,
            ),
        )
        self._http = route_botocore(
            client,
            config.egress_policy(),
            principal=f"llm:{config.model}",
            timeout=config.timeout,
            purpose=Purpose.MODEL,
        )
        if bearer:  # before the egress handler, which sends the request
            client.meta.events.register_first("before-send", self._add_bearer)
        return client

    def _add_bearer(self, request: Any, **_: Any) -> None:
        key = self._key.value()
        if key is not None:
            request.headers["Authorization"] = f"Bearer {key}"

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn botocore's failures into `ModelError`s that name the server, never the key."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
        )

        where = self._config.base_url
        try:
            yield
        except BadModelReply as exc:
            raise ModelError(f"model server at {where} {exc}") from None
        except ClientError as exc:  # an AWS error answer, or an exception event in the stream
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            detail = self._key.redact(f"{error.get('Code', '?')}: {error.get('Message', '')}")
            answered = f"answered HTTP {status}" if status else "reported an error"
            raise ModelError(
                f"model server at {where} {answered}: {detail}", status=status
            ) from None
        except EndpointConnectionError as exc:
            cause = exc.__context__
            if isinstance(cause, EgressDenied):
                raise ModelError(
                    f"model server at {where} is outside the egress policy: {cause}"
                ) from None
            if isinstance(cause, httpx.TimeoutException):
                raise ModelError(
                    f"model server at {where} did not answer within {self._config.timeout:g} s"
                ) from None
            raise ModelError(
                f"cannot connect to the model server at {where} (is it running? {cause})"
            ) from None
        except NoCredentialsError:
            raise ModelError(
                f"no credentials for the Bedrock endpoint at {where}: set api_key_ref to a Bedrock"
                " API key, or give boto3 AWS credentials (environment, profile or role)"
            ) from None
        except NoRegionError:
            raise ModelError(
                f"no AWS region for the Bedrock endpoint at {where}: set aws_region"
            ) from None
        except BotoCoreError as exc:
            raise ModelError(
                f"call to the model server at {where} failed: {type(exc).__name__}: "
                f"{self._key.redact(str(exc))}"
            ) from None


def _region_of(endpoint: str) -> str | None:
    """The region in a standard endpoint (`https://bedrock-runtime.eu-west-1.amazonaws.com`)."""
    host = httpx.URL(endpoint).host
    match = _REGION_IN_HOST.match(host)
    return match.group(1) if match else None


def _conversation(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The Converse `messages`: system messages left out, a tool result as a user turn's
    `toolResult` block, and consecutive turns of one role merged (Converse wants them to
    alternate)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            continue
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        if message.role is Role.TOOL:
            block: dict[str, Any] = {
                "toolResult": {
                    "toolUseId": message.tool_call_id or "",
                    "content": [{"text": message.content}],
                }
            }
        else:
            block = {"text": message.content}
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].append(block)
        else:
            turns.append({"role": role, "content": [block]})
    return turns


def _completion(reply: Any, model: str) -> Completion:
    content = reply.get("output", {}).get("message", {}).get("content")
    if not isinstance(content, list):  # botocore reads a body that is not JSON as empty
        raise BadModelReply("sent a response without an output message")
    usage = reply.get("usage", {})
    return Completion(
        text="".join(b["text"] for b in content if isinstance(b.get("text"), str)),
        model=model,
        finish_reason=reply.get("stopReason"),
        prompt_tokens=usage.get("inputTokens"),
        completion_tokens=usage.get("outputTokens"),
    )


def _delta_text(event: dict[str, Any]) -> str:
    delta = event.get("contentBlockDelta", {}).get("delta", {})
    text = delta.get("text")
    return text if isinstance(text, str) else ""
