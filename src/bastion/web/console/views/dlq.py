"""The console's dead-letter view: what the pipeline gave up on, and sending it round again.

    GET  /console/dlq          the dead letters, oldest first: reason, document, receive count,
                               when; at most `?limit=` (default 100, up to 1000) with the total
    POST /console/dlq/redrive  form `message_id` (one) or `all=1`: back onto the queue with a
                               fresh receive count, then 303 to the view with `?redriven=N`

The view is authorized as `gateway.console_dlq`; redriving as `gateway.console_dlq_redrive`
(admin only in the shipped policy), CSRF-checked by the console's middleware, and audited by the
guard with the count and the message id in the record's detail. The redrive buttons are shown
only to a principal granted it. The queue's calls are synchronous: they run in a worker thread,
and a queue that cannot be reached is a 503 page saying what to check, never a 500.

Unlike `bastion dlq redrive`, the console does not mark the documents `queued` again (the
gateway may not set statuses): the worker moves each to `processing` when it takes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy.exc
import structlog
from botocore.exceptions import BotoCoreError, ClientError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bastion.core.context import CallContext
from bastion.pipeline import is_document_id
from bastion.protocol.http_errors import ApiError
from bastion.runtime import audit_detail
from bastion.storage import DeadLetter, Queue
from bastion.web.console.console import ConsoleDeps
from bastion.web.console.pages import secure_headers

log = structlog.get_logger("bastion.console")

T = TypeVar("T")

VIEW = "dlq"
REDRIVE_ACTION = "console_dlq_redrive"
PATH = "/console/dlq"
REDRIVE_PATH = "/console/dlq/redrive"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
RETRY_AFTER_SECONDS = 5
# Message ids of every backend: hex or UUIDs (SQLite, PostgreSQL, SQS), `<ms>-<n>` (Redis).
MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,200}")
# What the queue backends raise when their store cannot be reached or refuses a call: SQLite's
# errors; `OSError` (PostgreSQL and Redis wrap theirs in it); AWS's and the SQS ledger's.
QUEUE_ERRORS = (sqlite3.Error, OSError, BotoCoreError, ClientError, sqlalchemy.exc.DBAPIError)


@dataclass(frozen=True, slots=True)
class Entry:
    """One dead letter as the page shows it."""

    id: str
    document_id: str | None  # when the message names a (well-formed) document id
    filename: str | None
    reason: str
    receive_count: int
    dead_at: dt.datetime
    sent_at: dt.datetime


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(microsecond=0)


def entry(letter: DeadLetter) -> Entry:
    doc = letter.body.get("document_id")
    filename = letter.body.get("filename")
    return Entry(
        id=letter.id,
        document_id=doc if is_document_id(doc) else None,
        filename=filename if isinstance(filename, str) else None,
        reason=letter.reason,
        receive_count=letter.receive_count,
        dead_at=_utc(letter.dead_at),
        sent_at=_utc(letter.sent_at),
    )


def _int_param(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and len(value) <= 9 else None


def list_limit(value: str | None) -> int:
    """`?limit=` clamped to 1..MAX_LIMIT (the default when absent or not a number)."""
    limit = _int_param(value)
    return DEFAULT_LIMIT if limit is None else max(1, min(limit, MAX_LIMIT))


def result_message(redriven: str | None, one: bool) -> str | None:
    """The outcome of the redrive that sent the browser here (`?redriven=N`), in words."""
    moved = _int_param(redriven)
    if moved is None:
        return None
    if moved == 0:
        if one:
            return "Nothing was redriven: that message is no longer in the dead-letter queue."
        return "Nothing was redriven: the dead-letter queue was empty."
    noun = "message" if moved == 1 else "messages"
    return f"Moved {moved} {noun} back onto the queue; the workers will process them again."


def queue_unavailable(what: str, exc: BaseException) -> ApiError:
    """503 with what the operator can do; the backend's own words go to the audit record."""
    log.warning("pipeline queue unavailable", action=what, error=type(exc).__name__)
    return ApiError(
        503,
        "queue_unavailable",
        f"The pipeline queue could not {what}. Check that the queue's backend "
        "(pipeline.queue_url) is running and reachable from the gateway, then try again.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        detail=f"{type(exc).__name__}: {exc}"[:500],
    )


async def on_queue(what: str, fn: Callable[[], T]) -> T:
    """`fn()` (a queue call) in a worker thread; an unreachable queue is `queue_unavailable`."""
    try:
        return await asyncio.to_thread(fn)
    except QUEUE_ERRORS as exc:
        raise queue_unavailable(what, exc) from None


def _read(queue: Queue, limit: int) -> tuple[list[DeadLetter], int]:
    return queue.dlq_list(limit), queue.dlq_depth()


class DeadLetterView:
    """The view's handlers over the console's dependencies."""

    def __init__(self, deps: ConsoleDeps) -> None:
        self.deps = deps

    async def page(self, request: Request, call: CallContext) -> Response:
        limit = list_limit(request.query_params.get("limit"))
        letters, total = await on_queue(
            "list its dead letters", lambda: _read(self.deps.queue, limit)
        )
        params = request.query_params
        return self.deps.pages.render(
            request,
            "dlq.html",
            principal=call.principal,
            view=VIEW,
            entries=[entry(letter) for letter in letters],
            total=max(total, len(letters)),
            limit=limit,
            max_limit=MAX_LIMIT,
            can_redrive=self.deps.pages.allowed(call.principal, REDRIVE_ACTION),
            result=result_message(params.get("redriven"), params.get("one") == "1"),
        )

    async def redrive(self, request: Request, _call: CallContext) -> Response:
        form = await request.form()
        message_id, everything = form.get("message_id"), form.get("all") == "1"
        if everything == isinstance(message_id, str):
            raise ApiError(
                400,
                "bad_request",
                "Name one dead letter (message_id) or ask for all of them (all=1).",
            )
        if everything:
            moved = await on_queue("redrive its dead letters", lambda: self.deps.queue.redrive())
            audit_detail(request, f"redriven={moved} (all)")
            return secure_headers(RedirectResponse(f"{PATH}?redriven={moved}", status_code=303))
        assert isinstance(message_id, str)
        if MESSAGE_ID_RE.fullmatch(message_id) is None:
            raise ApiError(400, "bad_request", "That is not a dead-letter message id.")
        moved = await on_queue(
            "redrive that dead letter", lambda: self.deps.queue.redrive([message_id])
        )
        audit_detail(request, f"redriven={moved} id={message_id}")
        return secure_headers(RedirectResponse(f"{PATH}?redriven={moved}&one=1", status_code=303))


def routes(deps: ConsoleDeps) -> list[BaseRoute]:
    view = DeadLetterView(deps)
    return [
        Route(PATH, deps.page(VIEW, view.page), methods=["GET"]),
        Route(
            REDRIVE_PATH,
            deps.page(VIEW, view.redrive, action=REDRIVE_ACTION),
            methods=["POST"],
        ),
    ]
