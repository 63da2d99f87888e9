"""The S3 object store: document bytes as S3 objects, content-addressed like the local store.

`S3ObjectStore(url)` keeps the object named `<sha256>` at `s3://bucket/prefix/ab/cd/<sha256>`
(the local store's layout). Any S3 endpoint works (`endpoint_url`: AWS when None, MinIO,
moto). Server-side encryption is optional (`sse`: "AES256" or "aws:kms" with an optional key
id) and sent with every write. No ACL is ever sent: objects are private to the bucket owner
(buckets with "bucket owner enforced" object ownership refuse ACLs anyway). Credentials come
from boto3's usual chain (environment, shared files, an instance or task role), never from
Bastion's configuration.

A put first asks whether the object is there (same name, same size): the name is the digest of
the bytes, so an existing object already holds them and is not written again.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO, Literal
from urllib.parse import urlsplit

from bastion.storage.objectstore import ObjectNotFoundError, sha256_hex, validate_sha256

ServerSideEncryption = Literal["none", "AES256", "aws:kms"]
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix without slashes at either end) of `s3://bucket/prefix`."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"not an S3 URL: {url!r} (expected s3://bucket or s3://bucket/prefix)")
    if parts.query or parts.fragment:
        raise ValueError(f"an S3 URL takes no ?query or #fragment: {url!r}")
    return parts.netloc, parts.path.strip("/")


def _error_code(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3ObjectStore:
    """Objects in the S3 bucket and prefix of `url` (`s3://bucket/prefix`)."""

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        sse: ServerSideEncryption = "none",
        kms_key_id: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        if kms_key_id is not None and sse != "aws:kms":
            raise ValueError("a KMS key id needs server-side encryption aws:kms")
        self._put_args: dict[str, str] = {}
        if sse != "none":
            self._put_args["ServerSideEncryption"] = sse
        if kms_key_id is not None:
            self._put_args["SSEKMSKeyId"] = kms_key_id
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self._s3 = client

    def key(self, sha: str) -> str:
        """The S3 key of the object named `sha` (whether or not it exists)."""
        validate_sha256(sha)
        name = f"{sha[0:2]}/{sha[2:4]}/{sha}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def _size(self, sha: str) -> int | None:
        """The stored object's size; None if there is none."""
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=self.key(sha))
        except Exception as exc:
            if _error_code(exc) in _NOT_FOUND:
                return None
            raise
        return int(head["ContentLength"])

    def put(self, data: bytes, *, sha256: str | None = None) -> str:
        sha = sha256_hex(data) if sha256 is None else sha256
        if self._size(sha) == len(data):
            return sha
        self._s3.put_object(
            Bucket=self.bucket,
            Key=self.key(sha),
            Body=data,
            ContentType="application/octet-stream",
            **self._put_args,
        )
        return sha

    def get(self, sha: str) -> bytes:
        with self.open(sha) as fh:
            return fh.read()

    def open(self, sha: str) -> BinaryIO:
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=self.key(sha))
        except Exception as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise ObjectNotFoundError(sha) from None
            raise
        body = response["Body"]
        try:
            return io.BytesIO(body.read())
        finally:
            body.close()

    def exists(self, sha: str) -> bool:
        return self._size(sha) is not None

    def delete(self, sha: str) -> bool:
        if not self.exists(sha):
            return False
        self._s3.delete_object(Bucket=self.bucket, Key=self.key(sha))
        return True
