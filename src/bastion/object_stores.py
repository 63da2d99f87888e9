"""The object store a configuration names (`pipeline.object_store_url`), opened from settings.

A folder (relative to the project) or `s3://bucket/prefix` (with `pipeline.s3_endpoint_url`,
`aws_region`, `s3_sse`, `s3_kms_key_id`; credentials from boto3's usual chain). Everything that
reads or writes document bytes or research reports opens it here, so the pipeline and the
research agents always share one store.
"""

from __future__ import annotations

from bastion.config import Settings
from bastion.storage import LocalObjectStore, ObjectStore, S3ObjectStore


def object_store(settings: Settings) -> ObjectStore:
    """The content-addressed object store at `pipeline.object_store_url`: `s3://bucket/prefix`
    or a folder (relative to the project)."""
    p = settings.pipeline
    if not p.object_store_url.startswith("s3://"):
        return LocalObjectStore(settings.path(p.object_store_url))
    # Credentials: boto3's usual chain (environment, shared files, an instance or task role).
    store = S3ObjectStore(
        p.object_store_url,
        endpoint_url=p.s3_endpoint_url,
        region=p.aws_region,
        sse=p.s3_sse,
        kms_key_id=p.s3_kms_key_id,
    )
    return store
