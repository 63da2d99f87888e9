"""Reading an uploaded document: one `file` field of a multipart/form-data body, size-capped.

The size limit is enforced before and while reading: a declared `Content-Length` over the limit
(plus room for the multipart framing) is refused before a byte of the body is read, and a body
without one (chunked) is counted as it arrives and cut off once it passes the same bound. The
file itself must then be within `pipeline.max_upload_bytes` exactly.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from bastion.edge.limits import MULTIPART_ALLOWANCE
from bastion.pipeline import UploadRejected, check_size, too_large
from bastion.protocol.http_errors import ApiError, invalid

FILE_FIELD = "file"
MAX_FORM_FIELDS = 8


class _BodyTooLarge(Exception):
    pass


def rejected(exc: UploadRejected) -> ApiError:
    """The HTTP answer for a document the ingest checks refused."""
    outcome = "denied:size_limit" if exc.reason == "too_large" else None
    return ApiError(exc.http_status, exc.reason, exc.message, outcome=outcome)


async def _capped(stream: AsyncIterator[bytes], cap: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > cap:
            raise _BodyTooLarge
        yield chunk


def _check_declared_length(request: Request, cap: int, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        raise rejected(too_large(limit))


def _check_form_type(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the document as multipart/form-data with one file field named {FILE_FIELD!r}",
        )


async def _parse(request: Request, cap: int, limit: int) -> FormData:
    parser = MultiPartParser(
        request.headers,
        _capped(request.stream(), cap),
        max_files=1,
        max_fields=MAX_FORM_FIELDS,
    )
    try:
        return await parser.parse()
    except _BodyTooLarge:
        raise rejected(too_large(limit)) from None
    except ClientDisconnect:
        raise ApiError(
            499, "client_disconnected", "the upload was interrupted", outcome="client_disconnected"
        ) from None
    except MultiPartException as exc:
        raise invalid(f"the multipart body cannot be read: {exc.message}") from None


async def read_upload(request: Request, limit: int) -> tuple[bytes, str]:
    """The bytes and the client's file name of the `file` field; ApiError (400/413/415)."""
    cap = limit + MULTIPART_ALLOWANCE
    _check_declared_length(request, cap, limit)
    _check_form_type(request)
    form = await _parse(request, cap, limit)
    try:
        upload = form.get(FILE_FIELD)
        if not isinstance(upload, UploadFile):
            raise invalid(f"the form has no file field named {FILE_FIELD!r}: attach the PDF there")
        data = await upload.read()
        try:
            check_size(len(data), limit)
        except UploadRejected as exc:
            raise rejected(exc) from None
        return data, upload.filename or ""
    finally:
        await form.close()
