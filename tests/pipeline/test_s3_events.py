"""S3 event notifications read into the objects to ingest: URL-encoded keys, the test event,
other event names, SNS envelopes, prefix and suffix filters, duplicates, malformed bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bastion.pipeline.s3_events import NotAnS3Event, s3_objects


def record(key: str, event: str = "ObjectCreated:Put", bucket: str = "docs") -> dict[str, Any]:
    """A record shaped as S3 sends it (eventVersion 2.1)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-central-1",
        "eventTime": "2026-12-07T10:00:00.000Z",
        "eventName": event,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "pdf-uploads",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": 1234, "eTag": "0123abcd", "sequencer": "00A1"},
        },
    }


def body(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


def test_created_objects_with_url_encoded_keys() -> None:
    [obj] = s3_objects(body(record("inbox/2025/March+report%281%29.pdf")))
    assert (obj.bucket, obj.key, obj.filename) == (
        "docs",
        "inbox/2025/March report(1).pdf",
        "March report(1).pdf",
    )
    assert obj.size == 1234 and obj.event_time == "2026-12-07T10:00:00.000Z"


def test_the_test_event_and_other_events_name_no_document() -> None:
    assert s3_objects(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    removed = record("inbox/a.pdf", event="ObjectRemoved:Delete")
    kept = record("inbox/b.pdf", event="ObjectCreated:CompleteMultipartUpload")
    assert [o.key for o in s3_objects(body(removed, kept))] == ["inbox/b.pdf"]


def test_an_sns_envelope_is_opened() -> None:
    envelope = {"Type": "Notification", "Message": body(record("inbox/c.pdf"))}
    assert [o.key for o in s3_objects(json.dumps(envelope))] == ["inbox/c.pdf"]


def test_prefix_and_suffix_filters() -> None:
    records = body(record("inbox/a.PDF"), record("outbox/b.pdf"), record("inbox/c.txt"))
    assert [o.key for o in s3_objects(records, prefix="inbox/", suffix=".pdf")] == ["inbox/a.PDF"]


def test_a_duplicate_delivery_names_the_same_objects_again() -> None:
    message = body(record("inbox/a.pdf"))
    assert s3_objects(message) == s3_objects(message)


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"Hello": 1}', "no Records"),
        (json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}), "no s3 section"),
        (json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}), "no bucket"),
    ],
)
def test_malformed_bodies_say_what_is_wrong(bad: str, problem: str) -> None:
    with pytest.raises(NotAnS3Event, match=problem):
        s3_objects(bad)
