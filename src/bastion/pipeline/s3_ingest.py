"""Objects named by S3 events, read from their bucket and ingested like uploads.

`S3Source.read(ref)` fetches an object's bytes from one of the allowed buckets
(`pipeline.s3_events_buckets`; any other bucket is refused, so a caller cannot have another
bucket, such as the object store's, read on its behalf) at `pipeline.s3_endpoint_url`. The size
limit (`pipeline.max_upload_bytes`) is checked on the size the event reports, on the object's
`ContentLength` and on the bytes read (never more than the limit plus one byte are read).

`ingest_s3_object(ingest, source, ref, principal, correlation_id)` is the one place where an S3
object enters the pipeline: the same checks, record, object store put and queue message as an
upload (`Ingest.ingest`), owned by the ingesting `principal`, with a new correlation ID of the
caller's. `enqueue=False` leaves out the queue message: `orchestrator.process_document {s3}`
processes the document at once.

Refusals that no retry can change are `UploadRejected`: `too_large`, `not_pdf`, `empty`,
`bucket_not_allowed` (403) and `not_found` (404: the object is gone). Everything else (S3, the
archivist or the queue unreachable) propagates as it is, to be retried. `mark_document` moves a
document so ingested to another status (`processing`, `failed`) through the archivist. These two
are the S3 paths' only uses of `Ingest` and the archive; S3 reads run in threads.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from bastion.config import Settings
from bastion.core.context import correlation_id_var
from bastion.pipeline.ingest import Ingest, IngestResult, UploadRejected, check_size
from bastion.pipeline.s3_events import S3Object

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchVersion", "NotFound", "NoSuchBucket"}


class S3Ref(BaseModel):
    """Params naming one S3 object: `{bucket, key, version_id?, etag?, size?}` (the key
    decoded, as `s3_objects` answers it)."""

    model_config = {"extra": "forbid", "frozen": True}

    # S3's own limits: bucket names of 3-63 characters, keys of up to 1024 bytes.
    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]+[a-z0-9]$")
    key: str = Field(min_length=1, max_length=1024)
    version_id: str | None = Field(default=None, max_length=1024)
    etag: str | None = Field(default=None, max_length=256)
    size: int | None = Field(default=None, ge=0)

    @property
    def filename(self) -> str:
        """The last segment of the key: the document's filename."""
        return self.key.rsplit("/", 1)[-1] or self.key

    @classmethod
    def of(cls, obj: S3Object) -> S3Ref:
        return cls(
            bucket=obj.bucket, key=obj.key, version_id=obj.version_id, etag=obj.etag, size=obj.size
        )


def _error_code(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3Source:
    """Reads objects of the allowed buckets, within the upload size limit."""

    def __init__(self, settings: Settings, *, client: Any = None) -> None:
        p = settings.pipeline
        self.buckets = frozenset(p.s3_events_buckets)
        self.max_bytes = p.max_upload_bytes
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=p.s3_endpoint_url, region_name=p.aws_region)
        self._s3 = client

    def check(self, ref: S3Ref) -> None:
        """UploadRejected unless the object's bucket is allowed and its size within limits."""
        if ref.bucket not in self.buckets:
            raise UploadRejected(
                403,
                "bucket_not_allowed",
                f"bucket {ref.bucket} is not in pipeline.s3_events_buckets: its objects are "
                "not ingested",
            )
        if ref.size is not None:
            check_size(ref.size, self.max_bytes)

    def read(self, ref: S3Ref) -> bytes:
        """The object's bytes (the version the event names, if it names one)."""
        self.check(ref)
        args = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            args["VersionId"] = ref.version_id
        try:
            response = self._s3.get_object(**args)
        except Exception as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise UploadRejected(
                    404, "not_found", "the object is gone from its bucket: nothing to ingest"
                ) from None
            raise
        body = response["Body"]
        try:
            check_size(int(response.get("ContentLength") or 0), self.max_bytes)
            data: bytes = body.read(self.max_bytes + 1)
        finally:
            body.close()
        check_size(len(data), self.max_bytes)
        return data


async def ingest_s3_object(
    ingest: Ingest,
    source: S3Source,
    ref: S3Ref,
    principal: str,
    correlation_id: str,
    *,
    enqueue: bool = True,
) -> IngestResult:
    """Read the object (in a thread) and ingest it as `principal`'s document (see the module
    docstring)."""
    data = await asyncio.to_thread(source.read, ref)
    return await ingest.ingest(
        data, ref.filename, principal, correlation_id, owner=principal, enqueue=enqueue
    )


async def mark_document(
    ingest: Ingest,
    document_id: str,
    status: str,
    *,
    correlation_id: str,
    reason: str | None = None,
    detail: str | None = None,
) -> None:
    """Move a document ingested by `ingest_s3_object` to `status`, through the archivist
    (`archivist.set_status`, under the ingesting process's own credential)."""
    token = correlation_id_var.set(correlation_id)
    try:
        await ingest.archive.set_status(document_id, status, reason=reason, detail=detail)
    finally:
        correlation_id_var.reset(token)
