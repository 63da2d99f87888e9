"""Secrets out of the logs: known values and token shapes are redacted from structlog events,
stdlib records (uvicorn's access log of a real server), tracebacks and audit lines."""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bastion.config import LoggingSettings
from bastion.observability import logging as observability
from bastion.observability.logging import audit_logger, configure_logging
from bastion.observability.redact import REDACTED, redact_event, redact_text
from bastion.security.secrets import resolve

SECRET = "Zq8-known-secret-value-41"
JWT = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0"
    ".eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0"
    ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMDEyMzQ1Njc4OQ"
)
API_KEY = "bst_abcdefghijkl_" + "0123456789abcdef" * 4


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    previous, state = structlog.get_config(), dict(observability._state)
    configure_logging(LoggingSettings(level="INFO", format="json"), stream=stream)
    yield stream
    structlog.configure(**previous)
    observability._state.update(state)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == observability._HANDLER_NAME]:
        root.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(x) for x in stream.getvalue().splitlines() if x.startswith("{")]


@pytest.fixture
def known_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("BASTION_T_REDACT", SECRET)
    return resolve("secret://env/BASTION_T_REDACT", tmp_path).get()


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"token {JWT} rejected", "token  rejected"),
        ("Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer "),
        ("authorization: bearer abcdefghij", "authorization: bearer "),
        ("Authorization: Basic YWxpY2U6c2VjcmV0", "Authorization: Basic "),
        (f"key {API_KEY} unknown", "key bst_abcdefghijkl_ unknown"),
        ("aws key AKIAIOSFODNN7EXAMPLE used", "aws key  used"),
        ("GET /ws/events?token=abc123xyz&x=1 HTTP/1.1", "GET /ws/events?token=&x=1 HTTP/1.1"),
        ("https://h/p?api_key=k-123&password=hunter22", "https://h/p?api_key=&password="),
        ("connect postgresql://app:pa55word@db:5432/x", "connect postgresql://app:@db:5432/x"),
        ("queue redis://:s3cretpw@redis:6379/0 down", "queue redis://:@redis:6379/0 down"),
        ('{"client_secret": "abcdef123"}', '{"client_secret": ""}'),
    ],
)
def test_token_shapes_are_redacted(text: str, kept: str) -> None:
    out = redact_text(text)
    assert REDACTED in out
    assert out.replace(REDACTED, "") == kept


@pytest.mark.parametrize(
    "text",
    [
        "secret://env/VAULT_TOKEN: environment variable VAULT_TOKEN is not set",
        "token_service reloaded 2 keys",
        "api key id abcdefghijkl revoked",
        "GET /health?verbose=1 HTTP/1.1 200",
        "basic validation failed for the bearer of the document",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_resolved_values_are_redacted_anywhere(known_secret: str, tmp_path: Path) -> None:
    assert redact_text(f"prefix{known_secret}suffix") == f"prefix{REDACTED}suffix"
    short = "abc"
    import os

    os.environ["BASTION_T_SHORT"] = short
    try:
        resolve("secret://env/BASTION_T_SHORT", tmp_path)
    finally:
        del os.environ["BASTION_T_SHORT"]
    assert redact_text("abcdef") == "abcdef"  # a value too short to register is not matched


def test_secret_logged_by_mistake(log_stream: io.StringIO, known_secret: str) -> None:
    log = structlog.get_logger("test")
    log.info(f"connecting with {known_secret}", password="hunter2", extra=[known_secret])
    logging.getLogger("lib").warning("stdlib says %s and %s", known_secret, JWT)
    text = log_stream.getvalue()
    assert known_secret not in text and JWT not in text and "hunter2" not in text
    structured, stdlib = lines(log_stream)
    assert structured["event"] == f"connecting with {REDACTED}"
    assert structured["password"] == REDACTED and structured["extra"] == [REDACTED]
    assert stdlib["event"] == f"stdlib says {REDACTED} and {REDACTED}"
    assert stdlib["logger"] == "lib" and stdlib["level"] == "warning"


def test_exception_message_with_a_secret(log_stream: io.StringIO, known_secret: str) -> None:
    try:
        raise RuntimeError(f"upstream refused key {known_secret} / {API_KEY}")
    except RuntimeError:
        structlog.get_logger("test").exception("call failed")
        logging.getLogger("lib").exception("stdlib call failed")
    text = log_stream.getvalue()
    assert known_secret not in text and API_KEY not in text
    for line in lines(log_stream):
        assert "RuntimeError: upstream refused key [REDACTED]" in str(line["exception"])


def test_audit_lines_are_redacted(log_stream: io.StringIO, known_secret: str) -> None:
    audit = audit_logger()
    audit.info("audit", detail=f"bad header Bearer {known_secret}", principal="alice")
    audit.flush()
    (line,) = lines(log_stream)
    assert known_secret not in log_stream.getvalue()
    assert line["detail"] == f"bad header Bearer {REDACTED}" and line["principal"] == "alice"


async def _events(request: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


@pytest.fixture
def access_logged_server(log_stream: io.StringIO) -> Iterator[str]:
    """A real uvicorn server whose access log goes through the logging configuration."""
    app = Starlette(routes=[Route("/ws/events", _events)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, access_log=True, log_config=None, log_level="info")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def test_uvicorn_access_log_line_is_redacted(
    access_logged_server: str, log_stream: io.StringIO
) -> None:
    r = httpx.get(f"{access_logged_server}/ws/events?token={JWT}&api_key={API_KEY}")
    assert r.status_code == 200
    deadline = time.monotonic() + 10
    while "/ws/events" not in log_stream.getvalue():
        assert time.monotonic() < deadline, "no access log line"
        time.sleep(0.01)
    text = log_stream.getvalue()
    assert JWT not in text and API_KEY not in text and "0123456789abcdef" not in text
    (access,) = [x for x in lines(log_stream) if x.get("logger") == "uvicorn.access"]
    assert f"/ws/events?token={REDACTED}&api_key={REDACTED}" in str(access["event"])


def test_fields_of_any_type_and_header_names(known_secret: str) -> None:
    event = {
        "event": "request",
        "Authorization": "Bearer abc",
        "X-API-Key": API_KEY,
        "headers": {"cookie": "sid=1", "accept": "text/plain"},
        "args": (known_secret, 3),
        "error": ValueError(f"bad {known_secret}"),
        "count": 3,
    }
    out = redact_event(None, "info", event)
    assert out["Authorization"] == REDACTED and out["X-API-Key"] == REDACTED
    assert out["headers"] == {"cookie": REDACTED, "accept": "text/plain"}
    assert out["args"] == [REDACTED, 3]
    assert out["error"] == f"ValueError: bad {REDACTED}" and out["count"] == 3


def test_credential_named_field_of_plain_strings() -> None:
    out = redact_event(None, "info", {"event": "login", "X-API-Key": "plain-value-no-marker"})
    assert out == {"event": "login", "X-API-Key": REDACTED}


def test_lines_of_a_multi_line_secret() -> None:
    from bastion.observability.redact import remember

    body = "MC4CAQAwBQYDK2VwBCIEIFakePemBodyLine0123456789abcdefABCDEF"
    remember(f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
    remember('{\n  "kty": "OKP",\n  "d": "Zm9vYmFyYmF6cXV4cXV1eA"\n}')
    assert redact_text(f"loaded {body}") == f"loaded {REDACTED}"
    assert redact_text('jwk {"kty": "OKP",') == 'jwk {"kty": "OKP",'
