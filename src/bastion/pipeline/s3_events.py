"""S3 event notifications: the objects an `s3:ObjectCreated:*` message names.

S3 delivers a notification to SQS as a JSON body with `Records`, one per object; SNS fan-out
wraps that body in an envelope whose `Message` holds it. `s3_objects(body)` reads both and
answers the created objects that pass the prefix and suffix filters:

- keys arrive URL-encoded (`invoices/2025/March+report%281%29.pdf`): they are decoded, and the
  document's filename is the last segment of the decoded key;
- `s3:TestEvent` (sent once when a notification is configured) names no object;
- other event names (removals, restores) are not documents to ingest;
- a delivery seen twice names the same objects twice: ingesting is idempotent on the bytes and
  their owner, so a duplicate is harmless.

A body that is not a notification raises `NotAnS3Event` with what was wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

CREATED_PREFIX = "ObjectCreated:"
TEST_EVENT = "s3:TestEvent"


class NotAnS3Event(ValueError):
    """The message is not an S3 event notification; the message says why."""


@dataclass(frozen=True, slots=True)
class S3Object:
    """One created object: where it is, its size and its version, and the event's time."""

    bucket: str
    key: str
    size: int | None
    etag: str | None
    version_id: str | None
    event_time: str | None

    @property
    def filename(self) -> str:
        """The last segment of the key: the document's filename."""
        return self.key.rsplit("/", 1)[-1] or self.key


def s3_objects(body: str | dict[str, Any], *, prefix: str = "", suffix: str = "") -> list[S3Object]:
    """The created objects a notification names whose key starts with `prefix` and ends with
    `suffix` (case-insensitive for the suffix: `.PDF` is a PDF)."""
    doc = _load(body)
    if doc.get("Event") == TEST_EVENT:
        return []
    if "Records" not in doc and isinstance(doc.get("Message"), str):
        doc = _load(doc["Message"])  # an SNS envelope
        if doc.get("Event") == TEST_EVENT:
            return []
    records = doc.get("Records")
    if not isinstance(records, list):
        raise NotAnS3Event("no Records: not an S3 event notification")
    out: list[S3Object] = []
    for record in records:
        obj = _created(record)
        if obj is None:
            continue
        if obj.key.startswith(prefix) and obj.key.lower().endswith(suffix.lower()):
            out.append(obj)
    return out


def _load(body: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(body, dict):
        return body
    try:
        doc = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise NotAnS3Event(f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise NotAnS3Event("the body is not a JSON object")
    return doc


def _created(record: Any) -> S3Object | None:
    """The object an `ObjectCreated` record names; None for other events."""
    if not isinstance(record, dict):
        raise NotAnS3Event("a record is not a JSON object")
    name = str(record.get("eventName", ""))
    if not name.startswith(CREATED_PREFIX):
        return None
    s3 = record.get("s3")
    if not isinstance(s3, dict):
        raise NotAnS3Event(f"record {name} has no s3 section")
    bucket = (s3.get("bucket") or {}).get("name")
    obj = s3.get("object") or {}
    key = obj.get("key")
    if not isinstance(bucket, str) or not isinstance(key, str) or not key:
        raise NotAnS3Event(f"record {name} names no bucket and key")
    size = obj.get("size")
    return S3Object(
        bucket=bucket,
        key=unquote_plus(key),
        size=size if isinstance(size, int) else None,
        etag=obj.get("eTag") if isinstance(obj.get("eTag"), str) else None,
        version_id=obj.get("versionId") if isinstance(obj.get("versionId"), str) else None,
        event_time=record.get("eventTime") if isinstance(record.get("eventTime"), str) else None,
    )
