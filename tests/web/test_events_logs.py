"""A token sent in the query string of `WS /ws/events` appears in no log line: not uvicorn's
(its handshake lines quote the path with the query string; its access log; the websockets
library's debug lines), not the gateway's own, not the audit trail.

Two layers are checked: uvicorn's records as they are made, at INFO (the default level), carry
no token because the gateway takes it out of the query string first; and with the project's
logging set up as `bastion serve` does it, at DEBUG, no rendered line carries it either (the
redaction processor covers what the server logs before the app sees the request).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from bastion.config import LoggingSettings
from bastion.observability.logging import configure_logging
from tests.web.events_client import Gateway, closed, next_event, start

BAD_KEY = "bst_bbbbbbbbbbbb_" + "1" * 64
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def served_logging(level: str) -> Iterator[tuple[_Records, io.StringIO]]:
    """uvicorn's loggers as `bastion serve` has them (no handlers of their own, access log on,
    everything to the root logger) and the project's logging to a buffer, at `level`; yields
    the raw records and the rendered output. Everything is put back afterwards."""
    rendered = io.StringIO()
    raw = _Records()
    loggers = [logging.getLogger(name) for name in UVICORN_LOGGERS]
    saved = [(lg, lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    root = logging.getLogger()
    root_saved = (root.handlers[:], root.level)
    structlog_saved = structlog.get_config()
    configure_logging(LoggingSettings(level=level, format="json"), stream=rendered)
    for lg in loggers:
        lg.handlers = []
        lg.propagate = True
        lg.setLevel(logging.NOTSET)
    root.addHandler(raw)
    try:
        yield raw, rendered
    finally:
        root.handlers, _ = root_saved
        root.setLevel(root_saved[1])
        for lg, handlers, propagate, lvl in saved:
            lg.handlers, lg.propagate = handlers, propagate
            lg.setLevel(lvl)
        structlog.configure(**structlog_saved)


async def exercise(gw: Gateway) -> list[str]:
    """Good and bad query tokens; returns the secrets used."""
    key = gw.project.keys["submitter"]
    jwt = gw.jwt("submitter", exp=time.time() + 300)
    expired = gw.jwt("submitter", exp=time.time() - 3600)
    for token in (key, jwt):
        async with gw.connect_query(token) as ws:
            doc = gw.received("submitter")
            assert (await next_event(ws))["document_id"] == doc
    for token in (BAD_KEY, expired):
        async with gw.connect_query(token) as ws:
            assert (await closed(ws))[0] == 4001
    return [key, jwt, BAD_KEY, expired]


def assert_absent(secrets: list[str], text: str) -> None:
    for secret in secrets:
        assert secret not in text
        assert secret.split("_")[-1] not in text  # an API key's secret part
        assert secret.rsplit(".", 1)[-1] not in text  # a JWT's signature


async def test_uvicorn_records_at_info_carry_no_query_token(
    tmp_path: Path, sqlite_url: str
) -> None:
    with start(tmp_path, sqlite_url) as gw, served_logging("INFO") as (raw, rendered):
        secrets = await exercise(gw)
        audit = gw.project.audit_records(lambda a: a.method == "events", at_least=4)
    lines = [r.getMessage() for r in raw.records if r.levelno >= logging.INFO]
    accepted = [line for line in lines if "[accepted]" in line]
    assert len(accepted) == 4
    assert all('"WebSocket /ws/events?token=%5BREDACTED%5D"' in line for line in accepted)
    assert_absent(secrets, "\n".join(lines) + rendered.getvalue())
    assert_absent(secrets, "\n".join(repr(row.__dict__) for row in audit))


async def test_no_rendered_log_line_carries_a_query_token_even_at_debug(
    tmp_path: Path, sqlite_url: str
) -> None:
    with start(tmp_path, sqlite_url) as gw, served_logging("DEBUG") as (_, rendered):
        secrets = await exercise(gw)
    output = rendered.getvalue()
    # uvicorn's debug lines (the websockets library's request line among them) were rendered.
    assert "GET /ws/events?token=" in output
    assert "[accepted]" in output
    assert_absent(secrets, output)
