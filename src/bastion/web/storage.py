"""The gateway's use of the (synchronous) document storage: calls in worker threads, with an
outage of the database or the queue answered as 503, and stored files streamed back."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO, ParamSpec, TypeVar

import sqlalchemy.exc
import structlog
from starlette.responses import StreamingResponse

from bastion.pipeline import PDF_CONTENT_TYPE
from bastion.protocol.http_errors import service_unavailable

log = structlog.get_logger("bastion.gateway")

P = ParamSpec("P")
T = TypeVar("T")

RETRY_AFTER_SECONDS = 5
FILE_CHUNK_BYTES = 64 * 1024


@contextmanager
def storage_errors() -> Iterator[None]:
    """A database or queue outage inside the block is answered as 503."""
    try:
        yield
    except (sqlalchemy.exc.OperationalError, sqlite3.OperationalError) as exc:
        log.warning("document storage unavailable", error=type(exc).__name__)
        raise service_unavailable(
            "storage_unavailable",
            "the document store",
            f"{type(exc).__name__}: {exc}"[:500],
            RETRY_AFTER_SECONDS,
        ) from None


async def in_storage(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` in a worker thread; a database or queue outage is 503."""
    with storage_errors():
        return await asyncio.to_thread(fn, *args, **kwargs)


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    with fh:
        while chunk := fh.read(FILE_CHUNK_BYTES):
            yield chunk


def _size(fh: BinaryIO) -> int:
    size = fh.seek(0, 2)
    fh.seek(0)
    return size


async def pdf_response(fh: BinaryIO, document_id: str) -> StreamingResponse:
    """Stream a stored PDF (closing `fh` at the end) as a download, never rendered inline."""
    headers = {
        "Content-Length": str(await asyncio.to_thread(_size, fh)),
        "Content-Disposition": f'attachment; filename="{document_id}.pdf"',
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(_chunks(fh), media_type=PDF_CONTENT_TYPE, headers=headers)
