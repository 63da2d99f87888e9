"""The egress perimeter for client libraries with their own HTTP stack.

The secret-store clients are third-party libraries: hvac speaks through a `requests.Session`,
boto3 through botocore's own sender. Both are bridged onto an `egress_sync_client`, so their
requests get the same checks as every other outbound request (allow-list, address classes,
DNS pinning, no redirects) and are refused with the same `EgressDenied` log line and audit
entry:

- `requests_session(policy, ...)`: a `requests.Session` whose every request is sent by the
  egress client (hvac: `hvac.Client(session=...)`);
- `route_botocore(client, policy, ...)`: registers a `before-send` handler on a botocore
  client that sends each request through the egress client (with `purpose=Purpose.MODEL` for
  the Bedrock model client of `bastion.llm`). The response body is handed to botocore as it
  arrives, so an event stream (Bedrock's ConverseStream) is parsed chunk by chunk.

A refused or failed request surfaces as the library's own connection error, so that the
library's callers handle it as they handle an unreachable server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import requests
import requests.adapters
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from requests.structures import CaseInsensitiveDict

from bastion.egress.client import egress_sync_client
from bastion.egress.policy import EgressPolicy, Purpose
from bastion.egress.transport import AuditSink

__all__ = ["requests_session", "route_botocore"]


def requests_session(
    policy: EgressPolicy,
    *,
    principal: str,
    audit: AuditSink | None = None,
    verify: bool | str = True,
    timeout: float = 10.0,
) -> Any:
    """A `requests.Session` sending through the egress perimeter (no redirects followed)."""
    session = requests.Session()
    session.trust_env = False  # no proxy or CA bundle from the environment around the policy
    client = egress_sync_client(
        policy, principal=principal, audit=audit, verify=verify, timeout=timeout, trust_env=False
    )
    adapter = _RequestsAdapter(client)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _RequestsAdapter(requests.adapters.BaseAdapter):
    """A requests transport adapter that sends with an egress client."""

    def __init__(self, client: httpx.Client) -> None:
        super().__init__()
        self._client = client

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, timeout: Any = None, **_: Any
    ) -> requests.Response:
        try:
            answer = self._client.request(
                str(request.method),
                str(request.url),
                headers=[
                    (k, v if isinstance(v, str) else v.decode("latin-1"))
                    for k, v in request.headers.items()
                ],
                content=_body(request.body),
                timeout=_timeout(timeout),
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:  # EgressDenied included: logged and audited already
            raise requests.exceptions.ConnectionError(
                f"{type(exc).__name__}: {exc}", request=request
            ) from None
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        response._content = answer.content
        response.reason = answer.reason_phrase
        response.url = str(request.url)
        response.request = request
        response.encoding = answer.encoding
        return response

    def close(self) -> None:
        self._client.close()


def route_botocore(
    client: Any,
    policy: EgressPolicy,
    *,
    principal: str,
    audit: AuditSink | None = None,
    timeout: float = 10.0,
    purpose: Purpose = Purpose.GENERAL,
) -> httpx.Client:
    """Send every request of botocore `client` through the egress perimeter; returns the
    egress client, for a caller that closes `client` to close as well.

    A refused or failed request raises botocore's `EndpointConnectionError`; its
    `__context__` is the egress client's error (`EgressDenied` for a refusal)."""
    http = egress_sync_client(
        policy,
        purpose=purpose,
        principal=principal,
        audit=audit,
        timeout=timeout,
        trust_env=False,
    )

    def send(request: Any, **_: Any) -> AWSResponse:
        outgoing = http.build_request(
            request.method,
            request.url,
            headers=dict(request.headers.items()),
            content=_body(request.body),
        )
        try:
            answer = http.send(outgoing, stream=True, follow_redirects=False)
        except httpx.HTTPError:  # EgressDenied included: logged and audited already
            raise EndpointConnectionError(endpoint_url=request.url) from None
        return AWSResponse(request.url, answer.status_code, answer.headers, _Raw(answer))

    client.meta.events.register("before-send", send)
    return http


class _Raw:
    """The body of a response as botocore reads it (`stream()`, `close()`), read from the
    connection as botocore asks for it."""

    def __init__(self, answer: httpx.Response) -> None:
        self._answer = answer

    def stream(self, **_: Any) -> Iterator[bytes]:
        try:
            yield from self._answer.iter_bytes()
        except httpx.HTTPError:  # the connection broke or timed out mid-body
            raise EndpointConnectionError(endpoint_url=str(self._answer.url)) from None
        finally:
            self._answer.close()

    def close(self) -> None:
        self._answer.close()


def _body(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    read = getattr(body, "read", None)
    if read is not None:
        data = read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(body)


def _timeout(timeout: Any) -> httpx.Timeout | None:
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        connect, read = timeout
        return httpx.Timeout(read, connect=connect)
    return httpx.Timeout(timeout)
